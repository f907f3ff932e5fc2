#!/usr/bin/env bash
# Print the path of a CPython X.Y interpreter, for a tool that needs that exact version.
#
#   bash deploy/find-python.sh X.Y OVERRIDE_VAR "why it is needed"
#
#   $OVERRIDE_VAR=/path/to/pythonX.Y   use this one (it must be X.Y)
#   otherwise                         pythonX.Y on PATH, then pyenv's X.Y.z versions
#                                     (newest first), also when pyenv itself is not on
#                                     PATH: under $PYENV_ROOT, or ~/.pyenv
#
# Exits 1 with a message saying how to get one when there is none: never a silent fallback.
set -euo pipefail

if [[ $# -ne 3 || ! "$1" =~ ^3\.[0-9]+$ || ! "$2" =~ ^[A-Z_][A-Z0-9_]*$ ]]; then
  echo "usage: find-python.sh X.Y OVERRIDE_VAR WHY" >&2
  exit 2
fi
version="$1" override="$2" why="$3"
major="${version%%.*}" minor="${version#*.}"

is_version() {
  "$1" -c "import sys; sys.exit(sys.version_info[:2] != ($major, $minor))" >/dev/null 2>&1
}

if [[ -n "${!override:-}" ]]; then
  if is_version "${!override}"; then command -v "${!override}"; exit 0; fi
  echo "error: $override=${!override} is not a Python $version interpreter" >&2
  exit 1
fi
# A pyenv shim answers only when X.Y is the selected version, hence the check.
if command -v "python$version" >/dev/null 2>&1 && is_version "python$version"; then
  "python$version" -c 'import sys; print(sys.executable)'
  exit 0
fi
root=""
if command -v pyenv >/dev/null 2>&1; then
  root="$(pyenv root)"
elif [[ -n "${PYENV_ROOT:-}" ]]; then
  root="$PYENV_ROOT"
elif [[ -n "${HOME:-}" ]]; then
  root="$HOME/.pyenv"
fi
if [[ -n "$root" && -d "$root/versions" ]]; then
  mapfile -t found < <(
    cd "$root/versions" && printf '%s\n' "$version".* | grep -E "^${version/./\\.}\.[0-9]+$" | sort -t. -k3 -n -r
  )
  for found_version in "${found[@]}"; do
    candidate="$root/versions/$found_version/bin/python$version"
    if is_version "$candidate"; then echo "$candidate"; exit 0; fi
  done
fi
cat >&2 <<MSG
error: no Python $version found ($why). Install one (\`pyenv install $version\`, or your
distribution's python$version) or point $override at it: make ... $override=/path/to/python$version
MSG
exit 1
