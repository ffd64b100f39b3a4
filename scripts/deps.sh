#!/usr/bin/env bash
# Install everything the appliance needs to build, run and test, from
# Debian's packages.  Idempotent; needs root.
set -euo pipefail
PKGS=(
  gcc make pkg-config meson ninja-build python3
  libsqlite3-dev sqlite3 nettle-dev libgnutls28-dev libmicrohttpd-dev
  libxml2-dev libfuse3-dev fuse3
  # real clients for the black-box tests (aws CLI and boto3 come with the
  # image's python3; s3cmd, rclone, s3fs, curl from Debian)
  s3cmd rclone s3fs curl openssl procps
  # libFuzzer harnesses (tests/fuzz)
  clang libclang-rt-14-dev
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
# boto3 and the aws CLI: the image's python3 has them; otherwise Debian's.
if ! python3 -c 'import boto3' 2>/dev/null || ! command -v aws >/dev/null; then
  echo "deps.sh: installing Debian's boto3 and aws CLI"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3-boto3 awscli >/dev/null
fi
