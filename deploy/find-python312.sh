#!/usr/bin/env bash
# Print the path of a CPython 3.12 interpreter: the Lambda runtime's Python (python3.12),
# which `make package-aws` compiles the artifact's bytecode with and SAM CLI runs on.
# AWS_PY312=/path/to/python3.12 chooses one; the search itself is deploy/find-python.sh's.
set -euo pipefail
here="${BASH_SOURCE[0]%/*}"  # no dirname: the tests run this with a bare PATH
[[ "$here" != "${BASH_SOURCE[0]}" ]] || here=.
exec bash "$here/find-python.sh" 3.12 AWS_PY312 \
  "the Lambda runtime's version: the artifact's bytecode and SAM CLI need it"
