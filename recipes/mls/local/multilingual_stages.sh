#!/usr/bin/env bash
# Stages 1-7 of the multilingual corpus recipes (recipes/mls, recipes/commonvoice): everything after
# data prep is the same for both once data/{train,dev,test} exist and utt2lang holds the --langs codes.
# Run from the recipe folder, as run.sh does:
#   local/multilingual_stages.sh --langs de,fr,es --device cpu [options]
#
#   1  80-dim fbank + per-speaker CMVN; per-language test sets data/test_<lang>
#   2  BPE tokens, one set per language (--bpe-size)
#   3  MTL Conformer-CTC (conf/mtl_conformer.yaml)
#   4  LRMF Conformer-CTC (conf/lrmf_conformer.yaml): shared rank-r A, per-language B
#   5  pathways: dense Emformer RNN-T, then --sparsity three ways: monolingual, pathways,
#      language-agnostic (local/pathways.sh, conf/rnnt_emformer.yaml)
#   6  decode (--search) and score every model on data/test (per-language error rates), monolingual
#      pruned models on their own language
#   7  results table (asrkit results), also in exp/RESULTS.md
set -euo pipefail
. ./path.sh
. ./cmd.sh
. ./utils/recipe_functions.sh

stage=1
stop_stage=7
langs=                        # language codes as utt2lang writes them, comma-separated
nj=8
device=cpu                    # auto|cpu|cuda (auto: asrkit picks cuda when there is one)
ngpu=1                        # >1: data-parallel training over this many GPUs
bpe_size=300
search=greedy                 # greedy|beam
beam=8
sparsity=0.7
train_opts=                   # extra options for every `asrkit train`
help_message="Usage: $0 --langs L1,L2,... [--stage N] [--stop-stage N] [--nj N] [--device auto|cpu|cuda] [--ngpu N]
       [--bpe-size N] [--search greedy|beam] [--beam N] [--sparsity S] [--train-opts OPTS]"
. ./utils/parse_options.sh
[ -n "$langs" ] || { echo "$0: --langs is required" >&2; exit 1; }

IFS=, read -r -a lang_list <<< "$langs"
[ "$device" = cuda ] && job_nj=1 || job_nj=$nj
lang=data/lang_bpe$bpe_size

if stage_on 1; then
  log "stage 1: fbank features and CMVN"
  for d in train dev test; do
    make_fbank_cmvn "data/$d" --compress
  done
  subset_by_language data/test "${lang_list[@]}"  # data/test_<lang>: for the monolingual pruned models of stage 5
fi

if stage_on 2; then
  log "stage 2: BPE tokens per language"
  asrkit make-lang --type bpe --vocab-size "$bpe_size" --per-language data/train "$lang"
fi

if stage_on 3; then
  train mtl_conformer conf/mtl_conformer.yaml --train-data data/train --valid-data data/dev --lang "$lang"
fi

if stage_on 4; then
  train lrmf_conformer conf/lrmf_conformer.yaml --train-data data/train --valid-data data/dev --lang "$lang"
fi

if stage_on 5; then
  log "stage 5: pathways"
  ./local/pathways.sh --train data/train --dev data/dev --lang-dir "$lang" --train-config conf/rnnt_emformer.yaml \
    --exp exp/rnnt --device "$device" --sparsity "$sparsity" --train-opts "$train_opts"
fi

if stage_on 6; then
  log "stage 6: decode and score"
  for exp in exp/*/; do
    exp=${exp%/}
    [ -f "$exp/final.pt" ] || continue
    decode_score "$exp/final.pt" data/test "$exp/decode_${search}_test"
  done
  decode_score_monolingual "decode_${search}_test"
fi

if stage_on 7; then
  log "stage 7: results"
  asrkit results exp --markdown | tee exp/RESULTS.md
fi
