#!/usr/bin/env bash
# Installs what the embedded local stack needs from the system, only when it is missing:
# redis-server, the PostgreSQL server binaries, Node.js/npm (asl-validator, CDK synth), and the headless browser of the
# console's browser tests (Debian's chromium and chromium-driver: /usr/bin/chromium, /usr/bin/chromedriver). Debian/Ubuntu
# (apt).
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
missing=()

command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 && ! command -v pg_ctl >/dev/null 2>&1; then
  missing+=(postgresql)
fi
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing: ${missing[*]} -- install them with your package manager (no apt-get here)" >&2
  exit 1
fi
echo "installing: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
# The Debian package starts a system-wide redis/postgres service; the local stack runs its own on free ports.
for service in redis-server postgresql; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$service" 2>/dev/null; then
    $SUDO systemctl stop "$service" || true
  fi
done
