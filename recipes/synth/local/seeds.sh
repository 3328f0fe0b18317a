#!/usr/bin/env bash
# `make demo-seeds`: the trained stages of run.sh (3-9) once per training seed, and one table of
# mean ± sample standard deviation over the seeds, so RESULTS.md can say which differences between
# systems are larger than the noise (issue 18.5).
#
#   local/seeds.sh [--size demo] [--seeds "1 2 3"] [--nj N] [--device auto|cpu|cuda]
#
# Stages 0-2 (corpus, features, tokens, LMs) run once, here, unless done already; each seed then
# runs in seeds/seed<N>/: the recipe's scripts, data/ and fbank/ linked, an exp/ of its own. The
# table goes to seeds/RESULTS.md (asrkit results seeds/seed*/exp). A seed whose exp/RESULTS.md
# exists is not run again; delete seeds/seed<N> to redo one.
set -euo pipefail
cd "$(dirname "$0")/.."
. ./path.sh  # asrkit on PATH for the seed folders' run.sh too (their path.sh links resolve elsewhere)
. ./utils/recipe_functions.sh

size=demo
seeds="1 2 3"
nj=2
device=auto
help_message="Usage: $0 [--size tiny|demo|small|full] [--seeds \"1 2 3\"] [--nj N] [--device auto|cpu|cuda]"
. ./utils/parse_options.sh

[ -n "${seeds// /}" ] || die "--seeds is empty"
for seed in $seeds; do
  case "$seed" in ''|*[!0-9]*) die "--seeds: '$seed' is not a whole number" ;; esac
done
if [ ! -f data/train/cmvn.scp ]; then
  ./run.sh --size "$size" --stage 0 --stop-stage 2 --nj "$nj" --device "$device"
fi
roots=()
for seed in $seeds; do
  dir=seeds/seed$seed
  roots+=("$dir/exp")
  if [ -f "$dir/exp/RESULTS.md" ]; then log "$dir: done already"; continue; fi
  mkdir -p "$dir"
  for f in run.sh cmd.sh path.sh conf local utils data fbank; do ln -sfn "../../$f" "$dir/$f"; done
  log "seed $seed: stages 3-10 in $dir"
  (cd "$dir" && ./run.sh --size "$size" --stage 3 --stop-stage 10 --nj "$nj" --device "$device" --seed "$seed")
done
asrkit results "${roots[@]}" --markdown | tee seeds/RESULTS.md
