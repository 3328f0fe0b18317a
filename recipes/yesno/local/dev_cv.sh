#!/usr/bin/env bash
# Dev WER of a training config by cross-validation over the 30 training files: the test files are
# never looked at. Fold k holds out every training file whose index (sorted by name) is k modulo
# --folds; a model is trained on the other files for each fold and seed, decoded greedily (and with
# an LM of the fold's own training transcripts when --lm-opts is given: a word n-gram, or with
# --lm-kind loop a YES/NO loop), and the errors of all folds are summed into one dev WER per seed.
# run.sh must have run stages 0-2 (data/train_yesno with features, data/lang_char).
#
#   local/dev_cv.sh --name shipped --seeds "1 2 3"                       # conf/dnn_char.yaml, data/lang_char
#   local/dev_cv.sh --name lr1e-3 --train-opts "--set optim.lr=1e-3"
#   local/dev_cv.sh --name lm --lm-opts "--beam 8 --word-penalty 2"      # adds the bigram rows
#   local/dev_cv.sh --name lm --train false --lm-kind loop --lm-opts "--beam 8 --word-penalty 0" --tag _p0
#                                        # the models of exp/cv_lm decoded again, with the word loop
#
# Writes data/cv<folds>_<k>/{train,dev,lm_<lang>}, exp/cv_<name>/fold<k>_seed<s>/, and prints one line per
# seed and decode: `<name> seed <s> <greedy|bigram|loop><tag>: %WER ...` (also in exp/cv_<name>/dev_wer).
set -euo pipefail
cd "$(dirname "$0")/.."
. ./path.sh
. ./utils/recipe_functions.sh

name=
train_conf=conf/dnn_char.yaml
lang=data/lang_char
train_opts=
seeds="1 2 3"
folds=3
lm_opts=                       # asrkit decode options for the LM rows (empty: greedy only)
lm_order=2
lm_kind=bigram                 # bigram: make-lm --order $lm_order; loop: make-lm --loop
train=true                     # false: decode the models already in exp/cv_NAME again
train_part=train               # train_sp: the fold's training files and their speed copies (run.sh stage 1)
model=final.pt                 # which model of each training to decode (ema.pt: training.ema's)
tag=                           # appended to the decode dirs and rows (e.g. _ema, _p2 for a penalty)
help_message="Usage: $0 --name NAME [--train-conf YAML] [--lang DIR] [--train-opts \"--set k=v ...\"] [--seeds \"1 2 3\"] [--folds N] [--lm-opts \"--beam B ...\"] [--lm-order N] [--lm-kind bigram|loop] [--train true|false] [--train-part train|train_sp] [--model final.pt|ema.pt|...] [--tag T]"
. ./utils/parse_options.sh
[ -n "$name" ] || die "give --name NAME (the results go to exp/cv_NAME)"
[ -f data/train_yesno/feats.scp ] || die "data/train_yesno/feats.scp: run ./run.sh --stop-stage 2 first"

case $lm_kind in
  bigram) lm_name=lm_$(basename "$lang"); lm_make=(--order "$lm_order") ;;
  loop) lm_name=loop_$(basename "$lang"); lm_make=(--loop) ;;
  *) die "--lm-kind: bigram or loop (got '$lm_kind')" ;;
esac

# The folds: built once, kept for every config so that all are compared on the same files.
for ((k = 0; k < folds; k++)); do
  fold=data/cv${folds}_$k
  if [ ! -f "$fold/dev/feats.scp" ]; then
    mkdir -p "$fold"
    awk -v k="$k" -v n="$folds" '(NR - 1) % n == k {print $1}' data/train_yesno/utt2spk >"$fold/dev.list"
    asrkit data subset --utt-list "$fold/dev.list" data/train_yesno "$fold/dev" --overwrite
    asrkit data subset --utt-list "$fold/dev.list" --exclude data/train_yesno "$fold/train" --overwrite
  fi
  # The fold's LM is estimated from its own training files only.
  [ -f "$fold/$lm_name/lm.yaml" ] || asrkit make-lm --data "$fold/train" "${lm_make[@]}" "$lang" "$fold/$lm_name"
done

exp=exp/cv_$name
mkdir -p "$exp"
if [ "$train" = true ]; then : >"$exp/dev_wer"; fi  # decoding again adds its rows
for seed in $seeds; do
  for ((k = 0; k < folds; k++)); do
    dir=$exp/fold${k}_seed$seed
    if [ "$train" = true ]; then
      # $train_opts is a string of options: split into words on purpose.
      # shellcheck disable=SC2086
      asrkit train --config "$train_conf" --train-data "data/cv${folds}_$k/$train_part" --lang "$lang" \
        --out-dir "$dir" --set "training.seed=$seed" --set training.device=cpu $train_opts >"$dir.log" 2>&1 \
        || { tail -3 "$dir.log" >&2; die "training $dir failed (log: $dir.log)"; }
    fi
    asrkit decode --model "$dir/$model" --data "data/cv${folds}_$k/dev" --out-dir "$dir/decode_dev$tag" \
      --search greedy --device cpu --overwrite 2>/dev/null
    asrkit score --data "data/cv${folds}_$k/dev" --decode-dir "$dir/decode_dev$tag" >/dev/null 2>&1
    if [ -n "$lm_opts" ]; then
      # shellcheck disable=SC2086
      asrkit decode --model "$dir/$model" --data "data/cv${folds}_$k/dev" --out-dir "$dir/decode_dev_$lm_kind$tag" \
        --lm "data/cv${folds}_$k/$lm_name" $lm_opts --device cpu --overwrite 2>/dev/null
      asrkit score --data "data/cv${folds}_$k/dev" --decode-dir "$dir/decode_dev_$lm_kind$tag" >/dev/null 2>&1
    fi
  done
  for decode in "decode_dev$tag" "decode_dev_$lm_kind$tag"; do
    [ "$decode" = "decode_dev$tag" ] || [ -n "$lm_opts" ] || continue
    # Sum `%WER x [ e / n, i ins, d del, s sub ]` over the folds.
    grep -h "^%WER" "$exp"/fold*_seed"$seed/$decode/wer" | awk -v name="$name" -v seed="$seed" -v d="$decode" '
      {e += $4; n += $6; i += $7; dl += $9; s += $11}
      END {printf "%s seed %s %s: %%WER %.2f [ %d / %d, %d ins, %d del, %d sub ]\n", name, seed,
           (d ~ /^decode_dev_(bigram|loop)/ ? substr(d, 12) : "greedy" substr(d, 11)), 100 * e / n, e, n, i, dl, s}' | tee -a "$exp/dev_wer"
  done
done
