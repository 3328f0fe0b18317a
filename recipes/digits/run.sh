#!/usr/bin/env bash
# asrkit on the Free Spoken Digit Dataset with whole speakers held out: for each speaker S, train
# on the other speakers and test on S (4 folds for ../shared/corpora/fsdd4), a WER per fold and the
# mean, decoded without and with a grammar LM. Settings were chosen on held-out-speaker data inside
# the training speakers, never on a test speaker (RESULTS.md says how).
#
#   ./run.sh --corpus /path/to/fsdd                  # holds recordings/ (../shared/corpora/fsdd4)
#   ./run.sh --corpus /path/to/fsdd --folds "george lucas" --seed 2
#
# Stages (each one or a few `asrkit` commands; any stage re-runs alone from its files on disk):
#   0  data dirs: data/fsdd/all and data/fsdd/fold_<S>/{train,dev,test} (asrkit prepare fsdd), and
#      data/fsdd/all_sp: every file again at each --speed-perturb factor (asrkit data perturb-speed)
#   1  13 MFCCs at 8 kHz (conf/mfcc.conf) + per-speaker CMVN once for all_sp (a speed copy is a
#      speaker of its own), and for every file again at each VTLN warp of --train-warps and
#      --test-warps (local/vtln_copy.sh: ids w<W>-<utt>, a speaker of its own each; data/fsdd/all_vtln);
#      the fold dirs take their lines from them: train with its speed and warped copies
#      (data/<S>/train_aug), test and its warped copies (data/<S>/test_vtln)
#   2  word tokens (zero ... nine) and the grammar of each fold: an ARPA bigram that allows exactly
#      one word of the training text per utterance (asrkit make-lm --arpa)
#   3  train --ensemble models per fold ($config, seeds --seed, --seed + 1000, ...: exp/<config>_<S>, then
#      exp/<config>_<S>_m1, ...), validated on the fold's dev split
#   4  decode each fold's held-out speaker: greedy CTC, and with the grammar (asrkit decode --lm);
#      with --test-warps also the CTC posteriors averaged over the warped copies of its files
#      (asrkit decode --output loglikes, local/warp_average.py: no labels used), greedy, per model, and
#      with --ensemble N > 1 the best word of the N models' mean word posteriors (local/pseudo_label.py;
#      exp/<config>_<S>_ens): the first pass
#   5  unsupervised speaker adaptation, two-pass as Kaldi's fMLLR recipes are (the first pass's words, never the
#      labels): per fold and round, local/pseudo_label.py keeps the most confident of the held-out speaker's
#      files per hypothesised word with their hypothesis, the fold's (first) model is fine-tuned on its training
#      data and them (asrkit train --init-from), and the speaker is decoded again (VTLN average);
#      --adapt-rounds 0: none
#   6  results table (asrkit results, exp/RESULTS.md) and the mean WER over the folds of each decode
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
folds=                        # empty: every speaker found
seed=0
epochs=                       # empty: the config's
config=conf/blstm_word.yaml
ensemble=3                    # pass-1 models per fold (seeds $seed + 1000 k): their word posteriors averaged (stage 4;
                              # 3: the inner dev's choice, RESULTS.md); 1: one model
speed_perturb=0.9,1.0,1.1     # speed factors of the training copies; 1.0 alone: none
lm_weight=1.0                 # every sentence of the grammar is equally likely: any weight > 0 decodes the same
train_warps=                  # VTLN warps of training copies (--opt vtln-warp), e.g. 0.85,0.9,1.1; empty: none
test_warps=0.85,0.9,0.95,1.05,1.1,1.15  # VTLN warps the test posteriors are averaged over (with 1.0); empty: none
adapt_rounds=2                # self-training rounds on each held-out speaker's own first-pass words; 0: none. 2 with --ensemble 3:
                              # the inner dev's choice inside the 20 minutes (3 rounds gain 0.3-1.1 points more there, ~21 min)
adapt_keep=0.5                # the fraction of each hypothesised word's files (the most confident) kept as labels
adapt_epochs=3                # epochs of each round's fine-tuning (the fold's model on its training files + those)
adapt_lr=1.0e-3               # its peak learning rate (the warm-up cosine schedule of $config)
help_message="Usage: $0 --corpus DIR [--folds \"S1 S2\"] [--seed N] [--epochs N] [--config FILE]
  [--ensemble N] [--speed-perturb F1,F2,..] [--train-warps W1,W2,..] [--test-warps W1,W2,..] [--lm-weight W]
  [--adapt-rounds N] [--adapt-keep F] [--adapt-epochs N] [--adapt-lr LR] [--stage N] [--stop-stage N] [--nj N]"
. ./utils/parse_options.sh

name=$(basename "$config" .yaml)
train_opts=(--set training.device=cpu)  # the seed: each model's own (stages 3 and 5)
[ -n "$epochs" ] && train_opts+=(--set "training.epochs=$epochs")
[ "$ensemble" -ge 1 ] 2>/dev/null || { echo "$0: --ensemble $ensemble: expected a number of models >= 1" >&2; exit 1; }

members() {  # members S: the exp dirs of fold S's pass-1 models, the one fine-tuned in stage 5 first
  local k
  echo "exp/${name}_$1"
  for k in $(seq 1 $((ensemble - 1))); do echo "exp/${name}_${1}_m$k"; done
}

if stage_on 0; then
  [ -n "$corpus" ] || { echo "$0: give --corpus DIR (the folder holding recordings/)" >&2; exit 1; }
  corpus=$(abspath "$corpus")
  log "stage 0: data dirs from $corpus, speed factors $speed_perturb"
  asrkit prepare fsdd "$corpus" data/fsdd
  rm -rf data/fsdd/all_sp  # this stage's own output: made again, with new features in stage 1
  asrkit data perturb-speed --factors "$speed_perturb" data/fsdd/all data/fsdd/all_sp
fi
[ -n "$folds" ] || folds=$(cd data/fsdd && ls -d fold_* | sed 's/^fold_//')

copies() {  # copies SPEEDS WARPS < utterance ids: each id's speed copies (sp<f>-<utt>, as perturb-speed
  # names them; 1.0: the utterance) and warped copies (w<W>-<utt>; 1.0 is not repeated)
  awk -v f="$1" -v w="$2" 'BEGIN { n = split(f, fs, ","); m = split(w, ws, ",") }
    { for (i = 1; i <= n; i++) print (fs[i] + 0 == 1 ? $1 : "sp" fs[i] "-" $1)
      for (i = 1; i <= m; i++) if (ws[i] + 0 != 1) print "w" ws[i] "-" $1 }'
}

if stage_on 1; then
  log "stage 1: MFCC features and CMVN"
  asrkit make-feats data/fsdd/all_sp --type mfcc --conf conf/mfcc.conf --nj "$nj" --feat-dir mfcc
  asrkit compute-cmvn data/fsdd/all_sp --feat-dir mfcc
  # VTLN-warped copies of the unperturbed files, for the training copies (--train-warps) and the test-time
  # average (--test-warps): all 2,000 files once per warp (~10 s each), ids w<W>-<utt>, each copy a
  # speaker of its own for CMVN; warp 1.0 is the unperturbed file of all_sp.
  src=data/fsdd/all_sp
  warps=$(echo "$train_warps,$test_warps" | tr ',' '\n' | { grep -vx -e '' -e '1.0' || true; } | sort -u)
  if [ -n "$warps" ]; then
    aug_dirs=(data/fsdd/all_sp)
    for w in $warps; do
      local/vtln_copy.sh data/fsdd/all "data/fsdd/all_w$w" "$w"
      asrkit make-feats "data/fsdd/all_w$w" --type mfcc --conf conf/mfcc.conf --opt "vtln-warp=$w" --nj "$nj" \
        --feat-dir mfcc --overwrite
      asrkit compute-cmvn "data/fsdd/all_w$w" --feat-dir mfcc
      aug_dirs+=("data/fsdd/all_w$w")
    done
    src=data/fsdd/all_vtln
    asrkit data combine --overwrite "$src" "${aug_dirs[@]}"
  fi
  for s in $folds; do
    for part in train dev test; do
      asrkit data subset --overwrite --utt-list data/fsdd/fold_$s/$part/text data/fsdd/all_sp "data/$s/$part"
    done
    asrkit data subset --overwrite --utt-list <(cut -d' ' -f1 data/fsdd/fold_$s/train/text |
      copies "$speed_perturb" "$train_warps") "$src" "data/$s/train_aug"
    if [ -n "$test_warps" ]; then
      asrkit data subset --overwrite --utt-list <(cut -d' ' -f1 data/fsdd/fold_$s/test/text | copies 1.0 "$test_warps") \
        "$src" "data/$s/test_vtln"
    fi
  done
fi

grammar_arpa() {  # grammar_arpa TEXT: an ARPA bigram in which an utterance is one of the words of TEXT (one word
  # per utterance there), each equally likely
  # `make-lm --order 2` over the same text backs off to two words or none (a deletion costs little
  # against the acoustics); here every unigram has log10 probability -99, so only "<s> w </s>" is
  # reachable: the grammar Kaldi's egs/yesno and connected-digit tasks decode with.
  cut -d' ' -f2- "$1" | sort -u | awk '
    { w[++n] = $0 }
    END {
      printf "\\data\\\nngram 1=%d\nngram 2=%d\n\n\\1-grams:\n-99\t</s>\n-99\t<s>\t0\n", n + 2, 2 * n
      for (i = 1; i <= n; i++) printf "-99\t%s\t0\n", w[i]
      printf "\n\\2-grams:\n"
      for (i = 1; i <= n; i++) printf "%.6f\t<s> %s\n", -log(n) / log(10), w[i]
      for (i = 1; i <= n; i++) printf "0\t%s </s>\n", w[i]
      printf "\n\\end\\\n"
    }'
}

if stage_on 2; then
  log "stage 2: word tokens and the grammar LM"
  for s in $folds; do
    asrkit make-lang --type word "data/$s/train" "data/$s/lang_word"
    grammar_arpa "data/$s/train/text" > "data/$s/grammar.arpa.tmp"
    mv "data/$s/grammar.arpa.tmp" "data/$s/grammar.arpa"
    asrkit make-lm --arpa "data/$s/grammar.arpa" "data/$s/lang_word" "data/$s/lang_word_lm"
  done
fi

if stage_on 3; then
  for s in $folds; do
    k=0
    for exp in $(members "$s"); do
      log "stage 3: training $exp (test speaker $s held out, seed $((seed + 1000 * k)))"
      $train_cmd asrkit train --config "$config" --train-data "data/$s/train_aug" --valid-data "data/$s/dev" \
        --lang "data/$s/lang_word" --out-dir "$exp" "${train_opts[@]}" --set "training.seed=$((seed + 1000 * k))"
      k=$((k + 1))
    done
  done
fi

if stage_on 4; then
  log "stage 4: decode and score the held-out speakers"
  for s in $folds; do
    exp=exp/${name}_$s
    $decode_cmd asrkit decode --model "$exp/final.pt" --data "data/$s/test" \
      --out-dir "$exp/decode_test_$s" --search greedy --nj "$nj" --device cpu
    asrkit score --data "data/$s/test" --decode-dir "$exp/decode_test_$s"
    $decode_cmd asrkit decode --model "$exp/final.pt" --data "data/$s/test" --out-dir "$exp/decode_test_${s}_lm" \
      --lm "data/$s/lang_word_lm" --lm-weight "$lm_weight" --nj "$nj" --device cpu
    asrkit score --data "data/$s/test" --decode-dir "$exp/decode_test_${s}_lm"
    [ -n "$test_warps" ] || continue
    loglikes=()
    for exp in $(members "$s"); do
      $decode_cmd asrkit decode --model "$exp/final.pt" --data "data/$s/test_vtln" --out-dir "$exp/loglikes_test_${s}_vtln" \
        --output loglikes --nj "$nj" --device cpu
      python3 local/warp_average.py "data/$s/lang_word" "$exp/loglikes_test_${s}_vtln" "$exp/decode_test_${s}_vtln"
      asrkit score --data "data/$s/test" --decode-dir "$exp/decode_test_${s}_vtln"
      loglikes+=("$exp/loglikes_test_${s}_vtln")
    done
    if [ "$ensemble" -gt 1 ]; then
      # The models' word posteriors averaged (local/pseudo_label.py: per file the grammar's posterior of each word
      # under each model's warp average), the best word: not the frame posteriors, whose CTC spikes fall on other
      # frames in each model (their mean is blank almost everywhere: 100% WER on the inner dev).
      ens=exp/${name}_${s}_ens
      python3 local/pseudo_label.py "data/$s/lang_word" "${loglikes[@]}" "$ens/pseudo"
      mkdir -p "$ens/decode_test_${s}_vtln"
      cut -d' ' -f1-2 "$ens/pseudo/scores" > "$ens/decode_test_${s}_vtln/text.tmp"
      mv "$ens/decode_test_${s}_vtln/text.tmp" "$ens/decode_test_${s}_vtln/text"
      asrkit score --data "data/$s/test" --decode-dir "$ens/decode_test_${s}_vtln"
    fi
  done
fi

if stage_on 5 && [ "$adapt_rounds" -gt 0 ]; then
  [ -n "$test_warps" ] || { echo "$0: --adapt-rounds needs the test-time warps (--test-warps) of stage 4" >&2; exit 1; }
  log "stage 5: unsupervised adaptation to each held-out speaker, $adapt_rounds round(s) of self-training"
  for s in $folds; do
    exp=exp/${name}_$s
    loglikes=()  # round 1's labels: the first pass, the ensemble's with --ensemble N > 1
    for m in $(members "$s"); do loglikes+=("$m/loglikes_test_${s}_vtln"); done
    for r in $(seq 1 "$adapt_rounds"); do
      st=exp/${name}_${s}_st$r
      # The last pass's words (never data/$s/test/text): per hypothesised word the most confident --adapt-keep
      # of the speaker's files, each with its speed copies, as if transcribed; then the fold's model fine-tuned
      # on them and on what it was trained on (train_aug: the training files with their speed copies, which the
      # inner dev preferred to the files alone; RESULTS.md), and the speaker decoded again. Each round starts
      # from the fold's model, with the newer labels.
      python3 local/pseudo_label.py --keep "$adapt_keep" "data/$s/lang_word" "${loglikes[@]}" "$st/pseudo"
      asrkit data subset --overwrite --utt-list <(cut -d' ' -f1 "$st/pseudo/text" | copies "$speed_perturb" "") \
        data/fsdd/all_sp "data/$s/adapt_r$r"
      awk 'NR == FNR { w[$1] = $2; next } { u = $1; sub(/^sp[0-9.]+-/, "", u); print $1, w[u] }' "$st/pseudo/text" \
        <(cut -d' ' -f1 "data/$s/adapt_r$r/text") > "data/$s/adapt_r$r/text.tmp"
      mv "data/$s/adapt_r$r/text.tmp" "data/$s/adapt_r$r/text"
      $train_cmd asrkit train --config "$config" --train-data "data/$s/train_aug" --train-data "data/$s/adapt_r$r" \
        --valid-data "data/$s/dev" --lang "data/$s/lang_word" --out-dir "$st" --init-from "$exp/final.pt" --overwrite \
        "${train_opts[@]}" --set "training.seed=$seed" --set "training.epochs=$adapt_epochs" --set "optim.lr=$adapt_lr"
      loglikes=("$st/loglikes_test_${s}_vtln")
      $decode_cmd asrkit decode --model "$st/final.pt" --data "data/$s/test_vtln" --out-dir "${loglikes[0]}" \
        --output loglikes --nj "$nj" --device cpu
      python3 local/warp_average.py "data/$s/lang_word" "${loglikes[0]}" "$st/decode_test_${s}_vtln"
      asrkit score --data "data/$s/test" --decode-dir "$st/decode_test_${s}_vtln"
    done
  done
fi

if stage_on 6; then
  log "stage 6: results"
  asrkit results exp --markdown | tee exp/RESULTS.md
  decodes=("" _lm)
  [ -n "$test_warps" ] && decodes+=(_vtln)
  [ -n "$test_warps" ] && [ "$ensemble" -gt 1 ] && decodes+=(_ens)
  [ -n "$test_warps" ] && [ "$adapt_rounds" -gt 0 ] && decodes+=(_st)
  for d in "${decodes[@]}"; do
    case $d in
      "") what="(greedy, no LM)" ;;
      _lm) what="with the grammar LM" ;;
      _vtln) what="averaged over VTLN warps $test_warps and 1.0 (greedy)" ;;
      _ens) what="the $ensemble models' word posteriors averaged, each over the VTLN warps" ;;
      _st) what="after $adapt_rounds round(s) of self-training, VTLN average (greedy)" ;;
    esac
    for s in $folds; do
      case $d in
        _st) head -n 1 "exp/${name}_${s}_st$adapt_rounds/decode_test_${s}_vtln/wer" ;;
        _ens) head -n 1 "exp/${name}_${s}_ens/decode_test_${s}_vtln/wer" ;;
        *) head -n 1 "exp/${name}_$s/decode_test_$s$d/wer" ;;
      esac
    done | awk -v what="$what" '{ sum += $2; n++ } END { if (n) printf "mean WER over %d folds %s: %.2f%%\n", n, what, sum / n }'
  done | tee -a exp/RESULTS.md
fi
