#!/usr/bin/env bash
# The virtual environment in .venv with dicom-hub (editable) and every extra.
set -euo pipefail
cd "$(dirname "$0")/../.."
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "${python}" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >&2
.venv/bin/python -m pip install -q -e '.[all,dev]' >&2
echo "python: $(.venv/bin/python --version), dicom-hub installed in .venv" >&2
