#!/usr/bin/env bash
# Debian packages listed in apt-packages.txt (the external toolkits and test peers).
# apt-get runs only when something is missing.
set -euo pipefail
here="$(dirname "$0")"
# First word of each line: comments and padding are not part of a package name.
mapfile -t wanted < <(sed -e 's/#.*//' "${here}/apt-packages.txt" | awk 'NF {print $1}')
missing=()
for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q "install ok installed" || missing+=("${pkg}")
done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "system packages: all ${#wanted[@]} installed" >&2
    exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "system packages: installing ${missing[*]}" >&2
${sudo} apt-get update -qq
DEBIAN_FRONTEND=noninteractive ${sudo} apt-get install -y -qq "${missing[@]}" >&2
