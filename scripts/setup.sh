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
$SUDO install -m 0755 "$BIN/s3d/s3d" "$BIN/fusefs/fusefs" /usr/local/bin/
$SUDO mkdir -p /usr/local/share/doc/s3store
$SUDO install -m 0644 docs/*.md /usr/local/share/doc/s3store/

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

# Start the S3 endpoint and the mount: as systemd services where systemd
# runs, otherwise as background processes.
started=()
if [ -d /run/systemd/system ]; then
  $SUDO install -m 0644 packaging/systemd/*.service packaging/systemd/*.timer /etc/systemd/system/
  printf 'S3D_STORE=%s\nS3D_LISTEN=%s\nSTORE_DIR=%s\nMOUNT_DIR=%s\n' \
    "$STORE_DIR" "$S3_LISTEN" "$STORE_DIR" "$MOUNT_DIR" | $SUDO tee /etc/default/s3store >/dev/null
  $SUDO systemctl daemon-reload
  $SUDO systemctl enable --now s3store-s3d.service s3store-fusefs.service \
    s3store-gc.timer s3store-fsck.timer
  started+=("S3 endpoint: http://$S3_LISTEN  (systemctl status s3store-s3d)")
  started+=("mounted at:  $MOUNT_DIR  (systemctl status s3store-fusefs)")
else
  if ! pgrep -x s3d >/dev/null; then
    $SUDO sh -c "nohup /usr/local/bin/s3d --store '$STORE_DIR' --listen '$S3_LISTEN' >>'$STORE_DIR/s3d.log' 2>&1 &"
  fi
  started+=("S3 endpoint: http://$S3_LISTEN  (log $STORE_DIR/s3d.log)")
  $SUDO mkdir -p "$MOUNT_DIR"
  mountpoint -q "$MOUNT_DIR" || $SUDO /usr/local/bin/fusefs --store "$STORE_DIR" "$MOUNT_DIR" -o allow_other
  started+=("mounted at:  $MOUNT_DIR")
fi
echo
echo "store:       $STORE_DIR"
echo "admin CLI:   storectl --store $STORE_DIR stats"
echo "credentials: $($SUDO cat "$creds" 2>/dev/null | tr '\n' ' ')"
echo "             (kept in $creds, readable by root only)"
for s in "${started[@]}"; do echo "$s"; done
echo
echo "Try it:  set -a; . $creds; set +a"
echo "         aws --endpoint-url http://$S3_LISTEN s3 mb s3://demo"
echo "         echo hello > $MOUNT_DIR/demo/hello.txt"
echo "         aws --endpoint-url http://$S3_LISTEN s3 cp s3://demo/hello.txt -"
