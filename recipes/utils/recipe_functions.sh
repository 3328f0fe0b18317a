# Shell functions every recipe shares, written once here and sourced from the recipe folder by run.sh
# and local/*.sh (`. ./utils/recipe_functions.sh`; utils/ links to this folder). They read the calling
# script's own variables, named as its options are:
#   stage, stop_stage             stage_on
#   caller_dir                    abspath (the folder run.sh was called from, saved before its `cd`)
#   device, ngpu (default 1), train_opts (default none), $train_cmd      train
#   hours                         hours_of (the --hours option of the multilingual corpus recipes)
#   nj                            make_fbank_cmvn
#   device, job_nj, search (default greedy), beam (default 8), $decode_cmd   decode_score
#   device, job_nj, lm_beam (default 50), nbest (default 10), $decode_cmd     decode_score_lm

log() { echo "$(date '+%F %T') $(basename "$0"): $*" >&2; }
die() { echo "$0: $*" >&2; exit 1; }
stage_on() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }  # stage_on N: N is in --stage..--stop-stage

# Paths given on the command line are relative to where run.sh was called from, not to the recipe.
abspath() { case "$1" in ""|/*) echo "$1" ;; *) echo "$caller_dir/$1" ;; esac; }

hours_of() {  # hours_of NAME... -> the --hours value of the language called NAME (or any other NAME given)
  # $hours is one value for every language, or LANG:H,... items (a language not listed gets all).
  local item name
  case "$hours" in *:*) ;; *) echo "$hours"; return ;; esac
  for item in ${hours//,/ }; do
    for name in "$@"; do
      if [ "${item%%:*}" = "$name" ]; then echo "${item#*:}"; return; fi
    done
  done
  echo all
}

make_fbank_cmvn() {  # make_fbank_cmvn DATA_DIR [extra asrkit make-feats options...]
  # Features with the recipe's conf/fbank.conf in $nj jobs (archives in fbank/), then per-speaker CMVN.
  local data=$1; shift
  asrkit make-feats "$data" --type fbank --conf conf/fbank.conf --nj "$nj" --feat-dir fbank "$@"
  asrkit compute-cmvn "$data" --feat-dir fbank
}

subset_by_language() {  # subset_by_language DATA_DIR LANG...: DATA_DIR_<LANG>, LANG's utterances and their features
  local data=$1 lang; shift
  for lang in "$@"; do
    asrkit data subset --lang "$lang" "$data" "${data}_$lang"
  done
}

train() {  # train NAME CONFIG [extra asrkit train options...]: exp/NAME, on $device (--ngpu N when ngpu > 1)
  local name=$1 config=$2; shift 2
  local gpu_opts=()
  if [ "${ngpu:-1}" -gt 1 ]; then gpu_opts=(--ngpu "$ngpu"); fi
  log "training exp/$name ($config)"
  # $train_opts is a string of options (--train-opts "--set a=1 --set b=2"): split into words on purpose.
  # shellcheck disable=SC2086
  $train_cmd asrkit train --config "$config" --out-dir "exp/$name" --set "training.device=$device" \
    "${gpu_opts[@]}" ${train_opts:-} "$@"
}

decode_score() {  # decode_score MODEL DATA_DIR DECODE_DIR [extra asrkit score options...]
  local model=$1 data=$2 dir=$3; shift 3
  $decode_cmd asrkit decode --model "$model" --data "$data" --out-dir "$dir" --search "${search:-greedy}" \
    --beam "${beam:-8}" --nj "$job_nj" --device "$device"
  asrkit score --data "$data" --decode-dir "$dir" "$@"
}

decode_score_lm() {  # decode_score_lm MODEL DEV_DIR TEST_DIR NAME --lm ... [more asrkit decode options]
  # Word-LM decoding with the LM weight and word penalty chosen on DEV_DIR, never on the test set:
  # DEV_DIR's n-best lists are rescored over asrkit score's grid (best_wer), and TEST_DIR is decoded
  # with the winner and scored at that one point. Decode dirs: <model dir>/NAME_<data dir name>.
  local model=$1 dev=$2 test=$3 name=$4; shift 4
  local exp best weight penalty
  exp=$(dirname "$model")
  local dev_dir=$exp/${name}_$(basename "$dev") test_dir=$exp/${name}_$(basename "$test")
  $decode_cmd asrkit decode --model "$model" --data "$dev" --out-dir "$dev_dir" --beam "${lm_beam:-50}" \
    --nbest "${nbest:-10}" --nj "$job_nj" --device "$device" "$@"
  asrkit score --data "$dev" --decode-dir "$dev_dir" >/dev/null
  best=$(awk '{print $NF}' "$dev_dir/best_wer")  # .../wer_<W>_<P>
  best=${best##*/wer_}; weight=${best%_*}; penalty=${best#*_}
  log "$dev_dir: LM weight $weight, word penalty $penalty ($(cut -d' ' -f1-2 "$dev_dir/best_wer") on $(basename "$dev"))"
  $decode_cmd asrkit decode --model "$model" --data "$test" --out-dir "$test_dir" --beam "${lm_beam:-50}" \
    --lm-weight "$weight" --word-penalty "$penalty" --nj "$job_nj" --device "$device" "$@"
  asrkit score --data "$test" --decode-dir "$test_dir" --lm-weights "$weight" --word-penalties "$penalty"
}

decode_score_monolingual() {  # decode_score_monolingual DECODE_NAME [extra asrkit score options...]
  # The monolingual pruned models of the pathways stage (exp/rnnt_mono<percent>/<lang>/final.pt),
  # each on its own language's test set data/test_<lang>, into <model dir>/DECODE_NAME.
  local name=$1 model lang; shift
  for model in exp/rnnt_mono*/*/final.pt; do
    [ -f "$model" ] || continue
    lang=$(basename "$(dirname "$model")")
    decode_score "$model" "data/test_$lang" "$(dirname "$model")/$name" "$@"
  done
}
