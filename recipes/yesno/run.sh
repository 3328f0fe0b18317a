#!/usr/bin/env bash
# asrkit on Kaldi's yesno corpus (OpenSLR 1), as Kaldi's egs/yesno: 60 recordings of one speaker
# saying eight Hebrew "ken" (YES) / "lo" (NO) words; train on the first 30 files by name, test on
# the last 30. A CTC model over one token per word, without a language model or grammar.
#
#   ./run.sh --corpus /path/to/yesno                  # holds waves_yesno/ (../shared/corpora/yesno)
#   ./run.sh --corpus /path/to/yesno --seeds "1 2 3"  # one model per training seed
#
# Stages (each one or a few `asrkit` commands; any stage re-runs alone from its files on disk):
#   0  data dirs data/train_yesno, data/test_yesno (asrkit prepare yesno)
#   1  40-bin fbank at 8 kHz + CMVN (conf/fbank.conf)
#   2  word tokens: <blk>, <unk>, YES, NO (asrkit make-lang --type word)
#   3  train one model per seed (conf/dnn_word.yaml)
#   4  decode (greedy CTC) and score every model on data/test_yesno
#   5  results table (asrkit results), also in exp/RESULTS.md
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh
. ./utils/recipe_functions.sh

stage=0
stop_stage=5
nj=2
corpus=
seeds=1
epochs=                       # empty: the config's (the CI test runs a shorter training)
help_message="Usage: $0 --corpus DIR [--seeds \"1 2 3\"] [--epochs N] [--stage N] [--stop-stage N] [--nj N]"
. ./utils/parse_options.sh

train_opts=(--set training.device=cpu)  # a model of this size trains faster on the CPU than it starts on a GPU
[ -n "$epochs" ] && train_opts+=(--set "training.epochs=$epochs")

if stage_on 0; then
  [ -n "$corpus" ] || { echo "$0: give --corpus DIR (the folder holding waves_yesno/)" >&2; exit 1; }
  corpus=$(abspath "$corpus")
  log "stage 0: data dirs from $corpus"
  asrkit prepare yesno "$corpus" data
fi

if stage_on 1; then
  log "stage 1: fbank features and CMVN"
  for d in train_yesno test_yesno; do
    make_fbank_cmvn "data/$d"
  done
fi

if stage_on 2; then
  log "stage 2: word tokens"
  asrkit make-lang --type word data/train_yesno data/lang_word
fi

if stage_on 3; then
  for seed in $seeds; do
    log "stage 3: training exp/dnn_word_seed$seed"
    $train_cmd asrkit train --config conf/dnn_word.yaml --train-data data/train_yesno --lang data/lang_word \
      --out-dir "exp/dnn_word_seed$seed" --set "training.seed=$seed" "${train_opts[@]}"
  done
fi

if stage_on 4; then
  log "stage 4: decode and score"
  for seed in $seeds; do
    exp=exp/dnn_word_seed$seed
    $decode_cmd asrkit decode --model "$exp/final.pt" --data data/test_yesno --out-dir "$exp/decode_test_yesno" \
      --search greedy --nj "$nj" --device cpu
    asrkit score --data data/test_yesno --decode-dir "$exp/decode_test_yesno"
  done
fi

if stage_on 5; then
  log "stage 5: results"
  asrkit results exp --markdown | tee exp/RESULTS.md
fi
