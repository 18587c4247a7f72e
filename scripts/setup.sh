#!/usr/bin/env bash
# Create (or update) a virtualenv with pytest-rt and what its tests need.
#
#   scripts/setup.sh VENV EXTRAS [PIP REQUIREMENTS...]
#
# Idempotent and quiet; installs the project editable with EXTRAS (e.g.
# "server,test"; "" for none) plus the given requirements. Only PyPI is needed.
set -euo pipefail
venv="$1"; extras="$2"; shift 2
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 \
        | { grep -v "^WARNING: Location" || true; }
fi
project="$here"; [ -n "$extras" ] && project="$here[$extras]"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$project" "$@" 2>&1 \
    | { grep -v "^WARNING: Location" || true; }
"$venv/bin/python" -c "import pytest_rt" # fail loudly if the install did not work
