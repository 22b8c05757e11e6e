#!/usr/bin/env bash
# dicom-rs command-line tools (Rust), pinned, built with cargo from crates.io.
# Nothing is built when every binary already reports the pinned version, so a rerun is instant.
# All crates share one target directory, so their common dependencies compile once.
set -euo pipefail

version="${DICOM_RS_VERSION:-0.10.1}"
target_dir="${CARGO_TARGET_DIR:-${HOME}/.cache/dicom-hub/cargo-target}"
bin_dir="${CARGO_HOME:-${HOME}/.cargo}/bin"
log_dir="${HOME}/.cache/dicom-hub"
# Each crate installs the binary of the same name (dicom-dump, dicom-toimage and dicom-transcode: see below).
tools=(dicom-echoscu dicom-storescu dicom-findscu dicom-movescu dicom-storescp)
# Codec features, best first: JPEG-LS (charls) and JPEG 2000 (openjpeg-sys) compile C/C++ code;
# when that fails, fall back to fewer codecs (the chosen set is recorded in a stamp file).
transcode_features=("cli,charls,openjpeg-sys" "cli,charls" "cli,openjpeg-sys" "cli")
toimage_features=("dicom-pixeldata/charls,dicom-pixeldata/openjpeg-sys" "dicom-pixeldata/charls" "dicom-pixeldata/openjpeg-sys" "")
# dicom-dump reads Deflated Explicit VR Little Endian only with this feature (pure Rust, always builds);
# without it, info/dump/to_json fail on the deflated files dicom-transcode writes.
dump_features=("dicom-object/deflate")

# Is `binary` present at the pinned version (or newer)?
current() {
    local binary="$1" have
    [ -x "${bin_dir}/${binary}" ] || return 1
    have="$("${bin_dir}/${binary}" --version 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n1)" || return 1
    [ -n "${have}" ] && [ "$(printf '%s\n%s\n' "${version}" "${have}" | sort -V | head -n1)" = "${version}" ]
}

# A binary built with codec features is current only when its stamp file exists too.
current_with_stamp() {
    current "$1" && [ -f "${log_dir}/$1.features" ]
}

stale=()
for tool in "${tools[@]}"; do
    current "${tool}" || stale+=("${tool}")
done
transcode_stale=0
current_with_stamp dicom-transcode || transcode_stale=1
toimage_stale=0
current_with_stamp dicom-toimage || toimage_stale=1
dump_stale=0
current_with_stamp dicom-dump || dump_stale=1

if [ "${#stale[@]}" -eq 0 ] && [ "${transcode_stale}" -eq 0 ] && [ "${toimage_stale}" -eq 0 ] && [ "${dump_stale}" -eq 0 ]; then
    echo "dicom-rs: all tools at ${version} or newer in ${bin_dir}" >&2
    exit 0
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "dicom-rs: cargo not found; install Rust (https://rustup.rs, MSRV 1.85) and rerun" >&2
    exit 1
fi
mkdir -p "${target_dir}" "${log_dir}"
export CARGO_TARGET_DIR="${target_dir}"
start=$(date +%s)

if [ "${#stale[@]}" -gt 0 ]; then
    echo "dicom-rs: building ${stale[*]} ${version} (first build takes minutes)" >&2
    cargo install --locked --version "${version}" "${stale[@]}" >&2
fi

# Install `crate` (binary `binary`) with the first feature set of the list that builds.
install_with_features() {
    local crate="$1" binary="$2"; shift 2
    local features
    for features in "$@"; do
        echo "dicom-rs: building ${binary} ${version} with features '${features}'" >&2
        if cargo install --locked --force --version "${version}" "${crate}" ${features:+--features "${features}"} >&2; then
            echo "${features:-default}" > "${log_dir}/${binary}.features"
            return 0
        fi
        echo "dicom-rs: ${crate} with '${features}' failed to build; trying fewer features" >&2
    done
    echo "dicom-rs: ${binary} could not be built" >&2
    return 1
}

# dicom-transcode comes from dicom-pixeldata's `cli` feature.
[ "${transcode_stale}" -eq 0 ] || install_with_features dicom-pixeldata dicom-transcode "${transcode_features[@]}"
# dicom-toimage decodes JPEG-LS / JPEG 2000 input only with these dicom-pixeldata features.
[ "${toimage_stale}" -eq 0 ] || install_with_features dicom-toimage dicom-toimage "${toimage_features[@]}"
[ "${dump_stale}" -eq 0 ] || install_with_features dicom-dump dicom-dump "${dump_features[@]}"

for tool in "${tools[@]}" dicom-dump dicom-transcode dicom-toimage; do
    current "${tool}" || { echo "dicom-rs: ${tool} ${version} is still missing from ${bin_dir} after cargo install" >&2; exit 1; }
done
echo "dicom-rs: built in $(( $(date +%s) - start )) s; features: transcode '$(cat "${log_dir}/dicom-transcode.features")', toimage '$(cat "${log_dir}/dicom-toimage.features")', dump '$(cat "${log_dir}/dicom-dump.features")'" >&2
