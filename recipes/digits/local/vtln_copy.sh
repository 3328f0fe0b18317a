#!/usr/bin/env bash
# vtln_copy.sh SRC DST WARP: DST = the data dir SRC (no features) with utterance and speaker ids prefixed
# "w<WARP>-", for features at that VTLN warp (asrkit make-feats --opt vtln-warp=WARP): each warped copy is
# a speaker of its own for CMVN, and the copies of several warps can be combined into one dir.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 SRC DST WARP" >&2; exit 1; }
src=$1 dst=$2 prefix="w$3-"
[ -f "$src/utt2spk" ] || { echo "$0: $src/utt2spk: no such file" >&2; exit 1; }
rm -rf "$dst"
mkdir -p "$dst"
for f in wav.scp text utt2dur utt2lang; do
  if [ -f "$src/$f" ]; then awk -v p="$prefix" '{ print p $0 }' "$src/$f" > "$dst/$f"; fi
done
awk -v p="$prefix" '{ print p $1, p $2 }' "$src/utt2spk" > "$dst/utt2spk"
awk '{ u[$2] = u[$2] " " $1 } END { for (s in u) print s u[s] }' "$dst/utt2spk" | sort > "$dst/spk2utt"
