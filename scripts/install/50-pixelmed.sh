#!/usr/bin/env bash
# The PixelMed host: compiles adapters/pixelmed/PixelmedHost.java (runs PixelMed's mains in one
# long-lived JVM instead of one JVM per request) with javac against the Debian PixelMed jars into
# ${DICOM_HUB_PIXELMED_BUILD:-${XDG_DATA_HOME:-~/.local/share}/dicom-hub/pixelmed} (outside the repo).
# Rebuilds only when the source is newer than the compiled class. Without it the adapter starts
# one JVM per request (or, with DICOM_HUB_REQUIRE_BACKENDS=1, answers backend_unavailable).
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${DICOM_HUB_PIXELMED_BUILD:-${XDG_DATA_HOME:-$HOME/.local/share}/dicom-hub/pixelmed}"
source=adapters/pixelmed/PixelmedHost.java
class="${out}/PixelmedHost.class"
jars="${DICOM_HUB_PIXELMED_JAR_DIR:-/usr/share/java}"

if [ -f "${class}" ] && [ -z "$(find "${source}" -newer "${class}" -print -quit)" ]; then
    echo "pixelmed: ${class} is up to date" >&2
    exit 0
fi
command -v javac >/dev/null || { echo "pixelmed: javac missing (apt package default-jdk-headless)" >&2; exit 1; }
[ -f "${jars}/pixelmed.jar" ] || { echo "pixelmed: ${jars}/pixelmed.jar missing (apt package libpixelmed-java)" >&2; exit 1; }
mkdir -p "${out}"
tmp="$(mktemp -d "${out}/build.XXXXXX")"
trap 'rm -rf "${tmp}"' EXIT
javac -Xlint:all,-path -Werror --release 17 -cp "${jars}/pixelmed.jar" -d "${tmp}" "${source}"
# The nested classes first, the main class last: the adapter takes PixelmedHost.class as "built".
for file in "${tmp}"/PixelmedHost\$*.class; do mv "${file}" "${out}/"; done
mv "${tmp}/PixelmedHost.class" "${class}"
echo "pixelmed: built ${class}" >&2
