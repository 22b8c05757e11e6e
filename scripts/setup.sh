#!/usr/bin/env bash
# Installs everything dicom-hub needs on a fresh Debian machine, then runs one real job.
# Each step is a script in scripts/install/, run in name order; every step is idempotent and
# fast when there is nothing to do, so running this again is cheap.
set -euo pipefail
cd "$(dirname "$0")/.."

for step in scripts/install/[0-9][0-9]-*.sh; do
    echo "==> ${step}" >&2
    bash "${step}"
done

echo "==> dicom-hub run --op info --input sample:CT_small.dcm" >&2
.venv/bin/dicom-hub run --op info --input sample:CT_small.dcm --pretty
echo "==> backends" >&2
.venv/bin/dicom-hub backends >&2
