#!/usr/bin/env bash
# Print the path of a CPython 3.12 interpreter: the Lambda runtime's Python (python3.12),
# which `make package-aws` compiles the artifact's bytecode with and SAM CLI runs on.
#
#   AWS_PY312=/path/to/python3.12   use this one (it must be 3.12)
#   otherwise                       python3.12 on PATH, then pyenv's 3.12.x versions
#
# Exits 1 with a message saying how to get one when there is none: never a silent fallback.
set -euo pipefail

is312() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' >/dev/null 2>&1; }

if [[ -n "${AWS_PY312:-}" ]]; then
  if is312 "$AWS_PY312"; then command -v "$AWS_PY312"; exit 0; fi
  echo "error: AWS_PY312=$AWS_PY312 is not a Python 3.12 interpreter" >&2
  exit 1
fi
# A pyenv shim answers only when 3.12 is the selected version, hence the check.
if command -v python3.12 >/dev/null 2>&1 && is312 python3.12; then
  python3.12 -c 'import sys; print(sys.executable)'
  exit 0
fi
if command -v pyenv >/dev/null 2>&1; then
  root="$(pyenv root)"
  for version in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.12\.[0-9]+$' | sort -t. -k3 -n -r); do
    candidate="$root/versions/$version/bin/python3.12"
    if is312 "$candidate"; then echo "$candidate"; exit 0; fi
  done
fi
cat >&2 <<'MSG'
error: no Python 3.12 found (the Lambda runtime's version: the artifact's bytecode and
SAM CLI need it). Install one (`pyenv install 3.12`, or your distribution's python3.12)
or point AWS_PY312 at it: make package-aws AWS_PY312=/path/to/python3.12
MSG
exit 1
