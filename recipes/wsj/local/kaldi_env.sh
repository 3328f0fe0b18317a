#!/usr/bin/env bash
# Sourced by the hybrid stages: puts Kaldi's binaries on PATH (from $KALDI_ROOT, as Kaldi's own
# path.sh does) and stops with one line saying how to point to Kaldi when they are not found.
if [ -n "${KALDI_ROOT:-}" ]; then
  [ -d "$KALDI_ROOT/src" ] || { echo "$0: KALDI_ROOT=$KALDI_ROOT has no src/ folder; set KALDI_ROOT to a compiled Kaldi checkout" >&2; exit 1; }
  if [ -f "$KALDI_ROOT/tools/config/common_path.sh" ]; then
    # shellcheck disable=SC1091
    . "$KALDI_ROOT/tools/config/common_path.sh"
  else
    for __kaldi_bin in "$KALDI_ROOT"/src/*bin; do PATH=$__kaldi_bin:$PATH; done
    unset __kaldi_bin
  fi
  PATH=$KALDI_ROOT/tools/openfst/bin:$PATH
  export PATH
fi
for __kaldi_prog in ali-to-pdf tree-info latgen-faster-mapped; do
  command -v "$__kaldi_prog" >/dev/null 2>&1 || {
    echo "$0: Kaldi not found ($__kaldi_prog is not on PATH): export KALDI_ROOT=/path/to/kaldi (with src/ compiled), or put Kaldi's src/*bin folders on PATH" >&2
    exit 1
  }
done
unset __kaldi_prog
true
