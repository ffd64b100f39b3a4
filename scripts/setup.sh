#!/usr/bin/env bash
# The README's first command: install dependencies, build, create the
# default store and start the appliance on it.
#
#   STORE_DIR   data directory          (default /var/lib/s3store)
#   S3_LISTEN   S3 endpoint address     (default 127.0.0.1:9000)
#   MOUNT_DIR   where the store mounts  (default /mnt/s3store)
set -euo pipefail
cd "$(dirname "$0")/.."
STORE_DIR=${STORE_DIR:-/var/lib/s3store}
S3_LISTEN=${S3_LISTEN:-127.0.0.1:9000}
MOUNT_DIR=${MOUNT_DIR:-/mnt/s3store}
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi

$SUDO scripts/deps.sh
scripts/build.sh release
BIN=$PWD/build-release
$SUDO install -m 0755 "$BIN/storectl/storectl" /usr/local/bin/storectl
for prog in s3d/s3d fusefs/fusefs; do
  [ -x "$BIN/$prog" ] && $SUDO install -m 0755 "$BIN/$prog" /usr/local/bin/
done

creds="$STORE_DIR/admin-credentials"
if [ ! -f "$STORE_DIR/catalog.db" ]; then
  $SUDO mkdir -p "$STORE_DIR"
  ak=$(head -c 64 /dev/urandom | tr -dc 'A-Z2-7' | head -c 20)
  sk=$(head -c 128 /dev/urandom | tr -dc 'A-Za-z0-9' | head -c 40)
  $SUDO env STORE_ACCESS_KEY="$ak" STORE_SECRET_KEY="$sk" \
    storectl --store "$STORE_DIR" init >/dev/null
  # The only copy of the first admin key outside the catalog: root-only.
  $SUDO sh -c "umask 077; printf 'AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n' '$ak' '$sk' > '$creds'"
  echo "created store in $STORE_DIR"
else
  echo "store already exists in $STORE_DIR"
fi

started=()
if command -v s3d >/dev/null && [ -x "$BIN/s3d/s3d" ]; then
  if ! pgrep -x s3d >/dev/null; then
    $SUDO sh -c "nohup s3d --store '$STORE_DIR' --listen '$S3_LISTEN' >>'$STORE_DIR/s3d.log' 2>&1 &"
  fi
  started+=("S3 endpoint: http://$S3_LISTEN  (log $STORE_DIR/s3d.log)")
fi
if command -v fusefs >/dev/null && [ -x "$BIN/fusefs/fusefs" ]; then
  $SUDO mkdir -p "$MOUNT_DIR"
  mountpoint -q "$MOUNT_DIR" || $SUDO fusefs --store "$STORE_DIR" "$MOUNT_DIR"
  started+=("mounted at: $MOUNT_DIR")
fi

echo
echo "store:       $STORE_DIR"
echo "admin CLI:   storectl --store $STORE_DIR stats"
echo "credentials: $($SUDO cat "$creds" 2>/dev/null | tr '\n' ' ')"
echo "             (kept in $creds, readable by root only)"
for s in "${started[@]}"; do echo "$s"; done
if [ ${#started[@]} -eq 0 ]; then
  echo "The S3 daemon (s3d) and the mount (fusefs) are not built yet in this"
  echo "version; the store is usable through storectl."
fi
