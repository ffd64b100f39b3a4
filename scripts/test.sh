#!/usr/bin/env bash
# The README's second command: install what is needed, build, run every test.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
$SUDO scripts/deps.sh >/dev/null || { echo "dependency installation failed"; echo "0 passed, 1 failed"; exit 1; }
exec python3 tests/run-all "$@"
