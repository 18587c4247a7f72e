#!/usr/bin/env bash
# Create (or update) a virtualenv with pytest-rt and what its tests need.
#
#   scripts/setup.sh VENV [PIP REQUIREMENTS...]
#
# Idempotent and quiet; installs the project editable plus the given
# requirements. Only PyPI is needed.
set -euo pipefail
venv="$1"; shift
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$here" "$@" 2>&1 \
    | grep -v "^WARNING: Location" || true
"$venv/bin/python" -c "import pytest_rt" # fail loudly if the install did not work
