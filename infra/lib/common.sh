# Shared helpers for infra/*.sh. Source it; do not execute it.
# shellcheck shell=bash

# Repo root = parent of infra/, resolved from this file's path (works from any cwd).
INFRA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
REPO_ROOT="$(cd "$INFRA_DIR/.." && pwd -P)"
LOCAL_DIR="$REPO_ROOT/.local"

# Load $REPO_ROOT/.env (KEY=VALUE lines, optional "export ", optional quotes) without
# overriding anything already set in the environment. Values are taken literally (no eval).
load_dotenv() {
  local file="$REPO_ROOT/.env" line key val
  [[ -f "$file" ]] || return 0
  while IFS= read -r line || [[ -n "$line" ]]; do
    line="${line%$'\r'}"
    [[ "$line" =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
    key="${BASH_REMATCH[2]}"
    val="${BASH_REMATCH[3]}"
    if [[ "$val" =~ ^\"(.*)\"[[:space:]]*$ ]] || [[ "$val" =~ ^\'(.*)\'[[:space:]]*$ ]]; then
      val="${BASH_REMATCH[1]}"
    else
      val="${val%%[[:space:]]#*}"                             # strip trailing " # comment"
      val="${val%"${val##*[![:space:]]}"}"                    # rtrim
    fi
    if [[ -z "${!key+x}" ]]; then
      export "$key=$val"
    fi
  done <"$file"
}

# Milliseconds since the epoch (bash 5 EPOCHREALTIME, falls back to date).
now_ms() {
  if [[ -n "${EPOCHREALTIME:-}" ]]; then
    local t="${EPOCHREALTIME/[.,]/}"
    echo $((10#${t} / 1000))
  else
    date +%s%3N
  fi
}

# fmt_secs <ms> -> "12.3s"
fmt_secs() {
  local ms=$1
  printf '%d.%01ds' $((ms / 1000)) $(((ms % 1000) / 100))
}

# Write the outcome (started|reused|stopped|...) where up.sh/down.sh can read it.
report_result() {
  if [[ -n "${INFRA_RESULT_FILE:-}" ]]; then
    printf '%s\n' "$1" >"$INFRA_RESULT_FILE"
  fi
}

# True when the process exists and its command line contains the given text.
pid_matches() {
  local pid=$1 needle=$2
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 0   # no procfs: trust kill -0
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$needle"
}

# TCP port check with bash's /dev/tcp (no extra tools needed).
tcp_open() {
  local host=$1 port=$2
  timeout 2 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null
}

# Take an exclusive lock for the rest of the calling script (fd 9).
# Children started in the background must close fd 9 (9>&-), or they keep the lock.
take_lock() {
  local lockfile=$1
  mkdir -p "$(dirname "$lockfile")"
  exec 9>"$lockfile"
  if command -v flock >/dev/null 2>&1; then
    flock -w 300 9 || { echo "could not lock $lockfile" >&2; exit 1; }
  fi
}
