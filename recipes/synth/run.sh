#!/usr/bin/env bash
# asrkit multilingual demo on the offline synthetic corpus: every stage of the toolkit.
#
#   ./run.sh [--size tiny|demo|small|full] [--stage N] [--stop-stage N] [--nj N] [--device auto|cpu|cuda] [--seed N]
#
# Stages (each is one or a few `asrkit` commands and can be re-run alone from its files on disk):
#   0  prepare the corpus (4 languages, one of them low-resource, plus a held-out transfer language)
#   1  fbank features + per-speaker CMVN
#   2  tokens per language (characters, words or sentencepiece BPE; see --size), a word trigram per language
#   3  MTL Conformer-CTC            4  LRMF Conformer-CTC          5  1-hour transfer to a new language
#   6  distributed run (2 processes, model averaging) with an EMA model
#   7  pathways: dense RNN-T vs language-agnostic / monolingual / pathway pruning
#   8  distillation: BLSTM teacher -> posteriors -> DNN student, vs the same DNN on hard targets
#   9  decode and score every model (the CTC models also with the word trigrams)   10  results table
# --size demo (closed-vocabulary sentences, word tokens) is meant to finish on a 2-core CPU in under
# 30 minutes; small and full (open vocabulary) are meant for one GPU;
# tiny runs every stage in a few minutes for the tests (its numbers mean nothing). What each size
# changes in the models (sizes, epochs, LRMF rank, EMA decay) is in conf/size_<size>/*.yaml, laid
# over the stage's config with a second --config.
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh
. ./utils/recipe_functions.sh

stage=0
stop_stage=10
size=demo
nj=2
device=auto
langs=en,de,fr,es
low_resource=es
transfer_lang=it
seed=          # training seed of every model (default: each config's training.seed); local/seeds.sh sets it
help_message="Usage: $0 [--size tiny|demo|small|full] [--stage N] [--stop-stage N] [--nj N] [--device auto|cpu|cuda] [--seed N]"
. ./utils/parse_options.sh
train_opts=${seed:+--set training.seed=$seed}  # read by train (utils/recipe_functions.sh)

case "$size" in
  tiny)  corpus_opts="--utts-per-lang 20"; low_hours=0.005; transfer_hours=0.005; token_type=char ;;
  # demo: closed-vocabulary sentences (digit strings, times, dates, commands; docs/data.md), so a CPU
  # model hears each word many times and its WER means something; one token per
  # word (RESULTS.md: the dev measurements).
  demo)  corpus_opts="--text closed --utts-per-lang 400"; low_hours=0.1; transfer_hours=0.1; token_type=word ;;
  small) corpus_opts="--hours-per-lang 1.3"; low_hours=0.1; transfer_hours=1; token_type=bpe ;;
  full)  corpus_opts="--hours-per-lang 5"; low_hours=1; transfer_hours=1; token_type=bpe ;;
  *) echo "$0: --size must be tiny, demo, small or full" >&2; exit 1 ;;
esac
# The model sizes, epochs and the like of each --size: YAML laid over the stage's config.
preset=conf/size_$size
case "$token_type" in
  char) token_opts=(--type char); lang=data/lang_char ;;
  word) token_opts=(--type word); lang=data/lang_word ;;
  *) token_opts=(--type bpe --vocab-size 150); lang=data/lang_bpe150 ;;
esac
[ "$device" = cuda ] && job_nj=1 || job_nj=$nj  # --device auto: asrkit decodes on a GPU in one job itself
IFS=, read -r -a lang_list <<< "$langs"
test_sets="test"


if stage_on 0; then
  log "stage 0: prepare the synthetic corpus ($size)"
  # shellcheck disable=SC2086
  asrkit prepare synth data/synth --langs "$langs,$transfer_lang" $corpus_opts \
    --low-resource "$low_resource:$low_hours" --nj "$nj" --relative
  for split in train dev test; do
    asrkit data combine "data/$split" $(for l in "${lang_list[@]}"; do echo "data/synth/${split}_$l"; done)
  done
  asrkit data subset --hours "$transfer_hours" --seed 1 "data/synth/train_$transfer_lang" "data/train_$transfer_lang"
  asrkit data combine "data/dev_$transfer_lang" "data/synth/dev_$transfer_lang"
  asrkit data combine "data/test_$transfer_lang" "data/synth/test_$transfer_lang"
  for d in train dev test "train_$transfer_lang"; do asrkit data info "data/$d"; done
fi

if stage_on 1; then
  log "stage 1: fbank features and CMVN"
  for d in train dev test "train_$transfer_lang" "dev_$transfer_lang" "test_$transfer_lang"; do
    make_fbank_cmvn "data/$d"
  done
  subset_by_language data/test "${lang_list[@]}"  # data/test_<lang>: for the monolingual models of stage 7
fi

if stage_on 2; then
  log "stage 2: tokens"
  asrkit make-lang "${token_opts[@]}" data/train "$lang"
  asrkit make-lang "${token_opts[@]}" "data/train_$transfer_lang" "${lang}_$transfer_lang"
  for l in "${lang_list[@]}"; do  # a word trigram of each language's training transcripts, for stage 9
    asrkit make-lm --data data/train --language "$l" --order 3 "$lang" "${lang}_lm_$l"
  done
fi

if stage_on 3; then
  train mtl_conformer conf/mtl_conformer.yaml --config "$preset/conformer.yaml" --train-data data/train \
    --valid-data data/dev --lang "$lang"
fi

if stage_on 4; then
  # The rank ($preset/lrmf.yaml) gives about the paper's 44% fewer output-layer parameters than MTL
  # for this size's vocabulary and encoder width (the training log prints the exact reduction).
  # --size demo (and tiny) start from stage 3's model (exp/mtl_conformer/final.pt), its output layers factorised
  # by SVD ($preset/lrmf.yaml: training.init_from, init_lrmf_svd); the other sizes train from scratch.
  train lrmf_conformer conf/lrmf_conformer.yaml --config "$preset/conformer.yaml" --config "$preset/lrmf.yaml" \
    --train-data data/train --valid-data data/dev --lang "$lang"
fi

if stage_on 5; then
  # The same small-data task twice: from the MTL encoder, and from scratch.
  transfer_confs=(--config "$preset/conformer.yaml" --config "$preset/transfer.yaml")
  train "transfer_${transfer_lang}" conf/transfer.yaml "${transfer_confs[@]}" --train-data "data/train_$transfer_lang" \
    --valid-data "data/dev_$transfer_lang" --lang "${lang}_$transfer_lang" --init-from exp/mtl_conformer/final.pt
  train "scratch_${transfer_lang}" conf/transfer.yaml "${transfer_confs[@]}" --train-data "data/train_$transfer_lang" \
    --valid-data "data/dev_$transfer_lang" --lang "${lang}_$transfer_lang"
fi

if stage_on 6; then
  procs=2  # CPU processes, unless --device cuda asks for GPUs
  [ "$device" = cuda ] && gpu_opt=(--ngpu "$procs") || gpu_opt=(--nproc "$procs")
  train mtl_conformer_dist conf/mtl_conformer.yaml --config "$preset/conformer.yaml" \
    --config conf/model_averaging.yaml --config "$preset/model_averaging.yaml" --train-data data/train \
    --valid-data data/dev --lang "$lang" "${gpu_opt[@]}"
fi

if stage_on 7; then
  log "stage 7: pathways"
  ./local/pathways.sh --size "$size" --device "$device" --lang "$lang" --train-opts "$train_opts"
fi

if stage_on 8; then
  log "stage 8: distillation"
  train teacher_blstm conf/teacher_lstm.yaml --config "$preset/teacher.yaml" --train-data data/train \
    --valid-data data/dev --lang "$lang"
  for d in train dev; do
    asrkit dump-posteriors --model exp/teacher_blstm/final.pt --data "data/$d" --out-dir "exp/teacher_blstm/post_$d" \
      --frame-rate-of conf/student_dnn.yaml --nj "$nj" --device "$device"
  done
  train student_dnn conf/student_dnn.yaml --config "$preset/student.yaml" --train-data data/train \
    --valid-data data/dev --lang "$lang" --set objective.targets=exp/teacher_blstm/post_train/post.scp \
    --set objective.valid_targets=exp/teacher_blstm/post_dev/post.scp
  train hard_dnn conf/hard_dnn.yaml --config "$preset/student.yaml" --train-data data/train --valid-data data/dev \
    --lang "$lang"
fi

# Scored by characters too (--cer): word error is harsh on a small demo.
if stage_on 9; then
  log "stage 9: decode and score"
  for exp in exp/*/; do
    exp=${exp%/}
    [ -f "$exp/final.pt" ] || continue
    case "$exp" in
      *_"$transfer_lang") set=test_$transfer_lang ;;
      *) set=test ;;
    esac
    decode_score "$exp/final.pt" "data/$set" "$exp/decode_$set" --cer
    if [ -f "$exp/ema.pt" ]; then decode_score "$exp/ema.pt" "data/$set" "$exp/decode_${set}_ema" --cer; fi
  done
  decode_score_monolingual decode_test --cer
  # The CTC models of the 4 languages again with each language's word trigram (stage 2), LM weight
  # and word penalty chosen on dev: decode_lm_dev (the sweep) and decode_lm_test (at dev's best).
  lm_opts=()
  for l in "${lang_list[@]}"; do lm_opts+=(--lm "$l=${lang}_lm_$l"); done
  for exp in exp/mtl_conformer exp/lrmf_conformer exp/mtl_conformer_dist; do
    [ -f "$exp/final.pt" ] || continue
    decode_score_lm "$exp/final.pt" data/dev data/test decode_lm "${lm_opts[@]}"
  done
fi

if stage_on 10; then
  log "stage 10: results"
  asrkit results exp --markdown | tee exp/RESULTS.md
fi
