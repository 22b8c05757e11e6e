#!/usr/bin/env bash
# The C# backend: compiles adapters/csharp/*.cs against GDCM's C# bindings with Mono's mcs into
# ${DICOM_HUB_CSHARP_BUILD:-${XDG_DATA_HOME:-~/.local/share}/dicom-hub/csharp} (outside the repo).
# Rebuilds only when a source (or a contract data file compiled in as a resource: the info fields,
# the Annex E table, the IOD tables) is newer than the program. The IOD tables go in as iods.tsv,
# exported by the Python backend (tags resolved by pydicom), so this runs after 20-python.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${DICOM_HUB_CSHARP_BUILD:-${XDG_DATA_HOME:-$HOME/.local/share}/dicom-hub/csharp}"
exe="${out}/DicomHubGdcm.exe"
sources=(adapters/csharp/*.cs)
resources=(contract/info_fields.json contract/data/ps3.15-annex-e-2024b*.tsv contract/data/deid-dummy-items.tsv contract/data/ps3.3-iods-*.bin.gz contract/dicom/deid/iods.py)
python=.venv/bin/python

if [ -f "${exe}" ] && [ -z "$(find "${sources[@]}" "${resources[@]}" -newer "${exe}" -print -quit)" ]; then
    echo "csharp: ${exe} is up to date" >&2
    exit 0
fi
[ -x "${python}" ] || { echo "csharp: ${python} missing (it exports the IOD tables); run scripts/install/20-python.sh first" >&2; exit 1; }
for tool in mcs mono; do
    command -v "${tool}" >/dev/null || { echo "csharp: ${tool} missing (apt packages mono-mcs mono-runtime)" >&2; exit 1; }
done
# gdcm-sharp.dll and its native glue (libgdcmsharpglue.so) come from the Debian package libgdcm-cil.
dll="$(dpkg -L libgdcm-cil 2>/dev/null | grep '/gdcm-sharp\.dll$' | head -n1 || true)"
dll="${GDCM_SHARP_DLL:-${dll}}"
if [ -z "${dll}" ] || [ ! -f "${dll}" ]; then
    echo "csharp: gdcm-sharp.dll not found (apt package libgdcm-cil, or set GDCM_SHARP_DLL)" >&2
    exit 1
fi
glue="$(dirname "${dll}")/libgdcmsharpglue.so"
mkdir -p "${out}"
"${python}" -c 'import sys; from dicom_hub.contract.dicom.deid.iods import write_tsv; write_tsv(sys.argv[1])' "${out}/iods.tsv"
mcs -nologo -optimize+ -warnaserror+ -r:"${dll}" \
    -resource:contract/info_fields.json,info_fields.json \
    -resource:contract/data/ps3.15-annex-e-2024b.tsv,annex-e.tsv \
    -resource:contract/data/ps3.15-annex-e-2024b-repeating.tsv,annex-e-repeating.tsv \
    -resource:contract/data/deid-dummy-items.tsv,dummy-items.tsv \
    -resource:"${out}/iods.tsv",iods.tsv \
    -out:"${exe}.tmp" "${sources[@]}"
mv "${exe}.tmp" "${exe}"
rm -f "${out}/iods.tsv"
# Mono resolves the assembly and its DllImport("gdcmsharpglue") from the program's own folder.
ln -sf "${dll}" "${out}/gdcm-sharp.dll"
ln -sf "${glue}" "${out}/libgdcmsharpglue.so"
echo "csharp: built ${exe} ($(mono "${exe}" --version))" >&2
