#!/usr/bin/env bash
# Command-line options for recipe scripts, with Kaldi's utils/parse_options.sh semantics:
#   --foo-bar VALUE  sets the shell variable foo_bar, which the script must already define;
#   an unknown option is an error; --opt=value is rejected; a variable whose default is
#   true/false accepts only true or false; --config FILE sources FILE first; --help prints
#   $help_message. Source it after the defaults:  stage=0; . utils/parse_options.sh
# Written for asrkit (Apache-2.0); behaviour follows Kaldi's script, the code is our own.

__po_die() { echo "$0: $*" >&2; exit 1; }

# A --config FILE anywhere sets defaults that the other options can still override.
for ((__po_i = 1; __po_i <= $#; __po_i++)); do
  if [ "${!__po_i}" = "--config" ]; then
    __po_j=$((__po_i + 1))
    __po_conf="${!__po_j:-}"
    [ -n "$__po_conf" ] || __po_die "--config needs a file name"
    [ -r "$__po_conf" ] || __po_die "cannot read config file '$__po_conf'"
    # shellcheck disable=SC1090
    . "$__po_conf" || __po_die "failed to source config file '$__po_conf'"
  fi
done

while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      if [ -n "${help_message:-}" ]; then printf '%s\n' "$help_message" >&2; else echo "$0: no help message" >&2; fi
      exit 0 ;;
    --config)
      shift 2 ;;  # already sourced above
    --*=*)
      __po_die "options to scripts must be of the form --name value, got '$1'" ;;
    --*)
      __po_name="${1#--}"
      __po_var="${__po_name//-/_}"
      [[ "$__po_var" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || __po_die "invalid option '$1'"
      # The variable must exist (set -u safe test): unknown options are errors.
      if ! declare -p "$__po_var" >/dev/null 2>&1; then
        __po_die "invalid option '$1'"
      fi
      [ $# -ge 2 ] || __po_die "option '$1' needs a value"
      __po_old="${!__po_var}"
      __po_new="$2"
      if [ "$__po_old" = true ] || [ "$__po_old" = false ]; then
        [ "$__po_new" = true ] || [ "$__po_new" = false ] || \
          __po_die "option '$1' takes true or false, not '$__po_new'"
      fi
      if [ "$__po_var" = cmd ] && [ -z "$__po_new" ]; then
        __po_die "empty argument to --cmd"
      fi
      printf -v "$__po_var" '%s' "$__po_new"
      shift 2 ;;
    *)
      break ;;
  esac
done

unset __po_i __po_j __po_conf __po_name __po_var __po_old __po_new
true
