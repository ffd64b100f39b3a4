#!/usr/bin/env bash
# Build the project: scripts/build.sh [plain|asan] -> build/ or build-asan/
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-plain}
case "$kind" in
  plain) dir=build; opts=(--buildtype=debugoptimized) ;;
  asan)  dir=build-asan; opts=(--buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false) ;;
  release) dir=build-release; opts=(--buildtype=release) ;;
  *) echo "usage: scripts/build.sh [plain|asan|release]" >&2; exit 2 ;;
esac
if [ ! -d "$dir" ]; then
  meson setup "$dir" "${opts[@]}" -Dwerror_all=true >/dev/null
fi
if ! ninja -C "$dir" > "$dir/ninja.log" 2>&1; then
  cat "$dir/ninja.log" >&2
  exit 1
fi
echo "built $dir"
