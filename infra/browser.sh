#!/usr/bin/env bash
# Headless browser for the dashboard test: Debian's `chromium`, driven by Playwright through
# executable_path=/usr/bin/chromium (never `playwright install`: no download, works offline).
#
#   bash infra/browser.sh     install chromium with apt-get only when it is missing
#
# Idempotent: when chromium is there it only prints its version (a few milliseconds).
# Installing needs root or password-less sudo; `CHROMIUM=/path` names another binary.
set -euo pipefail

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

say() { echo "browser: $*"; }

as_root() {
  if [[ $EUID -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n -- "$@"
  else
    say "need root (or sudo) to run: $*"
    return 1
  fi
}

if [[ ! -x "$CHROMIUM" ]]; then
  say "installing chromium with apt-get ..."
  export DEBIAN_FRONTEND=noninteractive
  # Try the cached package lists first (fast, offline-friendly); refresh them only on failure.
  if ! as_root apt-get install -y -q --no-install-recommends chromium; then
    say "apt-get install failed; running apt-get update and retrying"
    as_root apt-get update -q
    as_root apt-get install -y -q --no-install-recommends chromium
  fi
  [[ -x "$CHROMIUM" ]] || { say "$CHROMIUM still missing after install"; exit 1; }
fi
say "$("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
