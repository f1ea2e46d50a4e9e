#!/usr/bin/env bash
# Recomputes expected.json from independent implementations installed from PyPI into a temporary
# venv (ranx, pytrec-eval-terrier, vendi-score, scipy), then runs the Rust test that compares
# diff4steer-eval with it. Needs python3 with venv and network access to PyPI.
#   bash diff4steer-eval/tests/crosscheck/crosscheck.sh [--make-fixtures]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$(mktemp -d)"
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet ranx==0.3.21 pytrec-eval-terrier==0.5.11 vendi-score==0.0.3 scipy numpy
"$venv/bin/python" "$here/crosscheck.py" "$@"
cd "$here/../../.."
cargo test -p diff4steer-eval --test crosscheck
