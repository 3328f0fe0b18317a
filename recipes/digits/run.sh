#!/usr/bin/env bash
# asrkit on the Free Spoken Digit Dataset with whole speakers held out: for each speaker S, train
# on the other speakers and test on S (4 folds for ../shared/corpora/fsdd4), a WER per fold and the
# mean. Every setting is chosen on each fold's dev split (takes 0-4 of the training speakers),
# never on the test speaker. CTC over one token per word, without a language model.
#
#   ./run.sh --corpus /path/to/fsdd                  # holds recordings/ (../shared/corpora/fsdd4)
#   ./run.sh --corpus /path/to/fsdd --folds "george lucas" --seed 2
#
# Stages (each one or a few `asrkit` commands; any stage re-runs alone from its files on disk):
#   0  data dirs: data/fsdd/all and data/fsdd/fold_<S>/{train,dev,test} (asrkit prepare fsdd)
#   1  40-bin fbank at 8 kHz + per-speaker CMVN on all files once; the fold dirs take their lines
#   2  word tokens (zero ... nine) from each fold's training text (asrkit make-lang --type word)
#   3  train one model per fold (conf/dnn_word.yaml), validated on the fold's dev split
#   4  decode (greedy CTC) and score each fold's held-out speaker
#   5  results table (asrkit results, exp/RESULTS.md) and the mean WER over the folds
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
folds=                        # empty: every speaker found
seed=0
epochs=                       # empty: the config's
help_message="Usage: $0 --corpus DIR [--folds \"S1 S2\"] [--seed N] [--epochs N] [--stage N] [--stop-stage N] [--nj N]"
. ./utils/parse_options.sh

train_opts=(--set training.device=cpu --set "training.seed=$seed")
[ -n "$epochs" ] && train_opts+=(--set "training.epochs=$epochs")

if stage_on 0; then
  [ -n "$corpus" ] || { echo "$0: give --corpus DIR (the folder holding recordings/)" >&2; exit 1; }
  corpus=$(abspath "$corpus")
  log "stage 0: data dirs from $corpus"
  asrkit prepare fsdd "$corpus" data/fsdd
fi
[ -n "$folds" ] || folds=$(cd data/fsdd && ls -d fold_* | sed 's/^fold_//')

if stage_on 1; then
  log "stage 1: fbank features and CMVN"
  make_fbank_cmvn data/fsdd/all
  for s in $folds; do
    for part in train dev test; do
      asrkit data subset --utt-list data/fsdd/fold_$s/$part/text data/fsdd/all "data/$s/$part"
    done
  done
fi

if stage_on 2; then
  log "stage 2: word tokens"
  for s in $folds; do asrkit make-lang --type word "data/$s/train" "data/$s/lang_word"; done
fi

if stage_on 3; then
  for s in $folds; do
    log "stage 3: training exp/dnn_word_$s (test speaker $s held out)"
    $train_cmd asrkit train --config conf/dnn_word.yaml --train-data "data/$s/train" --valid-data "data/$s/dev" \
      --lang "data/$s/lang_word" --out-dir "exp/dnn_word_$s" "${train_opts[@]}"
  done
fi

if stage_on 4; then
  log "stage 4: decode and score the held-out speakers"
  for s in $folds; do
    $decode_cmd asrkit decode --model "exp/dnn_word_$s/final.pt" --data "data/$s/test" \
      --out-dir "exp/dnn_word_$s/decode_test_$s" --search greedy --nj "$nj" --device cpu
    asrkit score --data "data/$s/test" --decode-dir "exp/dnn_word_$s/decode_test_$s"
  done
fi

if stage_on 5; then
  log "stage 5: results"
  asrkit results exp --markdown | tee exp/RESULTS.md
  for s in $folds; do head -n 1 "exp/dnn_word_$s/decode_test_$s/wer"; done |
    awk '{ sum += $2; n++ } END { if (n) printf "mean WER over %d folds: %.2f%%\n", n, sum / n }' | tee -a exp/RESULTS.md
fi
