#!/usr/bin/env bash
# The NIST WSJ language models as Kaldi's local/wsj_data_prep.sh makes them, from the corpus: on the
# WSJ1 disk 13-32.1 (wsj1/doc/lng_modl/base_lm/), the 20k-word open-vocabulary, non-verbalised
# punctuation bigram (bcb20onp.z) and trigram (tcb20onp.z, after the header lines that precede its
# \data\), and the trigram pruned with IRSTLM's `prune-lm --threshold=1e-7` (tgpr) when prune-lm is
# on PATH (without it lm_tgpr.arpa.gz is not made: point run.sh's --nist-lm at a Kaldi
# data/local/nist_lm instead).
#
#   local/wsj_nist_lm.sh WSJ1_DIR OUT_DIR   ->   OUT_DIR/lm_bg.arpa.gz, lm_tg.arpa.gz, lm_tgpr.arpa.gz
#
# Each file is written under a temporary name and renamed. The .z files are read with `gzip -dcf`,
# which takes them compressed or not (the trigram is stored as plain text on some copies).
set -euo pipefail
. ./utils/recipe_functions.sh

[ $# -eq 2 ] || die "usage: $0 WSJ1_DIR OUT_DIR"
wsj1=$1 out=$2
mkdir -p "$out"

corpus_file() {  # corpus_file NAME: the base_lm file of disk 13-32.1, whatever case the copy has
  local found
  found=$(find -L "$wsj1" -ipath "*/13-32.1/wsj1/doc/lng_modl/base_lm/$1" -type f | sort | head -n 1)
  [ -n "$found" ] || die "$wsj1: no 13-32.1/wsj1/doc/lng_modl/base_lm/$1 (the WSJ1 disk with the NIST LMs)"
  echo "$found"
}

bg=$(corpus_file bcb20onp.z)
tg=$(corpus_file tcb20onp.z)
gzip -dcf < "$bg" | gzip -c > "$out/.lm_bg.arpa.gz.tmp"
mv "$out/.lm_bg.arpa.gz.tmp" "$out/lm_bg.arpa.gz"
# wsj_data_prep.sh: perl -e 'while(<>){ if(m/^\\data\\/){ print; last; } } while(<>){ print; }'
gzip -dcf < "$tg" | awk 'found || /^\\data\\/ { found = 1; print }' | gzip -c > "$out/.lm_tg.arpa.gz.tmp"
mv "$out/.lm_tg.arpa.gz.tmp" "$out/lm_tg.arpa.gz"
log "wrote $out/lm_bg.arpa.gz ($bg) and $out/lm_tg.arpa.gz ($tg)"

if command -v prune-lm >/dev/null 2>&1; then
  rm -f "$out/.lm_tgpr.arpa.tmp"
  prune-lm --threshold=1e-7 "$out/lm_tg.arpa.gz" "$out/.lm_tgpr.arpa.tmp"
  gzip -c < "$out/.lm_tgpr.arpa.tmp" > "$out/.lm_tgpr.arpa.gz.tmp"
  rm "$out/.lm_tgpr.arpa.tmp"
  mv "$out/.lm_tgpr.arpa.gz.tmp" "$out/lm_tgpr.arpa.gz"
  log "wrote $out/lm_tgpr.arpa.gz (prune-lm --threshold=1e-7)"
else
  log "prune-lm (IRSTLM) not on PATH: $out/lm_tgpr.arpa.gz not made"
fi
