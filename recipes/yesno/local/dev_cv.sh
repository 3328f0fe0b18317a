#!/usr/bin/env bash
# Dev WER of a training config by cross-validation over the 30 training files: the test files are
# never looked at. Fold k holds out every training file whose index (sorted by name) is k modulo
# --folds; a model is trained on the other files for each fold and seed, decoded greedily (and with
# an LM of the fold's own training transcripts when --lm-opts is given: a word n-gram, or with
# --lm-kind loop a YES/NO loop), and the errors of all folds are summed into one dev WER per seed.
# Each model is decoded on two dev sets of its fold: `dev`, the held-out files as recorded (all
# start with NO, as every training file does), and `rjdev`, --rejoin-copies re-joined copies of the
# same held-out files (local/rejoin_words.py: their words in a shuffled order, so about half open
# with YES, as the test files do; made from the held-out fold only, never from its training files),
# and `yrdev`, the files of 6 such copies that hold more YES than NO (5 or more of 8): a set whose
# word mix is unlike the training files' (44% YES), so that CMVN stats computed over the decoded set
# itself move with its content (the test files are 60% YES).
# run.sh must have run stages 0-2 (data/train_yesno with features, data/lang_char).
#
#   local/dev_cv.sh --name shipped --seeds "1 2 3"                       # conf/blstm_char.yaml, data/lang_char
#   local/dev_cv.sh --name lr1e-3 --train-opts "--set optim.lr=1e-3"
#   local/dev_cv.sh --name lm --lm-opts "--beam 8 --word-penalty 2"      # adds the bigram rows
#   local/dev_cv.sh --name lm --train false --lm-kind loop --lm-opts "--beam 8 --word-penalty 0" --tag _p0
#                                        # the models of exp/cv_lm decoded again, with the word loop
#   local/dev_cv.sh --name rj --train-part train_rj --train-opts "--set training.epochs=20"
#                                        # trained on the fold's files and a re-joined copy of them
#   local/dev_cv.sh --name gcmvn --cmvn global
#                                        # global CMVN: the fold's training stats, recorded in the model,
#                                        # applied to every dev set (default: each set's own per-speaker stats)
#   local/dev_cv.sh --name clean --cmvn global --clean true
#                                        # trained without the files that do not hold the words of their names
#
# Writes data/cv<folds>_<k>/{train,dev,rjdev,yrdev,train_rj,lm_<lang>}, exp/cv_<name>/fold<k>_seed<s>/, and prints one
# line per seed, dev set and decode: `<name> seed <s> <dev|rjdev|yrdev> <greedy|bigram|loop><tag>: %WER ... openings e/n`
# (also in exp/cv_<name>/dev_wer); openings counts the files whose first word is wrong.
set -euo pipefail
cd "$(dirname "$0")/.."
. ./path.sh
. ./utils/recipe_functions.sh

name=
train_conf=conf/blstm_char.yaml
lang=data/lang_char
train_opts=
seeds="1 2 3"
folds=3
lm_opts=                       # asrkit decode options for the LM rows (empty: greedy only)
lm_order=2
lm_kind=bigram                 # bigram: make-lm --order $lm_order; loop: make-lm --loop
train=true                     # false: decode the models already in exp/cv_NAME again
train_part=train               # train_rj: the fold's training files and re-joined copies of them (--rejoin-copies)
rejoin_copies=2                # re-joined copies of each held-out file in rjdev (and of each training file in train_rj)
rejoin_seed=1                  # seed of the re-joined word orders
model=final.pt                 # which model of each training to decode (ema.pt: training.ema's)
tag=                           # appended to the decode dirs and rows (e.g. _ema, _p2 for a penalty)
cmvn=speaker                   # speaker: each set's own per-speaker stats; global: the training part's (compute-cmvn --global)
clean=false                    # true: train only on the files that cut into the words of their names (rejoin_words.py --check)
help_message="Usage: $0 --name NAME [--train-conf YAML] [--lang DIR] [--train-opts \"--set k=v ...\"] [--seeds \"1 2 3\"] [--folds N] [--lm-opts \"--beam B ...\"] [--lm-order N] [--lm-kind bigram|loop] [--train true|false] [--train-part train|train_rj] [--rejoin-copies N] [--rejoin-seed S] [--model final.pt|ema.pt|...] [--tag T] [--cmvn speaker|global] [--clean true|false]"
. ./utils/parse_options.sh
[ -n "$name" ] || die "give --name NAME (the results go to exp/cv_NAME)"
[ -f data/train_yesno/feats.scp ] || die "data/train_yesno/feats.scp: run ./run.sh --stop-stage 2 first"

case $lm_kind in
  bigram) lm_name=lm_$(basename "$lang"); lm_make=(--order "$lm_order") ;;
  loop) lm_name=loop_$(basename "$lang"); lm_make=(--loop) ;;
  *) die "--lm-kind: bigram or loop (got '$lm_kind')" ;;
esac
case $cmvn in speaker|global) ;; *) die "--cmvn: speaker or global (got '$cmvn')" ;; esac
# The training data dir of each fold: $train_part, without the unusable files (--clean), as its own dir
# with global stats (--cmvn global).
clean_part=$train_part; [ "$clean" = true ] && clean_part=${train_part}_clean
part=$clean_part; [ "$cmvn" = speaker ] || part=${clean_part}_gcmvn

rejoined() {  # rejoined SRC DST COPIES SEED: DST = re-joined copies of SRC's files, with features
  local src=$1 dst=$2
  local/rejoin_words.py --copies "$3" --seed "$4" "$src" "$dst"
  asrkit make-feats "$dst" --type fbank --conf conf/fbank.conf --feat-dir "$(dirname "$dst")/fbank"
}

# The folds: built once, kept for every config so that all are compared on the same files.
for ((k = 0; k < folds; k++)); do
  fold=data/cv${folds}_$k
  if [ ! -f "$fold/dev/feats.scp" ]; then
    mkdir -p "$fold"
    awk -v k="$k" -v n="$folds" '(NR - 1) % n == k {print $1}' data/train_yesno/utt2spk >"$fold/dev.list"
    asrkit data subset --utt-list "$fold/dev.list" data/train_yesno "$fold/dev" --overwrite
    asrkit data subset --utt-list "$fold/dev.list" --exclude data/train_yesno "$fold/train" --overwrite
  fi
  # Re-joined files are made from one side of the fold only: rjdev from its held-out files, train_rj from
  # its training files (their own features and CMVN stats, under the fold's own fbank/ folder).
  if [ ! -f "$fold/rjdev/cmvn.scp" ]; then
    rejoined "$fold/dev" "$fold/rjdev" "$rejoin_copies" "$rejoin_seed"
    asrkit compute-cmvn "$fold/rjdev" --feat-dir "$fold/fbank"
  fi
  if [ "$train_part" = train_rj ] && [ ! -f "$fold/train_rj/cmvn.scp" ]; then
    rejoined "$fold/train" "$fold/train_rjonly" 1 "$rejoin_seed"
    # (the fold's cmvn.scp is left out of the combined dir: its stats are computed again over both)
    asrkit data combine --overwrite "$fold/train_rj" "$fold/train" "$fold/train_rjonly"
    asrkit compute-cmvn "$fold/train_rj" --feat-dir "$fold/fbank"
  fi
  if [ ! -f "$fold/yrdev/cmvn.scp" ]; then
    rejoined "$fold/dev" "$fold/rjdev6" 6 "$((rejoin_seed + 1))"
    awk '{n = 0; for (i = 2; i <= NF; i++) n += ($i == "YES"); if (2 * n > NF - 1) print $1}' \
      "$fold/rjdev6/text" >"$fold/yrdev.list"
    asrkit data subset --overwrite --utt-list "$fold/yrdev.list" "$fold/rjdev6" "$fold/yrdev"
    asrkit compute-cmvn "$fold/yrdev" --feat-dir "$fold/fbank"
  fi
  # --clean: the fold's training part without the files whose recordings do not hold the words of
  # their names (as run.sh trains).
  if [ "$clean" = true ] && [ ! -f "$fold/$clean_part/feats.scp" ]; then
    [ -f data/train_yesno_usable.list ] || local/rejoin_words.py --check data/train_yesno >data/train_yesno_usable.list
    asrkit data subset --overwrite --utt-list data/train_yesno_usable.list "$fold/$train_part" "$fold/$clean_part"
  fi
  # Global CMVN: the training part without its per-speaker stats, one set of stats over its files
  # (the trainer records them in the model; decoding applies them to every dev set).
  if [ "$cmvn" = global ] && [ ! -f "$fold/$part/cmvn.ark" ]; then
    asrkit data subset --overwrite --utt-list <(cut -d' ' -f1 "$fold/$clean_part/utt2spk") "$fold/$clean_part" "$fold/$part"
    rm -f "$fold/$part/cmvn.scp"
    asrkit compute-cmvn --global "$fold/$part"
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
      asrkit train --config "$train_conf" --train-data "data/cv${folds}_$k/$part" --lang "$lang" \
        --out-dir "$dir" --set "training.seed=$seed" --set training.device=cpu $train_opts >"$dir.log" 2>&1 \
        || { tail -3 "$dir.log" >&2; die "training $dir failed (log: $dir.log)"; }
    fi
    for dev in dev rjdev yrdev; do
      data=data/cv${folds}_$k/$dev
      asrkit decode --model "$dir/$model" --data "$data" --out-dir "$dir/decode_$dev$tag" \
        --search greedy --device cpu --overwrite 2>/dev/null
      asrkit score --data "$data" --decode-dir "$dir/decode_$dev$tag" >/dev/null 2>&1
      if [ -n "$lm_opts" ]; then
        # shellcheck disable=SC2086
        asrkit decode --model "$dir/$model" --data "$data" --out-dir "$dir/decode_${dev}_$lm_kind$tag" \
          --lm "data/cv${folds}_$k/$lm_name" $lm_opts --device cpu --overwrite 2>/dev/null
        asrkit score --data "$data" --decode-dir "$dir/decode_${dev}_$lm_kind$tag" >/dev/null 2>&1
      fi
    done
  done
  for dev in dev rjdev yrdev; do
    for decode in "decode_$dev$tag" "decode_${dev}_$lm_kind$tag"; do
      [ "$decode" = "decode_$dev$tag" ] || [ -n "$lm_opts" ] || continue
      kind=greedy$tag; [ "$decode" = "decode_$dev$tag" ] || kind=$lm_kind$tag
      # Files whose first word is wrong (the test files' openings are what the plain dev cannot show).
      openings=$(for ((k = 0; k < folds; k++)); do
        awk 'NR == FNR {first[$1] = $2; next} {print ($2 == first[$1] ? 0 : 1)}' \
          "$exp/fold${k}_seed$seed/$decode/text" "data/cv${folds}_$k/$dev/text"
      done | awk '{e += $1; n++} END {printf "%d/%d", e, n}')
      # Sum `%WER x [ e / n, i ins, d del, s sub ]` over the folds.
      grep -h "^%WER" "$exp"/fold*_seed"$seed/$decode/wer" | awk -v name="$name" -v seed="$seed" -v dev="$dev" \
        -v kind="$kind" -v open="$openings" '
        {e += $4; n += $6; i += $7; dl += $9; s += $11}
        END {printf "%s seed %s %s %s: %%WER %.2f [ %d / %d, %d ins, %d del, %d sub ] openings %s\n", name, seed,
             dev, kind, 100 * e / n, e, n, i, dl, s, open}' | tee -a "$exp/dev_wer"
    done
  done
done
