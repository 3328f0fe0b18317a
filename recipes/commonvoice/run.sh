#!/usr/bin/env bash
# asrkit on Mozilla Common Voice: a multilingual CTC model over several Common Voice languages
# with one output layer per language (MTL), the same with low-rank factorised output layers (LRMF),
# and sparse language pathways on a streaming RNN-T, each decoded and scored per language.
#
#   ./run.sh --cv-root /corpora/cv-corpus-17.0-2024-03-15                 # de,fr,es,it
#   ./run.sh --cv-root /corpora/cv-corpus-17.0-2024-03-15 --langs de,nl,zh-CN,cy --hours cy:1
#
# --cv-root holds one folder per locale (<locale>/{train,dev,test}.tsv, clips/). --langs takes
# Common Voice locales (de, fr, zh-CN, ...). --hours limits the training data: all (default), a
# number of hours for every language, or LANG:HOURS items (languages not listed keep all), taken
# as a random subset of whole utterances. Clips are mp3 at 48 kHz: wav.scp entries become
# resampling pipes (--resampler ffmpeg|sox, 16 kHz). Languages written without spaces (zh-CN, ja)
# are also scored by CER.
#
# Stages (each one or a few `asrkit` commands; any stage re-runs alone from its files on disk):
#   0  data dirs per language (asrkit prepare commonvoice), optional training subsets, combined
#      into data/{train,dev,test} with resampling wav.scp pipes
#   1  80-dim fbank + per-speaker CMVN; per-language test sets data/test_<lang>
#   2  BPE tokens, one set per language (--bpe-size)
#   3  MTL Conformer-CTC (conf/mtl_conformer.yaml)
#   4  LRMF Conformer-CTC (conf/lrmf_conformer.yaml)
#   5  pathways: dense Emformer RNN-T, then --sparsity three ways: monolingual, pathways,
#      language-agnostic (local/pathways.sh, conf/rnnt_emformer.yaml)
#   6  decode (--search) and score every model on data/test (per-language WER/CER), monolingual
#      pruned models on their own language
#   7  results table (asrkit results), also in exp/RESULTS.md
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh
. ./utils/recipe_functions.sh

stage=0
stop_stage=7
nj=8
device=auto
ngpu=1                        # >1: data-parallel training over this many GPUs
cv_root=
langs=de,fr,es,it
hours=all
resampler=ffmpeg              # ffmpeg|sox: turns the 48 kHz mp3 clips into 16 kHz wav
bpe_size=500
search=greedy                 # greedy|beam
beam=8
sparsity=0.7
train_opts=                   # extra options for every `asrkit train`, e.g. "--set training.epochs=20"
help_message="Usage: $0 --cv-root DIR [options]
  --stage N --stop-stage N   run stages N..M (default 0..7; see the top of this script)
  --cv-root DIR              Common Voice release folder holding <locale>/ (stage 0)
  --langs L1,L2,...          Common Voice locales (default de,fr,es,it)
  --hours all|H|LANG:H,...   training hours per language (default all)
  --resampler ffmpeg|sox     how wav.scp resamples the mp3 clips to 16 kHz (default ffmpeg)
  --bpe-size N               tokens per language (default 500)
  --nj N  --device auto|cpu|cuda  --ngpu N
  --search greedy|beam  --beam N  --sparsity S (pathways, default 0.7)
  --train-opts \"OPTS\"        extra asrkit train options (no spaces inside one option)"
. ./utils/parse_options.sh
[ $# -eq 0 ] || { echo "$0: unexpected argument '$1' (see --help)" >&2; exit 1; }

cv_root=$(abspath "$cv_root")

IFS=, read -r -a lang_list <<< "$langs"
for l in "${lang_list[@]}"; do
  h=$(hours_of "$l")
  [ "$h" = all ] || [[ "$h" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--hours: '$h' for $l is not all or a number of hours"
done

if stage_on 0; then
  log "stage 0: Common Voice data dirs for ${lang_list[*]}"
  [ -n "$cv_root" ] || die "stage 0 needs --cv-root DIR (a Common Voice release folder holding <locale>/)"
  train_dirs=() dev_dirs=() test_dirs=()
  for l in "${lang_list[@]}"; do
    asrkit prepare commonvoice --lang "$l" --nj "$nj" "$cv_root" data/cv
    tr=data/cv/cv_${l}_train
    h=$(hours_of "$l")
    if [ "$h" != all ]; then
      asrkit data subset --hours "$h" --seed 1 "$tr" "${tr}_${h}h"
      tr=${tr}_${h}h
    fi
    train_dirs+=("$tr") dev_dirs+=("data/cv/cv_${l}_dev") test_dirs+=("data/cv/cv_${l}_test")
  done
  asrkit data combine data/train "${train_dirs[@]}"
  asrkit data combine data/dev "${dev_dirs[@]}"
  asrkit data combine data/test "${test_dirs[@]}"
  for d in train dev test; do
    # The combined dirs are remade above, so their wav.scp is resampled exactly once.
    ./local/resample_wav_scp.sh --resampler "$resampler" "data/$d"
    asrkit data info "data/$d"
  done
fi

# Stages 1-7 are the same for every multilingual corpus recipe: local/multilingual_stages.sh.
if [ "$stop_stage" -ge 1 ]; then
  ./local/multilingual_stages.sh --stage "$stage" --stop-stage "$stop_stage" --langs "$langs" \
    --nj "$nj" --device "$device" --ngpu "$ngpu" --bpe-size "$bpe_size" --search "$search" --beam "$beam" \
    --sparsity "$sparsity" --train-opts "$train_opts"
fi
