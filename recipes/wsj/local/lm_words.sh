#!/usr/bin/env bash
# The words of an ARPA file's unigrams that a pronunciation dictionary has: what Kaldi's
# wsj_format_data.sh keeps in G (utils/find_arpa_oovs.pl + remove_oovs.pl drop the n-grams of
# words its lexicon lacks), so that an LM dir's lexicon holds the same vocabulary.
#
#   local/lm_words.sh ARPA DICT OUT   (ARPA plain or gzipped; DICT a CMU dict such as cmudict-0.7b or a
#                                      Kaldi lexicon.txt: first field, "WORD(2)" variants as WORD,
#                                      ";;;" comment lines skipped)
#
# <s>, </s> and the <UNK>/<NOISE>/<SPOKEN_NOISE> symbols are left out (no speech spells them).
# OUT: one word a line, C-sorted, written under a temporary name and renamed.
set -euo pipefail
. ./utils/recipe_functions.sh

[ $# -eq 3 ] || die "usage: $0 ARPA DICT OUT"
arpa=$1 dict=$2 out=$3
[ -f "$arpa" ] || die "$arpa not found"
[ -f "$dict" ] || die "$dict not found"
export LC_ALL=C
tmp=$(dirname "$out")/.$(basename "$out").tmp
gzip -dcf < "$dict" | awk '!/^;;;/ && NF { w = $1; sub(/\([0-9]+\)$/, "", w); print w }' | sort -u > "$tmp.dict"
gzip -dcf < "$arpa" | awk '/^\\1-grams:/ { on = 1; next } /^\\/ { on = 0 } on && NF >= 2 && $2 !~ /^</ { print $2 }' \
  | sort -u | comm -12 - "$tmp.dict" > "$tmp"
rm "$tmp.dict"
[ -s "$tmp" ] || { rm -f "$tmp"; die "no word of $arpa is in $dict (is it the right dictionary, in the LM's case?)"; }
mv "$tmp" "$out"
log "$out: $(wc -l < "$out") of the LM's words are in $dict"
