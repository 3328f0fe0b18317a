#!/usr/bin/env bash
# Stage 7 of run.sh: ASR pathways ("Learning ASR pathways: a sparse multilingual ASR model").
# A dense streaming RNN-T, then the same sparsity three ways: one language-agnostic mask,
# monolingual pruned models, and language pathways trained jointly. Each step skips if done.
set -euo pipefail
cd "$(dirname "$0")/.."
. ./path.sh

size=demo
device=auto
epochs=        # default per --size: conf/size_<size>/rnnt.yaml (tiny 1, demo 40, small 30, full 50)
sparsity=0.7
lang=data/lang_bpe150
train_opts=    # extra options of every `asrkit train` and `asrkit prune`, e.g. "--set training.seed=2"
help_message="Usage: $0 [--size tiny|demo|small|full] [--device auto|cpu|cuda] [--epochs N] [--sparsity S] [--lang LANG_DIR] [--train-opts \"OPTS\"]"
. ./utils/parse_options.sh

# Pruning rounds, fine-tuning steps per round and joint pathway steps per --size; the dense
# model's size and epochs are in conf/size_<size>/rnnt.yaml.
case "$size" in
  tiny)  rounds=1; steps=2; joint=4 ;;
  demo)  rounds=2; steps=40; joint=240 ;;
  small) rounds=3; steps=300; joint=1500 ;;
  full)  rounds=3; steps=1000; joint=6000 ;;
  *) echo "$0: --size must be tiny, demo, small or full" >&2; exit 1 ;;
esac
dense_opts=(--config "conf/size_$size/rnnt.yaml")
[ -z "$epochs" ] || dense_opts+=(--set "training.epochs=$epochs")
tag=$(awk -v s="$sparsity" 'BEGIN { printf "%d", s * 100 + 0.5 }')
prune_opts=(--sparsity "$sparsity" --train-data data/train --rounds "$rounds" --steps-per-round "$steps"
            --set "training.device=$device")
# --train-opts is a string of options: split into words on purpose.
# shellcheck disable=SC2206
extra_opts=($train_opts)
dense_opts+=("${extra_opts[@]}")
prune_opts+=("${extra_opts[@]}")

asrkit train --config conf/rnnt_emformer.yaml "${dense_opts[@]}" --train-data data/train --valid-data data/dev \
  --lang "$lang" --out-dir exp/rnnt_dense --set "training.device=$device"
# The fair dense baseline: the dense model trained for as many more steps as the pathways' joint
# training (the same restarted schedule the pruning fine-tunes use), so that extra training alone
# does not count as a pathway gain.
asrkit train --config exp/rnnt_dense/config.yaml --train-data data/train --valid-data data/dev \
  --lang "$lang" --out-dir exp/rnnt_dense_more --init-from exp/rnnt_dense/final.pt --set "training.device=$device" \
  --set "training.max_steps=$joint" --set "scheduler.total_steps=$joint" \
  --set "scheduler.warmup_steps=$(( joint / 10 > 0 ? joint / 10 : 1 ))" "${extra_opts[@]}"
asrkit prune --method mono --model exp/rnnt_dense/final.pt --out-dir "exp/rnnt_mono$tag" "${prune_opts[@]}"
asrkit prune --method pathways --model exp/rnnt_dense/final.pt --out-dir "exp/rnnt_pathways$tag" \
  --masks-from "exp/rnnt_mono$tag" --joint-steps "$joint" "${prune_opts[@]}"
asrkit prune --method agnostic --model exp/rnnt_dense/final.pt --out-dir "exp/rnnt_agnostic$tag" "${prune_opts[@]}"
asrkit prune-stats "exp/rnnt_pathways$tag" --no-layers | tee "exp/rnnt_pathways$tag/prune_stats.txt"
