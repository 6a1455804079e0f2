#!/usr/bin/env bash
# Local PostgreSQL from Debian's packages, managed with the cluster tools (postgresql-common).
#
#   infra/postgres.sh install   apt-get install -y postgresql, only if the server is missing
#   infra/postgres.sh up        reuse a server answering at $DATABASE_URL, else start (or create)
#                               the local cluster on that port; then make sure the role,
#                               password, <db> and <db>_test from DATABASE_URL exist
#   infra/postgres.sh down      stop the cluster only if this script started it
#   infra/postgres.sh status    one line: running | reused | stopped   (exit 0 / 0 / 3)
#
# PostgreSQL refuses to run as root: pg_ctlcluster runs the server as the cluster owner
# (postgres), and admin SQL runs as the postgres OS user over the local socket (peer auth).
#
# Environment (also read from .env, exported variables win):
#   DATABASE_URL  default postgresql://postgres:postgres@localhost:5432/lead_orchestrator
#                 (a "+driver" suffix such as postgresql+asyncpg:// is accepted)
# State: .local/postgres.started holds "<version> <cluster>" when we started the cluster.
set -euo pipefail

# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
load_dotenv

DATABASE_URL="${DATABASE_URL:-postgresql://postgres:postgres@localhost:5432/lead_orchestrator}"
MARKER="$LOCAL_DIR/postgres.started"
LOCK="$LOCAL_DIR/postgres.lock"

say() { echo "postgres: $*"; }

urldecode() { local s="${1//+/ }"; printf '%b' "${s//%/\\x}"; }

# ---- parse DATABASE_URL ----------------------------------------------------------------------
_url_re='^([A-Za-z][A-Za-z0-9.-]*)(\+[A-Za-z0-9_]+)?://(([^:@/]*)(:([^@/]*))?@)?([^:/?]*|\[[^]]*\])(:([0-9]+))?(/([^?]*))?(\?.*)?$'
if [[ ! "$DATABASE_URL" =~ $_url_re ]]; then
  say "cannot parse DATABASE_URL"; exit 1
fi
PG_USER_RAW="${BASH_REMATCH[4]}"
PG_PASS_RAW="${BASH_REMATCH[6]}"
PG_HOST="${BASH_REMATCH[7]:-localhost}"
PG_PORT="${BASH_REMATCH[9]:-5432}"
PG_DB="$(urldecode "${BASH_REMATCH[11]}")"
PG_QUERY="${BASH_REMATCH[12]}"
PG_USER="$(urldecode "${PG_USER_RAW:-postgres}")"
PG_PASS="$(urldecode "$PG_PASS_RAW")"
PG_DB="${PG_DB:-$PG_USER}"
PG_TEST_DB="${PG_DB}_test"
PG_HOST_BARE="${PG_HOST#[}"; PG_HOST_BARE="${PG_HOST_BARE%]}"

# libpq URL (no "+driver") for a given database name.
libpq_url() {
  local userinfo="${PG_USER_RAW:-postgres}"
  [[ -n "$PG_PASS_RAW" ]] && userinfo="$userinfo:$PG_PASS_RAW"
  echo "postgresql://$userinfo@$PG_HOST:$PG_PORT/$1$PG_QUERY"
}

is_local_host() {
  case "$PG_HOST_BARE" in
    localhost | 127.* | ::1 | "" | /*) return 0 ;;
    *) return 1 ;;
  esac
}

as_postgres() {  # run a command as the postgres OS user, from / (its home may not be readable)
  if [[ $EUID -eq 0 ]]; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && sudo -n -u postgres -- "$@")
  fi
}

as_root() {
  if [[ $EUID -eq 0 ]]; then "$@"; else sudo -n -- "$@"; fi
}

answers() { pg_isready -q -h "$PG_HOST_BARE" -p "$PG_PORT" -t 2 >/dev/null 2>&1; }

can_login() {  # can_login <db>
  PGCONNECT_TIMEOUT=3 psql -X -Atq "$(libpq_url "$1")" -c 'select 1' >/dev/null 2>&1
}

server_installed() { compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; }

# Prints "<version> <cluster> <status>" of the local cluster on $PG_PORT, if any.
cluster_on_port() {
  command -v pg_lsclusters >/dev/null 2>&1 || return 1
  pg_lsclusters --no-header 2>/dev/null | awk -v p="$PG_PORT" '$3 == p { print $1, $2, $4; found=1; exit } END { exit !found }'
}

# ---- commands --------------------------------------------------------------------------------

cmd_install() {
  if server_installed && command -v pg_ctlcluster >/dev/null 2>&1; then
    say "server binaries present ($(compgen -G '/usr/lib/postgresql/*/bin/postgres' | sed 's:/usr/lib/postgresql/\([^/]*\)/.*:\1:' | tr '\n' ' ' | sed 's/ $//'))"
    return 0
  fi
  say "installing postgresql with apt-get ..."
  export DEBIAN_FRONTEND=noninteractive
  if ! as_root apt-get install -y -q postgresql; then
    say "apt-get install failed; running apt-get update and retrying"
    as_root apt-get update -q
    as_root apt-get install -y -q postgresql
  fi
  server_installed || { say "postgresql server still missing after install"; exit 1; }
}

ensure_db() {
  if can_login "$PG_DB" && can_login "$PG_TEST_DB"; then
    say "role '$PG_USER' can log in to '$PG_DB' and '$PG_TEST_DB'"
    return 0
  fi
  if ! is_local_host || ! cluster_on_port >/dev/null; then
    say "cannot log in as '$PG_USER' to '$PG_DB'/'$PG_TEST_DB' at $PG_HOST:$PG_PORT, and it is not a" \
        "local Debian cluster this script can administer; create them by hand"
    exit 1
  fi
  say "creating/updating role '$PG_USER' and databases '$PG_DB', '$PG_TEST_DB'"
  as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres \
    -v u="$PG_USER" -v pw="$PG_PASS" -v db="$PG_DB" -v tdb="$PG_TEST_DB" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'u')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'u')\gexec
SELECT format('ALTER ROLE %I WITH LOGIN CREATEDB', :'u')\gexec
SELECT format('ALTER ROLE %I WITH PASSWORD %L', :'u', :'pw') WHERE :'pw' <> ''\gexec
SELECT format('CREATE DATABASE %I OWNER %I', d, :'u')
  FROM unnest(ARRAY[:'db', :'tdb']) AS d
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = d)\gexec
SQL
  if ! can_login "$PG_DB" || ! can_login "$PG_TEST_DB"; then
    say "role/databases created but login with DATABASE_URL still fails (check pg_hba.conf)"
    exit 1
  fi
}

cmd_up() {
  mkdir -p "$LOCAL_DIR"
  take_lock "$LOCK"
  if answers; then
    local info=""
    if [[ -f "$MARKER" ]]; then info=" (cluster $(tr ' ' '/' <"$MARKER"), started by infra/postgres.sh)"; else info=" (not started by us)"; fi
    say "reused: server already answers at $PG_HOST:$PG_PORT$info"
    ensure_db
    report_result reused
    return 0
  fi
  if ! is_local_host; then
    say "DATABASE_URL points at $PG_HOST:$PG_PORT, which does not answer and is not local"; exit 1
  fi

  cmd_install
  local ver name status line
  if ! line="$(cluster_on_port)"; then
    ver="$(compgen -G '/usr/lib/postgresql/*/bin/postgres' | sed 's:/usr/lib/postgresql/\([^/]*\)/.*:\1:' | sort -V | tail -n1)"
    name=main
    if pg_lsclusters --no-header 2>/dev/null | awk -v v="$ver" '$1 == v && $2 == "main" { f=1 } END { exit !f }'; then
      name="port$PG_PORT"
    fi
    say "no cluster on port $PG_PORT; creating $ver/$name"
    as_root pg_createcluster "$ver" "$name" -p "$PG_PORT" </dev/null 9>&- | sed 's/^/    /'
    line="$(cluster_on_port)"
  fi
  read -r ver name status <<<"$line"
  if [[ "$status" != online* ]]; then
    say "starting cluster $ver/$name on port $PG_PORT (pg_ctlcluster, runs as postgres)"
    local out
    out="$(mktemp)"
    # The server must not inherit our stdout (callers may be pipes) nor the lock on fd 9.
    if ! as_root pg_ctlcluster "$ver" "$name" start </dev/null >"$out" 2>&1 9>&-; then
      sed 's/^/    /' "$out"; rm -f "$out"
      say "pg_ctlcluster start failed; see /var/log/postgresql/postgresql-$ver-$name.log"
      exit 1
    fi
    rm -f "$out"
    echo "$ver $name" >"$MARKER"
  fi
  local i=0
  until answers; do
    i=$((i + 1))
    if (( i > 60 )); then say "cluster $ver/$name not accepting connections after 30s"; exit 1; fi
    sleep 0.5
  done
  ensure_db
  say "ready at $PG_HOST:$PG_PORT (cluster $ver/$name)"
  if [[ -f "$MARKER" ]]; then report_result started; else report_result reused; fi
}

cmd_down() {
  mkdir -p "$LOCAL_DIR"
  take_lock "$LOCK"
  if [[ ! -f "$MARKER" ]]; then
    if answers; then
      say "not started by infra/postgres.sh; leaving the server at $PG_HOST:$PG_PORT alone"
      report_result "left-running"
    else
      say "already stopped"
      report_result stopped
    fi
    return 0
  fi
  local ver name
  read -r ver name <"$MARKER"
  say "stopping cluster $ver/$name"
  as_root pg_ctlcluster "$ver" "$name" stop </dev/null 9>&- 2>&1 | sed 's/^/    /' || true
  rm -f "$MARKER"
  say "stopped"
  report_result stopped
}

cmd_status() {
  if answers; then
    if [[ -f "$MARKER" ]]; then
      echo "postgres: running (cluster $(tr ' ' '/' <"$MARKER"), started by infra/postgres.sh) at $PG_HOST:$PG_PORT db=$PG_DB"
    else
      echo "postgres: reused (a server not started by us answers at $PG_HOST:$PG_PORT) db=$PG_DB"
    fi
    return 0
  fi
  echo "postgres: stopped"
  return 3
}

case "${1:-}" in
  install) cmd_install ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) echo "usage: $0 {install|up|down|status}" >&2; exit 2 ;;
esac
