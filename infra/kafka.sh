#!/usr/bin/env bash
# Local Kafka 4.x (KRaft) from Maven Central jars: one node (the default) or a local cluster of
# combined broker+controller nodes (LOCAL_KAFKA_BROKERS=3). No Docker, no tarball.
#
#   infra/kafka.sh install     resolve the jars into .local/kafka/libs (skipped when complete)
#   infra/kafka.sh up          one node: reuse a broker answering at $KAFKA_BOOTSTRAP_SERVERS, else
#                              install, format storage once and start one in the background.
#                              LOCAL_KAFKA_BROKERS=3: reuse the running nodes, start the stopped ones
#   infra/kafka.sh down        stop every broker this script started, single node and cluster
#                              nodes (never a reused one)
#   infra/kafka.sh status      running | reused | stopped (exit 0 / 0 / 3); a cluster: one line
#                              per node (exit 3 unless every node runs)
#   infra/kafka.sh restart     down, then up (applies a changed configuration)
#   infra/kafka.sh reset       down, then delete the data (re-formatted on next up; keeps tls/,
#                              sasl.env and the jars)
#   infra/kafka.sh bootstrap   print the PLAINTEXT bootstrap servers of the selected set-up
#   infra/kafka.sh cluster-bootstrap   the same, but prints nothing for the single node
#   infra/kafka.sh sasl-env    print the client settings for the SASL_SSL listener (KEY=VALUE
#                              lines: `set -a; eval "$(infra/kafka.sh sasl-env)"; set +a`)
# One cluster node at a time (N = 1..3; for tests and chaos scripts):
#   infra/kafka.sh start-node N    start node N if it is stopped and wait until it serves
#   infra/kafka.sh stop-node N     controlled shutdown (SIGTERM, SIGKILL after 30 s)
#   infra/kafka.sh kill-node N     crash it (SIGKILL)
#   infra/kafka.sh pid [N]         the JVM pid of node N (of the single broker without N), for
#                                  SIGSTOP/SIGCONT; exit 3 when it is not running
#
# Environment (also read from .env, exported variables win):
#   LOCAL_KAFKA_BROKERS      1 (default): single node; 3: a local 3-node cluster
#   KAFKA_BOOTSTRAP_SERVERS  default localhost:$KAFKA_PORT (single node); a cluster's list is
#                            computed (`bootstrap`) and exported by the Makefile
#   KAFKA_PORT               PLAINTEXT, default: port of KAFKA_BOOTSTRAP_SERVERS, else 9092
#   KAFKA_CONTROLLER_PORT    default 9093
#   KAFKA_SASL_PORT          SASL_SSL listener (SCRAM-SHA-512), default 9094
#   KAFKA_CLUSTER_PORT_BASE  cluster node N listens on BASE+100*(N-1) (PLAINTEXT), +1
#                            (controller), +2 (SASL_SSL); default 29092: nodes on 29092/29093/
#                            29094, 29192/29193/29194, 29292/29293/29294
#   KAFKA_HOST               listen/advertise address, default 127.0.0.1
#   KAFKA_SASL_USERNAME      the SCRAM user created on the local brokers, default orchestrator
#   KAFKA_SASL_PASSWORD      its password, default: generated once into .local/kafka/sasl.env
#   KAFKA_STATE_DIR          state directory, default .local/kafka (the jars stay in
#                            .local/kafka/libs: KAFKA_LIBS_DIR)
#   KAFKA_VERSION            override the pom's kafka.version
#   KAFKA_HEAP_OPTS          default "-Xmx1G -Xms512m" (single node), "-Xmx512m -Xms256m" (each
#                            cluster node)
#   KAFKA_OPTS               extra JVM options for the brokers (as in Kafka's own scripts)
#   KAFKA_READY_TIMEOUT      seconds to wait for the broker(s), default 90
#
# State (git-ignored, under KAFKA_STATE_DIR = .local/kafka):
#   libs/ (jars + .stamp), data/ (log.dirs), logs/ (server.log, storage-tool.log),
#   server.properties (rendered), kafka.pid, kafka.out (JVM stdout/stderr)   -- single node
#   cluster/cluster.env (id, size, ports), cluster/nodeN/{data,logs,server.properties,
#   kafka.pid,kafka.out}                                                      -- cluster nodes
#   tls/ca.pem (the CA clients trust), tls/broker-keystore.pem; sasl.env (the SCRAM user)
set -euo pipefail

# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
load_dotenv

KAFKA_SRC="$INFRA_DIR/kafka"
STATE="${KAFKA_STATE_DIR:-$LOCAL_DIR/kafka}"
[[ "$STATE" == /* ]] || STATE="$REPO_ROOT/$STATE"
LIBS="${KAFKA_LIBS_DIR:-$LOCAL_DIR/kafka/libs}"
CLUSTER_DIR="$STATE/cluster"
CLUSTER_ENV="$CLUSTER_DIR/cluster.env"
TLS_DIR="$STATE/tls"
SASL_ENV="$STATE/sasl.env"
POM="$KAFKA_SRC/pom.xml"
SCRAM_MECHANISM=SCRAM-SHA-512

LOCAL_KAFKA_BROKERS="${LOCAL_KAFKA_BROKERS:-1}"
if ! [[ "$LOCAL_KAFKA_BROKERS" =~ ^[1-9]$ ]]; then
  echo "kafka: LOCAL_KAFKA_BROKERS must be 1 (single node) or the size of a local cluster (3);" \
       "got '$LOCAL_KAFKA_BROKERS'" >&2
  exit 2
fi

# The single node's ports. KAFKA_BOOTSTRAP_SERVERS names the port clients use: the PLAINTEXT
# one, or the SASL_SSL one when KAFKA_SECURITY_PROTOCOL=SASL_SSL (`eval` of `sasl-env`).
_bootstrap_port=""
if [[ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]]; then
  _first="${KAFKA_BOOTSTRAP_SERVERS%%,*}"
  _first="${_first#*://}"
  [[ "$_first" =~ :([0-9]+)$ ]] && _bootstrap_port="${BASH_REMATCH[1]}"
fi
if [[ "${KAFKA_SECURITY_PROTOCOL:-}" =~ ^[Ss][Aa][Ss][Ll]_[Ss][Ss][Ll]$ ]]; then
  KAFKA_SASL_PORT="${KAFKA_SASL_PORT:-${_bootstrap_port:-9094}}"
  KAFKA_PORT="${KAFKA_PORT:-9092}"
  KAFKA_BOOTSTRAP_SERVERS="${KAFKA_BOOTSTRAP_SERVERS:-localhost:$KAFKA_SASL_PORT}"
else
  KAFKA_PORT="${KAFKA_PORT:-${_bootstrap_port:-9092}}"
  KAFKA_SASL_PORT="${KAFKA_SASL_PORT:-9094}"
  KAFKA_BOOTSTRAP_SERVERS="${KAFKA_BOOTSTRAP_SERVERS:-localhost:$KAFKA_PORT}"
fi
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_CLUSTER_PORT_BASE="${KAFKA_CLUSTER_PORT_BASE:-29092}"
KAFKA_HOST="${KAFKA_HOST:-127.0.0.1}"
KAFKA_READY_TIMEOUT="${KAFKA_READY_TIMEOUT:-90}"
VENV_PY="$REPO_ROOT/.venv/bin/python"
PROBE="$KAFKA_SRC/probe.py"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"

POM_VERSION="$(sed -n 's:.*<kafka\.version>\(.*\)</kafka\.version>.*:\1:p' "$POM" | head -n1)"
KAFKA_VERSION="${KAFKA_VERSION:-$POM_VERSION}"

# JVM flags as in Kafka's kafka-run-class.sh (KAFKA_JVM_PERFORMANCE_OPTS), plus log4j2 setup.
JVM_PERF_OPTS=(-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
  -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true)
log_opts() {  # log_opts <log-name>   (for the node selected by select_node)
  echo "-Dlog4j2.configurationFile=$KAFKA_SRC/log4j2.properties -Dkafka.logs.dir=$LOGS -Dkafka.log.name=$1"
}

say() { echo "kafka: $*"; }
rel() { echo "${1#"$REPO_ROOT"/}"; }   # a path as shown to people: relative to the repo

# ---------------------------------------------------------------------------------------------
# nodes: 0 is the single node (.local/kafka/), N >= 1 is cluster node N (.local/kafka/cluster/nodeN/)

# The cluster's size and port base: what it was formatted with, else what the environment asks.
CLUSTER_SIZE="$LOCAL_KAFKA_BROKERS"
CLUSTER_BASE="$KAFKA_CLUSTER_PORT_BASE"
CLUSTER_ID=""
if [[ -f "$CLUSTER_ENV" ]]; then
  CLUSTER_ID="$(sed -n 's/^KAFKA_CLUSTER_ID=//p' "$CLUSTER_ENV")"
  CLUSTER_SIZE="$(sed -n 's/^KAFKA_CLUSTER_BROKERS=//p' "$CLUSTER_ENV")"
  CLUSTER_BASE="$(sed -n 's/^KAFKA_CLUSTER_PORT_BASE=//p' "$CLUSTER_ENV")"
fi

select_node() {  # select_node <n>: sets NODE_* and the paths of that node
  NODE=$1
  if (( NODE == 0 )); then
    NODE_DIR="$STATE"
    NODE_ID=1
    NODE_PORT=$KAFKA_PORT
    NODE_CPORT=$KAFKA_CONTROLLER_PORT
    NODE_SPORT=$KAFKA_SASL_PORT
    NODE_NAME="broker"
  else
    NODE_DIR="$CLUSTER_DIR/node$NODE"
    NODE_ID=$NODE
    NODE_PORT=$((CLUSTER_BASE + 100 * (NODE - 1)))
    NODE_CPORT=$((NODE_PORT + 1))
    NODE_SPORT=$((NODE_PORT + 2))
    NODE_NAME="node $NODE"
  fi
  DATA="$NODE_DIR/data"
  LOGS="$NODE_DIR/logs"
  PROPS="$NODE_DIR/server.properties"
  PIDFILE="$NODE_DIR/kafka.pid"
  OUTFILE="$NODE_DIR/kafka.out"
  # A running node is where it was started, whatever the environment says now: its ports come
  # from the server.properties it runs with (so a probe or the SCRAM step never reaches
  # another broker).
  if [[ -f "$PROPS" && -f "$PIDFILE" ]] && pid_matches "$(tr -dc '0-9' <"$PIDFILE")" "kafka.Kafka $PROPS"; then
    local p
    p="$(listener_port PLAINTEXT)" && NODE_PORT=$p
    p="$(listener_port CONTROLLER)" && NODE_CPORT=$p
    p="$(listener_port SASL_SSL)" && NODE_SPORT=$p
  fi
  return 0
}

listener_port() {  # listener_port <NAME>: the port of listener NAME in the node's server.properties
  local port
  port="$(sed -n "s#^listeners=\(.*,\)\{0,1\}$1://[^,]*:\([0-9][0-9]*\).*#\2#p" "$PROPS" | tail -n1)"
  [[ -n "$port" ]] && echo "$port"
}

cluster_nodes() { seq 1 "$CLUSTER_SIZE"; }
cluster_bootstrap() {  # cluster_bootstrap [sasl]: localhost:<port> of every node, comma-separated
  local n out=() off=0
  [[ "${1:-}" == sasl ]] && off=2
  for n in $(cluster_nodes); do out+=("localhost:$((CLUSTER_BASE + 100 * (n - 1) + off))"); done
  (IFS=,; echo "${out[*]}")
}

# ---------------------------------------------------------------------------------------------
# install

stamp_text() {
  local pom_sum
  pom_sum="$(sha256sum "$POM" | cut -c1-16)"
  echo "kafka_2.13=$KAFKA_VERSION pom=$pom_sum"
}

libs_complete() {
  [[ -f "$LIBS/.stamp" && "$(cat "$LIBS/.stamp")" == "$(stamp_text)" \
    && -f "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]]
}

check_java() {
  command -v "$JAVA" >/dev/null 2>&1 || { say "java not found (need Java 17+)"; exit 1; }
  local v
  v="$("$JAVA" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p')"
  if [[ -n "$v" && "${v%%.*}" -lt 17 ]]; then
    say "Java $v found; Kafka 4.x brokers need Java 17+"; exit 1
  fi
}

cmd_install() {
  if libs_complete; then
    say "jars for $KAFKA_VERSION already in $(rel "$LIBS") ($(find "$LIBS" -name '*.jar' | wc -l) jars)"
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || { say "mvn not found (apt-get install -y maven)"; exit 1; }
  check_java
  say "resolving kafka_2.13:$KAFKA_VERSION + log4j-slf4j-impl from Maven Central ..."
  local parent
  parent="$(dirname "$LIBS")"
  mkdir -p "$parent"
  local tmp="$parent/libs.tmp.$$"
  rm -rf "$tmp"
  # Into a temp dir, then swap: an interrupted run never leaves a half-filled libs/.
  # mvn -q still emits ANSI resets; keep its output in a file and show it only on failure.
  if ! mvn -q -B -Dstyle.color=never -f "$POM" -Dkafka.version="$KAFKA_VERSION" \
      dependency:copy-dependencies -DoutputDirectory="$tmp" -DincludeScope=runtime \
      </dev/null >"$parent/mvn.log" 2>&1; then
    rm -rf "$tmp"
    sed 's/\x1b\[[0-9;]*m//g' "$parent/mvn.log" | tail -n 30 | sed 's/^/    /' >&2
    say "maven failed to resolve the jars (full output: $(rel "$parent")/mvn.log)"; exit 1
  fi
  [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || { rm -rf "$tmp"; say "kafka_2.13 jar missing after resolve"; exit 1; }
  stamp_text >"$tmp/.stamp"
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  say "installed $(find "$LIBS" -name '*.jar' | wc -l) jars ($(du -sh "$LIBS" | cut -f1)) into $(rel "$LIBS")"
}

# ---------------------------------------------------------------------------------------------
# TLS (a self-signed CA and a broker certificate) and the SCRAM user, made once

ensure_tls() {
  if [[ -s "$TLS_DIR/ca.pem" && -s "$TLS_DIR/broker-keystore.pem" ]]; then
    return 0
  fi
  command -v openssl >/dev/null 2>&1 || { say "openssl not found (apt-get install -y openssl)"; exit 1; }
  local tmp san="DNS:localhost,IP:127.0.0.1"
  case "$KAFKA_HOST" in
    127.0.0.1|localhost) ;;
    *[!0-9.]*) san="$san,DNS:$KAFKA_HOST" ;;
    *) san="$san,IP:$KAFKA_HOST" ;;
  esac
  mkdir -p "$TLS_DIR"
  chmod 700 "$TLS_DIR"
  tmp="$(mktemp -d "$TLS_DIR/.new.XXXXXX")"
  {
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
      -subj "/CN=lead-orchestrator local Kafka CA" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout "$tmp/ca.key" -out "$tmp/ca.pem"
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
      -keyout "$tmp/broker.key" -out "$tmp/broker.csr"
    printf '%s\n' "subjectAltName=$san" "basicConstraints=critical,CA:FALSE" \
      "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" \
      "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid,issuer" >"$tmp/broker.ext"
    openssl x509 -req -sha256 -days 3650 -in "$tmp/broker.csr" -CA "$tmp/ca.pem" \
      -CAkey "$tmp/ca.key" -CAcreateserial -extfile "$tmp/broker.ext" -out "$tmp/broker.pem"
  } >"$tmp/openssl.log" 2>&1 || {
    sed 's/^/    /' "$tmp/openssl.log" >&2
    rm -rf "$tmp"
    say "openssl failed to make the local CA / broker certificate"
    exit 1
  }
  # Kafka's PEM keystore: the unencrypted PKCS#8 key ("BEGIN PRIVATE KEY") and the chain.
  cat "$tmp/broker.key" "$tmp/broker.pem" "$tmp/ca.pem" >"$tmp/broker-keystore.pem"
  rm -f "$tmp/broker.csr" "$tmp/broker.ext" "$tmp/ca.srl" "$tmp/openssl.log"
  chmod 600 "$tmp"/*.key "$tmp/broker-keystore.pem"
  chmod 644 "$tmp/ca.pem" "$tmp/broker.pem"
  mv -f "$tmp"/* "$TLS_DIR"/
  rmdir "$tmp"
  say "made a local CA and a broker certificate (SAN $san) in $(rel "$TLS_DIR"); clients trust $(rel "$TLS_DIR")/ca.pem"
}

# The SCRAM credentials of the local brokers: KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD when set,
# else what sasl.env recorded, else orchestrator + a generated password (written to sasl.env).
SASL_USER=""
SASL_PASS=""
read_sasl_env() {  # KEY=VALUE lines, read literally (never sourced)
  local key=$1
  [[ -f "$SASL_ENV" ]] || return 0
  sed -n "s/^$key=//p" "$SASL_ENV" | head -n1
}

resolve_creds() {
  local f_user f_pass
  f_user="$(read_sasl_env KAFKA_SASL_USERNAME)"
  f_pass="$(read_sasl_env KAFKA_SASL_PASSWORD)"
  SASL_USER="${KAFKA_SASL_USERNAME:-${f_user:-orchestrator}}"
  SASL_PASS="${KAFKA_SASL_PASSWORD:-}"
  if [[ -z "$SASL_PASS" && "$f_user" == "$SASL_USER" ]]; then
    SASL_PASS="$f_pass"
  fi
}

ensure_creds() {
  resolve_creds
  if [[ -z "$SASL_PASS" ]]; then
    SASL_PASS="$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  fi
  if [[ "$(read_sasl_env KAFKA_SASL_USERNAME)" != "$SASL_USER" \
        || "$(read_sasl_env KAFKA_SASL_PASSWORD)" != "$SASL_PASS" ]]; then
    mkdir -p "$STATE"
    (umask 077; printf '%s\n' \
      "# SCRAM-SHA-512 user of the local Kafka brokers (infra/kafka.sh); client settings: infra/kafka.sh sasl-env" \
      "KAFKA_SASL_USERNAME=$SASL_USER" "KAFKA_SASL_PASSWORD=$SASL_PASS" >"$SASL_ENV.tmp")
    mv -f "$SASL_ENV.tmp" "$SASL_ENV"
    say "SCRAM user '$SASL_USER' recorded in $(rel "$SASL_ENV")"
  fi
}

# A Kafka cluster id (what `StorageTool random-uuid` prints): 16 random bytes, URL-safe base64
# without padding, never starting with "-" (it would read as an option). No JVM needed.
random_cluster_id() {
  local id="-"
  while [[ "$id" == -* ]]; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  done
  echo "$id"
}

scram_marker() { printf '%s' "$SASL_USER:$SASL_PASS" | sha256sum | cut -c1-32; }

# --add-scram for `StorageTool format`, when the password is plain enough for its syntax.
add_scram_args() {
  if [[ "$SASL_USER" =~ ^[A-Za-z0-9._@-]+$ && "$SASL_PASS" =~ ^[A-Za-z0-9._@%+-]+$ ]]; then
    printf '%s\n' --add-scram "$SCRAM_MECHANISM=[name=$SASL_USER,password=$SASL_PASS]"
  fi
}

# ensure_scram <plaintext-bootstrap> <marker-file>: the user exists with the current password.
# A marker (hash of user:password) remembers what was last set, so a running broker is only
# written to when the user is missing or the password changed.
ensure_scram() {
  local bootstrap=$1 marker=$2 rc=0
  if [[ ! -x "$VENV_PY" ]]; then
    say "no .venv (make install): cannot check the SCRAM user '$SASL_USER' through the admin API"
    return 0
  fi
  "$VENV_PY" "$PROBE" scram "$bootstrap" "$SASL_USER" 2>/dev/null || rc=$?
  if [[ $rc == 0 && -f "$marker" && "$(cat "$marker")" == "$(scram_marker)" ]]; then
    return 0
  fi
  if ! KAFKA_SASL_PASSWORD="$SASL_PASS" "$VENV_PY" "$PROBE" scram-set "$bootstrap" "$SASL_USER" >&2; then
    say "could not set the SCRAM user '$SASL_USER' at $bootstrap"
    return 1
  fi
  scram_marker >"$marker"
  if [[ $rc == 0 ]]; then
    say "SCRAM user '$SASL_USER': password updated"
  else
    say "SCRAM user '$SASL_USER' created ($SCRAM_MECHANISM)"
  fi
}

# Does the SASL_SSL listener authenticate our user? (warns only: PLAINTEXT is what tests use)
check_sasl() {  # check_sasl <sasl-bootstrap>
  [[ -x "$VENV_PY" ]] || return 0
  if ! KAFKA_SECURITY_PROTOCOL=SASL_SSL KAFKA_SASL_MECHANISM="$SCRAM_MECHANISM" \
       KAFKA_SASL_USERNAME="$SASL_USER" KAFKA_SASL_PASSWORD="$SASL_PASS" \
       KAFKA_SSL_CA_LOCATION="$TLS_DIR/ca.pem" "$VENV_PY" "$PROBE" answers "$1" 2>/dev/null; then
    say "WARNING: the SASL_SSL listener at $1 does not accept '$SASL_USER' (see the broker log)"
  fi
}

# ---------------------------------------------------------------------------------------------
# process / readiness helpers (for the node chosen by select_node)

our_pid() {  # prints the pid of the node's JVM if it is alive; cleans a stale pid file
  [[ -f "$PIDFILE" ]] || return 1
  local pid
  pid="$(tr -dc '0-9' <"$PIDFILE")"
  if pid_matches "$pid" "kafka.Kafka $PROPS"; then
    echo "$pid"
    return 0
  fi
  rm -f "$PIDFILE"   # stale (process gone, or pid reused by something else)
  return 1
}

have_probe() {
  [[ -x "$VENV_PY" ]] && "$VENV_PY" -c 'import confluent_kafka' 2>/dev/null
}

# Does a broker answer a metadata request at $KAFKA_BOOTSTRAP_SERVERS (with the client settings
# of the environment)? With the venv: confluent-kafka; otherwise a TCP connect to the first
# bootstrap host:port (plus, for a broker we started, "Kafka Server started" in its log).
broker_answers() {
  if have_probe; then
    "$VENV_PY" "$PROBE" answers "$KAFKA_BOOTSTRAP_SERVERS" 2>/dev/null
    return
  fi
  local first="${KAFKA_BOOTSTRAP_SERVERS%%,*}"
  first="${first#*://}"
  local host="${first%:*}" port="${first##*:}"
  tcp_open "$host" "$port" || return 1
  select_node 0
  if our_pid >/dev/null; then
    grep -qs "Kafka Server started" "$LOGS/server.log" "$OUTFILE"
  fi
}

# ready_nodes <n>...: prints "<n> <brokers it sees>" for each node that answers on its PLAINTEXT
# listener and lists itself (without the venv: its port is open and its log says started).
ready_nodes() {
  local n specs=()
  if have_probe; then
    for n in "$@"; do select_node "$n"; specs+=("$n=$NODE_ID@$KAFKA_HOST:$NODE_PORT"); done
    "$VENV_PY" "$PROBE" nodes "${specs[@]}" 2>/dev/null || true
    return 0
  fi
  for n in "$@"; do
    select_node "$n"
    if tcp_open "$KAFKA_HOST" "$NODE_PORT" && grep -qs "Kafka Server started" "$LOGS/server.log"; then
      echo "$n 0"
    fi
  done
}

# wait_nodes <want-brokers> <n>...: until every node answers and sees <want-brokers> brokers
# (0 = any). Fails when a node's JVM exits or after KAFKA_READY_TIMEOUT seconds.
wait_nodes() {
  local want=$1 start waited last=-1 n id seen ok pid pending
  shift
  start=$(date +%s)
  while :; do
    declare -A up=()
    while read -r id seen; do
      [[ -n "$id" ]] && { (( want == 0 || seen >= want || seen == 0 )) && up[$id]=1; }
    done < <(ready_nodes "$@")
    ok=1
    pending=()
    for n in "$@"; do
      if [[ -z "${up[$n]:-}" ]]; then
        ok=0
        pending+=("$n")
        select_node "$n"
        pid="$(tr -dc '0-9' <"$PIDFILE" 2>/dev/null || true)"
        if [[ -z "$pid" ]] || ! kill -0 "$pid" 2>/dev/null; then
          say "$NODE_NAME exited during startup; last lines of $(rel "$OUTFILE"):"
          tail -n 30 "$OUTFILE" | sed 's/^/    /' >&2
          rm -f "$PIDFILE"
          return 1
        fi
      fi
    done
    unset up
    waited=$(( $(date +%s) - start ))
    if (( ok )); then
      READY_SECS=$waited
      return 0
    fi
    if (( waited >= KAFKA_READY_TIMEOUT )); then
      select_node "${pending[0]}"
      say "not ready after ${waited}s (waiting for: ${pending[*]/#/node }); see $(rel "$LOGS")/server.log"
      return 1
    fi
    if (( waited / 5 != last / 5 )); then
      if (( NODE == 0 )); then
        say "waiting for broker (${waited}s/${KAFKA_READY_TIMEOUT}s) ..."
      else
        say "waiting for node ${pending[*]} (${waited}s/${KAFKA_READY_TIMEOUT}s) ..."
      fi
      last=$waited
    fi
    sleep 1
  done
}

# merge_props <base> <overlay>... > out: the base properties file with every "key=value" of the
# overlays (later overlays win) in place of the base's line for that key; new keys at the end.
merge_props() {
  local base=$1
  shift
  awk -v overlays=$# '
    FNR == 1 { file++ }
    function key(line) { return substr(line, 1, index(line, "=") - 1) }
    file <= overlays { if (/^[A-Za-z0-9_.-]+=/) { k = key($0); if (!(k in over)) order[++n] = k; over[k] = $0 } next }
    /^[A-Za-z0-9_.-]+=/ && (key($0) in over) { k = key($0); if (!(k in done)) print over[k]; done[k] = 1; next }
    { print }
    END {
      for (i = 1; i <= n; i++) if (!(order[i] in done)) { if (!extra++) print "\n# from the overlays"; print over[order[i]] }
    }
  ' "$@" "$base"
}

render_props() {  # render_props <out-file>   (for the selected node)
  local target=$1 tmp voters=() qboot=() n p rf isr
  tmp="$(mktemp "$NODE_DIR/.props.XXXXXX")"
  chmod 644 "$tmp"
  # placeholders are replaced outside comments (the templates' headers name them)
  local subst=(
    -e "/^#/!s|@KAFKA_HOST@|$KAFKA_HOST|g"
    -e "/^#/!s|@KAFKA_PORT@|$NODE_PORT|g"
    -e "/^#/!s|@KAFKA_CONTROLLER_PORT@|$NODE_CPORT|g"
    -e "/^#/!s|@KAFKA_SASL_PORT@|$NODE_SPORT|g"
    -e "/^#/!s|@KAFKA_DATA_DIR@|$DATA|g"
    -e "/^#/!s|@KAFKA_TLS_DIR@|$TLS_DIR|g"
  )
  sed "${subst[@]}" "$KAFKA_SRC/server.properties.tmpl" >"$tmp.base"
  sed "${subst[@]}" "$KAFKA_SRC/sasl_ssl.properties.tmpl" >"$tmp.sasl"
  if (( NODE == 0 )); then
    merge_props "$tmp.base" "$tmp.sasl" >"$tmp"
  else
    for n in $(cluster_nodes); do
      p=$((CLUSTER_BASE + 100 * (n - 1) + 1))
      voters+=("$n@$KAFKA_HOST:$p")
      qboot+=("$KAFKA_HOST:$p")
    done
    rf=$(( CLUSTER_SIZE < 3 ? CLUSTER_SIZE : 3 ))
    isr=$(( rf < 2 ? rf : 2 ))
    sed "${subst[@]}" \
      -e "/^#/!s|@KAFKA_NODE_ID@|$NODE_ID|g" \
      -e "/^#/!s|@KAFKA_QUORUM_VOTERS@|$(IFS=,; echo "${voters[*]}")|g" \
      -e "/^#/!s|@KAFKA_QUORUM_BOOTSTRAP@|$(IFS=,; echo "${qboot[*]}")|g" \
      -e "/^#/!s|@KAFKA_INTERNAL_RF@|$rf|g" \
      -e "/^#/!s|@KAFKA_INTERNAL_MIN_ISR@|$isr|g" \
      "$KAFKA_SRC/cluster.properties.tmpl" >"$tmp.cluster"
    merge_props "$tmp.base" "$tmp.sasl" "$tmp.cluster" >"$tmp"
  fi
  rm -f "$tmp.base" "$tmp.sasl" "$tmp.cluster"
  mv "$tmp" "$target"
}

storage_tool() {  # storage_tool <args>...  (kafka.tools.StorageTool, log in the node's logs/)
  # a short-lived tool: the C1 compiler only starts faster
  # shellcheck disable=SC2046
  "$JAVA" -XX:TieredStopAtLevel=1 $(log_opts storage-tool) -cp "$LIBS/*" kafka.tools.StorageTool "$@"
}

format_once() {  # format_once <cluster-id> [--standalone]   (for the selected node)
  [[ -f "$DATA/meta.properties" ]] && return 1
  local cid=$1 mode=()
  shift
  mode=("$@")
  local scram=()
  mapfile -t scram < <(add_scram_args)
  say "formatting $NODE_NAME storage (cluster id $cid${mode[*]:+, ${mode[*]}}) in $(rel "$DATA")"
  storage_tool format "${mode[@]}" -t "$cid" -c "$PROPS" "${scram[@]}" \
    | grep -v '^Bootstrap metadata' | sed 's/^/    /'
  [[ -f "$DATA/meta.properties" ]] || { say "format did not write meta.properties"; exit 1; }
  return 0
}

launch() {  # launch <heap opts>   start the selected node's JVM in the background
  local heap=$1 pid i=0
  : >"$OUTFILE"
  # A broker keeps ~3 files open per partition (log, index, time index); test suites create
  # thousands of short-lived partitions. Raise the open-file limit as far as we may.
  ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  rm -f "$PIDFILE"
  # setsid + nohup: own session, survives the calling shell. bash -c writes its own pid and
  # then execs java, so the pid file holds the JVM's pid. fd 9 (our lock) is closed for it.
  # shellcheck disable=SC2016,SC2046,SC2086
  nohup setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PIDFILE" \
    "$JAVA" $heap "${JVM_PERF_OPTS[@]}" ${KAFKA_OPTS:-} $(log_opts server) \
    -cp "$LIBS/*" kafka.Kafka "$PROPS" \
    </dev/null >>"$OUTFILE" 2>&1 9>&- &
  while [[ ! -s "$PIDFILE" ]] && (( i < 50 )); do sleep 0.1; i=$((i + 1)); done
  pid="$(tr -dc '0-9' <"$PIDFILE" 2>/dev/null || true)"
  [[ -n "$pid" ]] || { say "failed to launch java for $NODE_NAME"; exit 1; }
  say "$NODE_NAME: pid $pid (client :$NODE_PORT, controller :$NODE_CPORT, SASL_SSL :$NODE_SPORT);" \
      "log in $(rel "$LOGS")/server.log"
}

# stop_pid <pid> [seconds] [why]: SIGTERM (controlled shutdown), SIGKILL after <seconds> (30).
stop_pid() {
  local pid=$1 secs=${2:-30} why=${3:-} i=0
  kill -CONT "$pid" 2>/dev/null || true   # a SIGSTOPped JVM cannot shut down
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null && (( i < secs * 10 )); do sleep 0.1; i=$((i + 1)); done
  if kill -0 "$pid" 2>/dev/null; then
    say "$NODE_NAME (pid $pid) still shutting down after ${secs}s${why:+ ($why)}; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  fi
}

# Compare what the node would be started with now to what it runs with; say how to apply it.
config_drift() {
  [[ -f "$PROPS" ]] || return 0
  render_props "$PROPS.now"
  local keys
  keys="$(diff <(grep -E '^[a-z]' "$PROPS" | sort) <(grep -E '^[a-z]' "$PROPS.now" | sort) \
    | sed -n 's/^[<>] \([^=]*\)=.*/\1/p' | sort -u | tr '\n' ' ' || true)"
  rm -f "$PROPS.now"
  if [[ -n "$keys" ]]; then
    say "$NODE_NAME runs with an older configuration (${keys% }); \`infra/kafka.sh restart\` applies it"
  fi
}

heap_opts() {  # the heap of one node: KAFKA_HEAP_OPTS, else 1G (single) / 512m (cluster node)
  if [[ -n "${KAFKA_HEAP_OPTS:-}" ]]; then echo "$KAFKA_HEAP_OPTS"
  elif (( NODE == 0 )); then echo "-Xmx1G -Xms512m"
  else echo "-Xmx512m -Xms256m"
  fi
}

# ---------------------------------------------------------------------------------------------
# single node

single_up() {
  local pid
  select_node 0
  if pid="$(our_pid)"; then
    if [[ -n "$(ready_nodes 0)" ]]; then
      say "reused: already running (pid $pid, started by infra/kafka.sh) at localhost:$NODE_PORT"
    else
      say "our broker (pid $pid) is running but not answering yet"
      wait_nodes 0 0
      say "ready at localhost:$NODE_PORT after ${READY_SECS}s"
    fi
    ensure_creds
    ensure_scram "$KAFKA_HOST:$NODE_PORT" "$STATE/.scram" || true
    config_drift
    report_result reused
    return 0
  fi
  if broker_answers; then
    say "reused: a broker already answers at $KAFKA_BOOTSTRAP_SERVERS (not started by us)"
    report_result reused
    return 0
  fi
  local p
  for p in "$KAFKA_PORT:KAFKA_PORT" "$KAFKA_CONTROLLER_PORT:KAFKA_CONTROLLER_PORT" "$KAFKA_SASL_PORT:KAFKA_SASL_PORT"; do
    if tcp_open "$KAFKA_HOST" "${p%%:*}"; then
      say "port ${p%%:*} on $KAFKA_HOST is taken by something that is not a working Kafka broker" \
          "started here; set ${p#*:} (ports: KAFKA_PORT=$KAFKA_PORT KAFKA_CONTROLLER_PORT=$KAFKA_CONTROLLER_PORT" \
          "KAFKA_SASL_PORT=$KAFKA_SASL_PORT)"
      exit 1
    fi
  done

  cmd_install
  check_java
  ensure_tls
  ensure_creds
  mkdir -p "$DATA" "$LOGS"
  render_props "$PROPS"
  if format_once "$(storage_tool random-uuid)" --standalone && [[ -n "$(add_scram_args)" ]]; then
    scram_marker >"$STATE/.scram"
  fi

  say "starting kafka.Kafka $KAFKA_VERSION (client $KAFKA_HOST:$KAFKA_PORT, controller :$KAFKA_CONTROLLER_PORT, SASL_SSL :$KAFKA_SASL_PORT)"
  launch "$(heap_opts)"
  wait_nodes 0 0
  say "ready at $KAFKA_BOOTSTRAP_SERVERS after ${READY_SECS}s (SASL_SSL at localhost:$KAFKA_SASL_PORT)"
  ensure_scram "$KAFKA_HOST:$NODE_PORT" "$STATE/.scram" || true
  check_sasl "localhost:$NODE_SPORT"
  report_result started
}

single_down() {  # stops the single node if we started it; prints nothing when there is none
  local pid
  select_node 0
  pid="$(our_pid)" || return 1
  say "stopping pid $pid (SIGTERM, controlled shutdown) ..."
  stop_pid "$pid"
  rm -f "$PIDFILE"
  say "stopped"
}

single_status() {
  local pid sasl=""
  select_node 0
  if pid="$(our_pid)"; then
    listener_port SASL_SSL >/dev/null && sasl=", SASL_SSL at localhost:$NODE_SPORT"
    if [[ -n "$(ready_nodes 0)" ]]; then
      echo "kafka: running (pid $pid, started by infra/kafka.sh, $KAFKA_VERSION) at localhost:$NODE_PORT$sasl"
    else
      echo "kafka: running (pid $pid, started by infra/kafka.sh) but NOT answering at localhost:$NODE_PORT"
    fi
    return 0
  fi
  if broker_answers; then
    echo "kafka: reused (a broker not started by us answers at $KAFKA_BOOTSTRAP_SERVERS)"
    return 0
  fi
  echo "kafka: stopped"
  return 3
}

# ---------------------------------------------------------------------------------------------
# cluster

check_cluster_shape() {  # the recorded cluster must be the one asked for
  [[ -f "$CLUSTER_ENV" ]] || return 0
  if [[ "$LOCAL_KAFKA_BROKERS" != "$CLUSTER_SIZE" || "$KAFKA_CLUSTER_PORT_BASE" != "$CLUSTER_BASE" ]]; then
    say "the cluster in $(rel "$CLUSTER_DIR") was made with $CLUSTER_SIZE nodes on port base" \
        "$CLUSTER_BASE (LOCAL_KAFKA_BROKERS=$LOCAL_KAFKA_BROKERS KAFKA_CLUSTER_PORT_BASE=$KAFKA_CLUSTER_PORT_BASE" \
        "asked); use those, or \`infra/kafka.sh reset\` to delete it"
    exit 1
  fi
}

# start_nodes <want-brokers> <n>...: install, format what is new, start the given (stopped)
# nodes, wait until each serves and sees <want-brokers> brokers (0: any).
start_nodes() {
  local want=$1 n p formatted=0
  shift
  for n in "$@"; do
    select_node "$n"
    for p in "$NODE_PORT" "$NODE_CPORT" "$NODE_SPORT"; do
      if tcp_open "$KAFKA_HOST" "$p"; then
        say "port $p on $KAFKA_HOST (node $n) is taken by something not started here; set" \
            "KAFKA_CLUSTER_PORT_BASE (now $CLUSTER_BASE: node N uses BASE+100*(N-1) .. +2)"
        exit 1
      fi
    done
  done
  cmd_install
  check_java
  ensure_tls
  ensure_creds
  if [[ -z "$CLUSTER_ID" ]]; then
    mkdir -p "$CLUSTER_DIR"
    CLUSTER_ID="$(random_cluster_id)"
    printf '%s\n' "# the local Kafka cluster (infra/kafka.sh); \`infra/kafka.sh reset\` deletes it" \
      "KAFKA_CLUSTER_ID=$CLUSTER_ID" "KAFKA_CLUSTER_BROKERS=$CLUSTER_SIZE" \
      "KAFKA_CLUSTER_PORT_BASE=$CLUSTER_BASE" >"$CLUSTER_ENV"
  fi
  # render every node's properties, then format the new ones in parallel (a JVM each)
  local jobs=() labels=()
  for n in "$@"; do
    select_node "$n"
    mkdir -p "$DATA" "$LOGS"
    render_props "$PROPS"
    if [[ ! -f "$DATA/meta.properties" ]]; then
      format_once "$CLUSTER_ID" >"$NODE_DIR/format.out" 2>&1 &
      jobs+=("$!")
      labels+=("$n")
    fi
  done
  for i in "${!jobs[@]}"; do
    select_node "${labels[$i]}"
    if wait "${jobs[$i]}"; then formatted=$((formatted + 1)); fi
    cat "$NODE_DIR/format.out"
    rm -f "$NODE_DIR/format.out"
    [[ -f "$DATA/meta.properties" ]] || { say "formatting node ${labels[$i]} failed"; exit 1; }
  done
  if (( formatted == CLUSTER_SIZE )) && [[ -n "$(add_scram_args)" ]]; then
    scram_marker >"$CLUSTER_DIR/.scram"
  fi
  for n in "$@"; do
    select_node "$n"
    launch "$(heap_opts)"
  done
  wait_nodes "$want" "$@"
}

cluster_up() {
  check_cluster_shape
  local n pid running=() stopped=() t0
  t0=$(date +%s)
  for n in $(cluster_nodes); do
    select_node "$n"
    if pid="$(our_pid)"; then running+=("$n"); else stopped+=("$n"); fi
  done
  if (( ${#stopped[@]} )); then
    say "starting cluster node(s) ${stopped[*]} of $CLUSTER_SIZE${running[*]:+ (running: ${running[*]})}"
    start_nodes "$CLUSTER_SIZE" "${stopped[@]}"
  fi
  # every node: answering and seeing all the others
  # shellcheck disable=SC2046
  wait_nodes "$CLUSTER_SIZE" $(cluster_nodes)
  ensure_creds
  ensure_scram "$(cluster_bootstrap)" "$CLUSTER_DIR/.scram" || true
  if (( ${#stopped[@]} )); then
    check_sasl "$(cluster_bootstrap sasl)"
    say "cluster of $CLUSTER_SIZE ready after $(( $(date +%s) - t0 ))s (started ${stopped[*]}${running[*]:+, reused ${running[*]}})"
  else
    say "reused: cluster of $CLUSTER_SIZE already running (started by infra/kafka.sh)"
    for n in $(cluster_nodes); do select_node "$n"; config_drift; done
  fi
  say "KAFKA_BOOTSTRAP_SERVERS=$(cluster_bootstrap)   (SASL_SSL: $(cluster_bootstrap sasl))"
  if (( ${#running[@]} == 0 )); then report_result started
  elif (( ${#stopped[@]} == 0 )); then report_result reused
  else report_result "started ${#stopped[@]}/$CLUSTER_SIZE"
  fi
}

cluster_down() {  # stops every running cluster node (all at once); returns 1 when none ran
  local n pid pids=() names=()
  [[ -d "$CLUSTER_DIR" ]] || return 1
  for n in $(cluster_nodes); do
    select_node "$n"
    if pid="$(our_pid)"; then pids+=("$pid"); names+=("$n"); fi
  done
  (( ${#pids[@]} )) || return 1
  say "stopping cluster node(s) ${names[*]} (pids ${pids[*]}; SIGTERM, controlled shutdown) ..."
  # All at once: each node's controlled shutdown must be committed by the controller quorum,
  # so a node left alone cannot finish it; after 15 s it is killed (its logs are recovered at
  # the next start).
  for i in "${!pids[@]}"; do
    select_node "${names[$i]}"
    ( stop_pid "${pids[$i]}" 15 "no controller quorum left to confirm its shutdown" ) &
  done
  wait
  for n in "${names[@]}"; do select_node "$n"; rm -f "$PIDFILE"; done
  say "cluster stopped"
}

cluster_status() {  # one line for the cluster and one per node; exit 3 unless every node runs
  local n pid alive=0 lines=() ready
  # shellcheck disable=SC2046
  ready="$(ready_nodes $(cluster_nodes) | cut -d' ' -f1 | tr '\n' ' ')"
  for n in $(cluster_nodes); do
    select_node "$n"
    if pid="$(our_pid)"; then
      alive=$((alive + 1))
      if [[ " $ready " == *" $n "* ]]; then
        lines+=("  node $n: running (pid $pid) at localhost:$NODE_PORT, SASL_SSL localhost:$NODE_SPORT")
      elif [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" == T ]]; then
        lines+=("  node $n: paused (pid $pid, SIGSTOP; kill -CONT $pid resumes it)")
      else
        lines+=("  node $n: running (pid $pid) but NOT answering at localhost:$NODE_PORT")
      fi
    else
      lines+=("  node $n: stopped")
    fi
  done
  if (( alive == CLUSTER_SIZE )); then
    echo "kafka: cluster running ($CLUSTER_SIZE/$CLUSTER_SIZE nodes, started by infra/kafka.sh, $KAFKA_VERSION) at $(cluster_bootstrap)"
  elif (( alive == 0 )); then
    echo "kafka: cluster stopped (0/$CLUSTER_SIZE nodes)"
  else
    echo "kafka: cluster degraded ($alive/$CLUSTER_SIZE nodes running) at $(cluster_bootstrap)"
  fi
  printf '%s\n' "${lines[@]}"
  (( alive == CLUSTER_SIZE )) || return 3
}

cluster_running_any() {
  local n
  [[ -d "$CLUSTER_DIR" ]] || return 1
  for n in $(cluster_nodes); do select_node "$n"; our_pid >/dev/null && return 0; done
  return 1
}

node_arg() {  # node_arg <N>: validate a node number of the cluster and select it
  local n=${1:-}
  if ! [[ "$n" =~ ^[1-9]$ ]] || (( n > CLUSTER_SIZE )); then
    echo "usage: $0 {start-node|stop-node|kill-node|pid} N   (N = 1..$CLUSTER_SIZE, a cluster node)" >&2
    exit 2
  fi
  select_node "$n"
}

# ---------------------------------------------------------------------------------------------
# commands

cmd_up() {
  take_lock "$STATE/.lock"
  if (( LOCAL_KAFKA_BROKERS > 1 )); then cluster_up; else single_up; fi
}

cmd_down() {
  take_lock "$STATE/.lock"
  local any=0
  single_down && any=1
  cluster_down && any=1
  if (( any )); then
    report_result stopped
  elif (( LOCAL_KAFKA_BROKERS == 1 )) && broker_answers; then
    say "not started by infra/kafka.sh; leaving the broker at $KAFKA_BOOTSTRAP_SERVERS alone"
    report_result "left-running"
  else
    say "already stopped"
    report_result stopped
  fi
}

cmd_status() {
  local rc=0
  if (( LOCAL_KAFKA_BROKERS > 1 )); then
    cluster_status || rc=$?
    select_node 0
    if our_pid >/dev/null; then single_status | sed 's/^kafka: /kafka: (also) single node /'; fi
  else
    single_status || rc=$?
    if cluster_running_any; then
      cluster_status | sed 's/^kafka: cluster/kafka: (also) cluster/' || true
    fi
  fi
  return $rc
}

cmd_reset() {
  cmd_down
  rm -rf "$STATE/data" "$STATE/server.properties" "$STATE/.scram" "$CLUSTER_DIR"
  say "deleted $(rel "$STATE")/data and $(rel "$CLUSTER_DIR") (formatted again on next up)"
}

cmd_sasl_env() {
  resolve_creds
  if [[ -z "$SASL_PASS" || ! -s "$TLS_DIR/ca.pem" ]]; then
    say "no SASL_SSL set-up in $(rel "$STATE") yet: run \`infra/kafka.sh up\` (or \`make up\`) first" >&2
    exit 1
  fi
  select_node 0
  local bootstrap="localhost:$NODE_SPORT"
  (( LOCAL_KAFKA_BROKERS > 1 )) && bootstrap="$(cluster_bootstrap sasl)"
  printf '%s\n' "KAFKA_BOOTSTRAP_SERVERS=$bootstrap" "KAFKA_SECURITY_PROTOCOL=SASL_SSL" \
    "KAFKA_SASL_MECHANISM=$SCRAM_MECHANISM" "KAFKA_SASL_USERNAME=$SASL_USER" \
    "KAFKA_SASL_PASSWORD=$SASL_PASS" "KAFKA_SSL_CA_LOCATION=$TLS_DIR/ca.pem"
}

cmd_start_node() {
  node_arg "${1:-}"
  take_lock "$STATE/.lock"
  local pid t0
  if pid="$(our_pid)"; then
    say "node $NODE already running (pid $pid)"
    return 0
  fi
  [[ -f "$CLUSTER_ENV" ]] || { say "no cluster in $(rel "$CLUSTER_DIR"): LOCAL_KAFKA_BROKERS=3 infra/kafka.sh up"; exit 1; }
  local n me=$NODE alive=1
  for n in $(cluster_nodes); do
    (( n == me )) && continue
    select_node "$n"
    our_pid >/dev/null && alive=$((alive + 1))
  done
  if (( alive <= CLUSTER_SIZE / 2 )); then
    say "note: with $alive of $CLUSTER_SIZE nodes running there is no controller quorum; node $me" \
        "serves once a majority runs (\`LOCAL_KAFKA_BROKERS=$CLUSTER_SIZE infra/kafka.sh up\` starts them all)"
  fi
  node_arg "$me"
  t0=$(now_ms)
  start_nodes 0 "$NODE"
  say "node $NODE serving again after $(fmt_secs $(( $(now_ms) - t0 )))"
}

cmd_stop_node() {  # cmd_stop_node <TERM|KILL> <N>
  local sig=$1 pid
  node_arg "${2:-}"
  if ! pid="$(our_pid)"; then
    say "node $NODE is not running"
    return 0
  fi
  if [[ "$sig" == KILL ]]; then
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    say "node $NODE killed (SIGKILL, pid $pid)"
  else
    say "stopping node $NODE (pid $pid; SIGTERM, controlled shutdown) ..."
    stop_pid "$pid"
    say "node $NODE stopped"
  fi
  rm -f "$PIDFILE"
}

cmd_pid() {
  if [[ -n "${1:-}" ]]; then node_arg "$1"; else select_node 0; fi
  our_pid || { say "$NODE_NAME is not running" >&2; exit 3; }
}

case "${1:-}" in
  install) cmd_install ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  restart) cmd_down; cmd_up ;;
  reset) cmd_reset ;;
  bootstrap) if (( LOCAL_KAFKA_BROKERS > 1 )); then cluster_bootstrap; else echo "$KAFKA_BOOTSTRAP_SERVERS"; fi ;;
  cluster-bootstrap) if (( LOCAL_KAFKA_BROKERS > 1 )); then cluster_bootstrap; fi ;;
  sasl-env) cmd_sasl_env ;;
  start-node) cmd_start_node "${2:-}" ;;
  stop-node) cmd_stop_node TERM "${2:-}" ;;
  kill-node) cmd_stop_node KILL "${2:-}" ;;
  pid) cmd_pid "${2:-}" ;;
  *) echo "usage: $0 {install|up|down|status|restart|reset|bootstrap|cluster-bootstrap|sasl-env|start-node N|stop-node N|kill-node N|pid [N]}" >&2
     exit 2 ;;
esac
