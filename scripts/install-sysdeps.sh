#!/usr/bin/env bash
# Installs the optional system tools asrkit's tests and recipes call (sox for `wav.scp` pipes, as
# Kaldi recipes use it). Best effort: without root or apt, the tests that need them are skipped.
set -u
missing=()
command -v sox >/dev/null 2>&1 || missing+=(sox)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "install-sysdeps: installing ${missing[*]}"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >/dev/null 2>&1 \
    || echo "install-sysdeps: could not install ${missing[*]}; tests that need them will be skipped" >&2
else
  echo "install-sysdeps: ${missing[*]} not found and cannot install without root; tests that need them will be skipped" >&2
fi
exit 0
