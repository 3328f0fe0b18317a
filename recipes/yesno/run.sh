#!/usr/bin/env bash
# asrkit on Kaldi's yesno corpus (OpenSLR 1), as Kaldi's egs/yesno: 60 recordings of one speaker
# saying eight Hebrew "ken" (YES) / "lo" (NO) words; train on the first 30 files by name, test on
# the last 30. A BLSTM-CTC model over characters, decoded greedily and with a YES/NO loop grammar
# (lexicon beam search).
#
#   ./run.sh --corpus /path/to/yesno                  # holds waves_yesno/ (../shared/corpora/yesno)
#   ./run.sh --corpus /path/to/yesno --seeds 1        # one model per training seed (default: 1 2 3)
#   ./run.sh --corpus /path/to/yesno --model dnn_char # conf/dnn_char.yaml, the frame DNN of the earlier tables
#
# Stages (each one or a few `asrkit` commands; any stage re-runs alone from its files on disk):
#   0  data dirs data/train_yesno, data/test_yesno (asrkit prepare yesno)
#   1  40-bin fbank at 8 kHz (conf/fbank.conf); global CMVN stats of the training files
#   2  character tokens: <blk>, <unk>, ▁ N O E S Y (asrkit make-lang --type char)
#   3  YES/NO loop grammar of the training words: data/lang_char_loop (asrkit make-lm --loop)
#   4  train one model per seed (conf/$model.yaml: conf/blstm_char.yaml)
#   5  decode every model on data/test_yesno greedily and with the grammar; score
#   6  results table (asrkit results), also in exp/RESULTS.md
# Every setting was chosen on the training files alone (local/dev_cv.sh, cross-validation over
# folds of them; RESULTS.md); the test files are only decoded for the final table.
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh
. ./utils/recipe_functions.sh

stage=0
stop_stage=6
nj=2
corpus=
seeds="1 2 3"
model=blstm_char              # conf/$model.yaml; the models go to exp/${model}_seed<seed>
epochs=                       # empty: the config's (the CI test runs a shorter training)
lm_beam=8                     # decode --beam with the grammar; lm_weight, word_penalty: chosen on dev (RESULTS.md)
lm_weight=1.0
word_penalty=4.0
help_message="Usage: $0 --corpus DIR [--seeds \"1 2 3\"] [--model NAME] [--epochs N] [--lm-beam B] [--lm-weight W] [--word-penalty P] [--stage N] [--stop-stage N] [--nj N]"
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
  log "stage 1: fbank features, global CMVN stats of the training files"
  for d in train_yesno test_yesno; do
    asrkit make-feats "data/$d" --type fbank --conf conf/fbank.conf --nj "$nj" --feat-dir fbank
  done
  # One speaker in both sets: the training files' stats, recorded in the model, normalise every set
  # (ESPnet's global MVN). Stats of the test files themselves would move with their words (60% YES,
  # the training files 44%); dev chose the training stats (RESULTS.md). A per-speaker cmvn.scp an
  # earlier run of this stage wrote would win over cmvn.ark: it goes.
  rm -f data/train_yesno/cmvn.scp data/test_yesno/cmvn.scp
  asrkit compute-cmvn --global data/train_yesno
fi

if stage_on 2; then
  log "stage 2: character tokens"
  asrkit make-lang --type char data/train_yesno data/lang_char
fi

if stage_on 3; then
  log "stage 3: YES/NO loop grammar"
  # Any sequence of the training words, each equally likely after each and at the start, as Kaldi's
  # egs/yesno grammar. A bigram estimated from the training transcripts would prefer NO as the
  # first word: every training file starts with NO, 29 of the 30 test files with YES.
  asrkit make-lm --data data/train_yesno --loop data/lang_char data/lang_char_loop
fi

if stage_on 4; then
  for seed in $seeds; do
    log "stage 4: training exp/${model}_seed$seed"
    $train_cmd asrkit train --config "conf/$model.yaml" --train-data data/train_yesno --lang data/lang_char \
      --out-dir "exp/${model}_seed$seed" --set "training.seed=$seed" "${train_opts[@]}"
  done
fi

if stage_on 5; then
  log "stage 5: decode and score"
  for seed in $seeds; do
    exp=exp/${model}_seed$seed
    $decode_cmd asrkit decode --model "$exp/final.pt" --data data/test_yesno --out-dir "$exp/decode_test_yesno" \
      --search greedy --nj "$nj" --device cpu
    asrkit score --data data/test_yesno --decode-dir "$exp/decode_test_yesno"
    $decode_cmd asrkit decode --model "$exp/final.pt" --data data/test_yesno --out-dir "$exp/decode_test_yesno_loop" \
      --lm data/lang_char_loop --beam "$lm_beam" --lm-weight "$lm_weight" --word-penalty "$word_penalty" \
      --nj "$nj" --device cpu
    asrkit score --data data/test_yesno --decode-dir "$exp/decode_test_yesno_loop"
  done
fi

if stage_on 6; then
  log "stage 6: results"
  asrkit results exp --markdown | tee exp/RESULTS.md
fi
