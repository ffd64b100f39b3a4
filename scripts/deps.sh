#!/usr/bin/env bash
# Install everything the appliance needs to build, run and test, from
# Debian's packages.  Idempotent; needs root.
set -euo pipefail
PKGS=(
  gcc make pkg-config meson ninja-build python3
  libsqlite3-dev sqlite3 nettle-dev libgnutls28-dev libmicrohttpd-dev
  libxml2-dev libfuse3-dev fuse3
)
if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: run as root (apt-get install)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps.sh: installing ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "deps.sh: all ${#PKGS[@]} packages present"
fi
