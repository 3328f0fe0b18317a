#!/usr/bin/env bash
# asrkit on Multilingual LibriSpeech (OpenSLR 94): a multilingual CTC model over four MLS languages
# with one output layer per language (MTL), the same with low-rank factorised output layers (LRMF),
# and sparse language pathways on a streaming RNN-T, each decoded and scored per language.
#
#   ./run.sh --mls-root /corpora/mls                                 # german,french,spanish,polish, 10 h each
#   ./run.sh --mls-root /corpora/mls --langs de,nl,it,pt --hours all
#   ./run.sh --mls-root /corpora/mls --hours de:all,fr:all,es:all,pl:1   # polish low-resource
#
# --mls-root holds mls_<language>/ (or mls_<language>_opus/) folders. --langs takes MLS language
# names or ISO codes (english/en, german/de, dutch/nl, french/fr, spanish/es, italian/it,
# portuguese/pt, polish/pl). --hours is the training data per language: 1, 9, 10 (MLS's
# limited-supervision lists) or all, either one value for every language or LANG:HOURS items
# (languages not listed get all). The default, 10 hours each, trains on one GPU in hours; with
# --hours all, raise --bpe-size and shorten training (e.g. --train-opts "--set training.epochs=5").
#
# Stages (each one or a few `asrkit` commands; any stage re-runs alone from its files on disk):
#   0  data dirs per language (asrkit prepare mls), combined into data/{train,dev,test}
#   1  80-dim fbank + per-speaker CMVN; per-language test sets data/test_<iso>
#   2  BPE tokens, one set per language (--bpe-size)
#   3  MTL Conformer-CTC (conf/mtl_conformer.yaml)
#   4  LRMF Conformer-CTC (conf/lrmf_conformer.yaml): shared rank-r A, per-language B
#   5  pathways: dense Emformer RNN-T, then --sparsity three ways: monolingual, pathways,
#      language-agnostic (local/pathways.sh, conf/rnnt_emformer.yaml)
#   6  decode (--search) and score every model on data/test (per-language WER), monolingual
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
mls_root=
langs=german,french,spanish,polish
hours=10
bpe_size=300
search=greedy                 # greedy|beam
beam=8
sparsity=0.7
train_opts=                   # extra options for every `asrkit train`, e.g. "--set training.epochs=5"
help_message="Usage: $0 --mls-root DIR [options]
  --stage N --stop-stage N   run stages N..M (default 0..7; see the top of this script)
  --mls-root DIR             folder holding mls_<language>/ (stage 0)
  --langs L1,L2,...          MLS languages, names or ISO codes (default german,french,spanish,polish)
  --hours H|LANG:H,...       training hours per language: 1, 9, 10 or all (default 10)
  --bpe-size N               tokens per language (default 300)
  --nj N  --device auto|cpu|cuda  --ngpu N
  --search greedy|beam  --beam N  --sparsity S (pathways, default 0.7)
  --train-opts \"OPTS\"        extra asrkit train options (no spaces inside one option)"
. ./utils/parse_options.sh
[ $# -eq 0 ] || { echo "$0: unexpected argument '$1' (see --help)" >&2; exit 1; }

mls_root=$(abspath "$mls_root")

mls_iso() {  # MLS language name or ISO code -> ISO code (what asrkit prepare mls writes)
  case "$1" in
    english|en) echo en ;;  german|de) echo de ;;  dutch|nl) echo nl ;;    french|fr) echo fr ;;
    spanish|es) echo es ;;  italian|it) echo it ;; portuguese|pt) echo pt ;; polish|pl) echo pl ;;
    *) die "unknown MLS language '$1' (english/en, german/de, dutch/nl, french/fr, spanish/es, italian/it, portuguese/pt, polish/pl)" ;;
  esac
}
IFS=, read -r -a lang_list <<< "$langs"
isos=()
for l in "${lang_list[@]}"; do
  isos+=("$(mls_iso "$l")")
  case "$(hours_of "$l" "${isos[-1]}")" in 1|9|10|all) ;; *) die "--hours: '$(hours_of "$l" "${isos[-1]}")' for $l is not 1, 9, 10 or all" ;; esac
done

if stage_on 0; then
  log "stage 0: MLS data dirs for ${lang_list[*]}"
  [ -n "$mls_root" ] || die "stage 0 needs --mls-root DIR (the folder holding mls_<language>/)"
  train_dirs=() dev_dirs=() test_dirs=()
  for i in "${!lang_list[@]}"; do
    l=${lang_list[$i]} iso=${isos[$i]} h=$(hours_of "${lang_list[$i]}" "${isos[$i]}")
    asrkit prepare mls --lang "$l" --hours "$h" --nj "$nj" "$mls_root" data/mls
    suffix=; [ "$h" = all ] || suffix=_${h}h
    train_dirs+=("data/mls/mls_${iso}_train$suffix") dev_dirs+=("data/mls/mls_${iso}_dev")
    test_dirs+=("data/mls/mls_${iso}_test")
  done
  asrkit data combine data/train "${train_dirs[@]}"
  asrkit data combine data/dev "${dev_dirs[@]}"
  asrkit data combine data/test "${test_dirs[@]}"
  for d in train dev test; do asrkit data info "data/$d"; done
fi

# Stages 1-7 are the same for every multilingual corpus recipe: local/multilingual_stages.sh.
if [ "$stop_stage" -ge 1 ]; then
  ./local/multilingual_stages.sh --stage "$stage" --stop-stage "$stop_stage" --langs "$(IFS=,; echo "${isos[*]}")" \
    --nj "$nj" --device "$device" --ngpu "$ngpu" --bpe-size "$bpe_size" --search "$search" --beam "$beam" \
    --sparsity "$sparsity" --train-opts "$train_opts"
fi
