#!/usr/bin/env bash
# Common Voice clips are mp3 at 48 kHz (some older releases 32 kHz); the features are computed at
# 16 kHz (conf/fbank.conf), so each wav.scp entry becomes a resampling pipe, as Kaldi's and
# ESPnet's Common Voice recipes do. Entries that are already pipes are left alone, so running it
# twice changes nothing. The file is replaced atomically.
#   local/resample_wav_scp.sh [--resampler ffmpeg|sox] [--rate 16000] DATA_DIR
set -euo pipefail

resampler=ffmpeg
rate=16000
help_message="Usage: $0 [--resampler ffmpeg|sox] [--rate HZ] DATA_DIR"
. ./utils/parse_options.sh
[ $# -eq 1 ] || { printf '%s\n' "$help_message" >&2; exit 1; }
wav_scp=$1/wav.scp
[ -f "$wav_scp" ] || { echo "$0: $wav_scp not found" >&2; exit 1; }
case "$resampler" in
  ffmpeg|sox) command -v "$resampler" >/dev/null 2>&1 || {
    echo "$0: $resampler not found: install it (ffmpeg; or sox with mp3 support, e.g. libsox-fmt-mp3) or choose --resampler" >&2
    exit 1; } ;;
  *) echo "$0: --resampler must be ffmpeg or sox, not '$resampler'" >&2; exit 1 ;;
esac

awk -v prog="$resampler" -v rate="$rate" -v q="'" '
  / \|$/ { print; next }
  {
    key = $1; path = substr($0, index($0, " ") + 1)
    sub(/^[ \t]+/, "", path)
    if (path ~ /[^A-Za-z0-9_.\/+=:,@%-]/) path = q path q   # quote paths the shell would split
    if (prog == "ffmpeg") printf "%s ffmpeg -nostdin -loglevel error -i %s -ac 1 -ar %d -f wav - |\n", key, path, rate
    else printf "%s sox %s -t wav -c 1 -r %d - |\n", key, path, rate
  }' "$wav_scp" > "$wav_scp.tmp"
mv "$wav_scp.tmp" "$wav_scp"
