#!/usr/bin/env bash
# The pathways stage of the multilingual recipes ("Learning ASR pathways: a sparse multilingual ASR
# model"): a dense streaming RNN-T, then the same sparsity three ways: monolingual pruned models,
# language pathways trained jointly (starting from the monolingual masks), and one
# language-agnostic mask; then the masks' sparsity and overlap. Every step skips work already done.
# Run from the recipe folder (recipes/mls, recipes/commonvoice):
#   local/pathways.sh --train data/train --dev data/dev --lang-dir data/lang_bpe300 [options]
set -euo pipefail
. ./path.sh
. ./cmd.sh

train=data/train
dev=data/dev
lang_dir=
train_config=conf/rnnt_emformer.yaml   # the dense model's YAML (not --config: parse_options.sh sources that as shell)
exp=exp/rnnt                 # the dense model; the pruned ones are ${exp}_{mono,pathways,agnostic}<percent>
device=cpu
sparsity=0.7
rounds=3
steps_per_round=1000
joint_steps=6000
train_opts=                  # extra `asrkit train` options for the dense model, e.g. "--set training.epochs=20"
help_message="Usage: $0 --lang-dir DIR [--train DIR] [--dev DIR] [--train-config YAML] [--exp DIR] [--device auto|cpu|cuda]
       [--sparsity S] [--rounds N] [--steps-per-round N] [--joint-steps N] [--train-opts OPTS]"
. ./utils/parse_options.sh
[ -n "$lang_dir" ] || { echo "$0: --lang-dir is required" >&2; exit 1; }

tag=$(awk -v s="$sparsity" 'BEGIN { printf "%d", s * 100 + 0.5 }')
prune_opts=(--sparsity "$sparsity" --train-data "$train" --rounds "$rounds" --steps-per-round "$steps_per_round"
            --set "training.device=$device")

# shellcheck disable=SC2086
$train_cmd asrkit train --config "$train_config" --train-data "$train" --valid-data "$dev" --lang "$lang_dir" \
  --out-dir "$exp" --set "training.device=$device" $train_opts
$train_cmd asrkit prune --method mono --model "$exp/final.pt" --out-dir "${exp}_mono$tag" "${prune_opts[@]}"
$train_cmd asrkit prune --method pathways --model "$exp/final.pt" --out-dir "${exp}_pathways$tag" \
  --masks-from "${exp}_mono$tag" --joint-steps "$joint_steps" "${prune_opts[@]}"
$train_cmd asrkit prune --method agnostic --model "$exp/final.pt" --out-dir "${exp}_agnostic$tag" "${prune_opts[@]}"
asrkit prune-stats "${exp}_pathways$tag" | tee "${exp}_pathways$tag/prune_stats.txt"
