#!/usr/bin/env bash
# Hybrid decoding with Kaldi (stage 10 of run.sh). asrkit writes per-frame log-likelihoods
# (log posterior - log prior, priors counted from the training alignments), Kaldi's
# latgen-faster-mapped searches the HCLG graph built for the alignments' tree, and Kaldi's
# steps/score_kaldi.sh scores the lattices over its LM-weight / insertion-penalty sweep
# (DECODE_DIR/wer_<lmwt>_<wip>, best in DECODE_DIR/scoring_kaldi/best_wer).
#
#   local/decode_kaldi.sh [options] MODEL DATA_DIR GRAPH_DIR ALI_DIR DECODE_DIR
#   e.g. local/decode_kaldi.sh exp/hybrid_dnn_kl/final.pt data/test_eval92 \
#          ~/kaldi/egs/wsj/s5/exp/tri4b/graph_bd_tgpr ~/kaldi/egs/wsj/s5/exp/tri4b_ali_si284 \
#          exp/hybrid_dnn_kl/decode_bd_tgpr_eval92
#
# Lattice search options are those of Kaldi's steps/nnet/decode.sh (acwt 0.1, so the LM weights
# swept are 4..15). A finished decode (same log-likelihoods, graph and options) is not redone.
set -euo pipefail

nj=4
device=cpu
acwt=0.1
beam=13.0
lattice_beam=8.0
max_active=7000
min_lmwt=4
max_lmwt=15
kaldi_egs=   # a Kaldi egs dir with steps/ and utils/ [default: $KALDI_ROOT/egs/wsj/s5]
help_message="Usage: $0 [--nj N] [--device auto|cpu|cuda] [--acwt F] [--beam F] [--lattice-beam F] [--max-active N]
       [--min-lmwt N] [--max-lmwt N] [--kaldi-egs DIR] MODEL DATA_DIR GRAPH_DIR ALI_DIR DECODE_DIR"
. ./utils/parse_options.sh
[ $# -eq 5 ] || { printf '%s\n' "$help_message" >&2; exit 1; }
model=$1 data=$2 graph=$3 ali_dir=$4 dir=$5

. ./local/kaldi_env.sh
[ -n "$kaldi_egs" ] || kaldi_egs=${KALDI_ROOT:-}/egs/wsj/s5
[ -x "$kaldi_egs/steps/score_kaldi.sh" ] || {
  echo "$0: $kaldi_egs/steps/score_kaldi.sh not found: set KALDI_ROOT, or --kaldi-egs to a Kaldi egs dir with steps/ and utils/" >&2
  exit 1
}
for f in "$model" "$data/feats.scp" "$data/text" "$graph/HCLG.fst" "$graph/words.txt" "$ali_dir/final.mdl"; do
  [ -f "$f" ] || { echo "$0: $f not found" >&2; exit 1; }
done

# 1. log-likelihoods (asrkit skips this when the same decode has finished).
ali_rspec="ark:ali-to-pdf $ali_dir/final.mdl 'ark:gunzip -c $ali_dir/ali.*.gz|' ark:-|"
[ "$device" = cuda ] && job_nj=1 || job_nj=$nj
asrkit decode --model "$model" --data "$data" --out-dir "$dir/loglikes" --output loglikes \
  --priors-from-ali "$ali_rspec" --nj "$job_nj" --device "$device"

# 2. lattices: one latgen-faster-mapped per slice of loglikes.scp.
opts="--min-active=200 --max-active=$max_active --beam=$beam --lattice-beam=$lattice_beam --acoustic-scale=$acwt --allow-partial=true"
signature=$( { md5sum < "$dir/loglikes/loglikes.scp"; md5sum < "$graph/HCLG.fst"; md5sum < "$ali_dir/final.mdl"; echo "$nj $opts"; } | md5sum)
if [ -f "$dir/.lat_done" ] && [ "$(cat "$dir/.lat_done")" = "$signature" ]; then
  echo "$0: lattices in $dir are up to date" >&2
else
  rm -f "$dir"/lat.*.gz "$dir/.lat_done"
  mkdir -p "$dir/log" "$dir/split$nj"
  awk -v n="$nj" -v out="$dir/split$nj/loglikes" '{ print > (out "." ((NR - 1) % n + 1) ".scp") }' \
    "$dir/loglikes/loglikes.scp"
  pids=()
  for j in $(seq "$nj"); do
    [ -s "$dir/split$nj/loglikes.$j.scp" ] || continue
    # shellcheck disable=SC2086
    latgen-faster-mapped $opts --word-symbol-table="$graph/words.txt" "$ali_dir/final.mdl" "$graph/HCLG.fst" \
      "scp:$dir/split$nj/loglikes.$j.scp" "ark:|gzip -c > $dir/lat.$j.gz" 2> "$dir/log/decode.$j.log" &
    pids+=("$!:$j")
  done
  for p in "${pids[@]}"; do
    wait "${p%%:*}" || { echo "$0: latgen-faster-mapped job ${p#*:} failed: see $dir/log/decode.${p#*:}.log" >&2; exit 1; }
  done
  echo "$nj" > "$dir/num_jobs"
  echo "$signature" > "$dir/.lat_done"
fi

# 3. Kaldi scoring, run from the Kaldi egs dir (its path.sh, steps/ and utils/) on absolute paths.
abs_data=$(cd "$data" && pwd); abs_graph=$(cd "$graph" && pwd); abs_dir=$(cd "$dir" && pwd)
(cd "$kaldi_egs" && steps/score_kaldi.sh --cmd utils/run.pl --min-lmwt "$min_lmwt" --max-lmwt "$max_lmwt" \
  "$abs_data" "$abs_graph" "$abs_dir")
cat "$dir/scoring_kaldi/best_wer"
