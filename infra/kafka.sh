#!/usr/bin/env bash
# Local single-node Kafka 4.x (KRaft) from Maven Central jars. No Docker, no tarball.
#
#   infra/kafka.sh install   resolve the jars into .local/kafka/libs (skipped when complete)
#   infra/kafka.sh up        reuse a broker answering at $KAFKA_BOOTSTRAP_SERVERS, else
#                            install, format storage once and start one in the background
#   infra/kafka.sh down      stop the broker this script started (never a reused one)
#   infra/kafka.sh status    one line: running | reused | stopped   (exit 0 / 0 / 3)
#   infra/kafka.sh reset     down, then delete .local/kafka/data (re-formatted on next up)
#
# Environment (also read from .env, exported variables win):
#   KAFKA_BOOTSTRAP_SERVERS  default localhost:$KAFKA_PORT
#   KAFKA_PORT               default: port of KAFKA_BOOTSTRAP_SERVERS, else 9092
#   KAFKA_CONTROLLER_PORT    default 9093
#   KAFKA_HOST               listen/advertise address, default 127.0.0.1
#   KAFKA_VERSION            override the pom's kafka.version
#   KAFKA_HEAP_OPTS          default "-Xmx1G -Xms512m"
#   KAFKA_READY_TIMEOUT      seconds to wait for the broker, default 90
#
# State lives in the git-ignored .local/kafka/: libs/ (jars + .stamp), data/ (log.dirs),
# logs/ (log4j files: server.log, storage-tool.log), server.properties (rendered),
# kafka.pid, kafka.out (JVM stdout/stderr).
set -euo pipefail

# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
load_dotenv

KAFKA_SRC="$INFRA_DIR/kafka"
STATE="$LOCAL_DIR/kafka"
LIBS="$STATE/libs"
DATA="$STATE/data"
LOGS="$STATE/logs"
PROPS="$STATE/server.properties"
PIDFILE="$STATE/kafka.pid"
OUTFILE="$STATE/kafka.out"
POM="$KAFKA_SRC/pom.xml"

_bootstrap_default_port=9092
if [[ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]]; then
  _first="${KAFKA_BOOTSTRAP_SERVERS%%,*}"
  _first="${_first#*://}"
  [[ "$_first" =~ :([0-9]+)$ ]] && _bootstrap_default_port="${BASH_REMATCH[1]}"
fi
KAFKA_PORT="${KAFKA_PORT:-$_bootstrap_default_port}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HOST="${KAFKA_HOST:-127.0.0.1}"
KAFKA_BOOTSTRAP_SERVERS="${KAFKA_BOOTSTRAP_SERVERS:-localhost:$KAFKA_PORT}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx1G -Xms512m}"
KAFKA_READY_TIMEOUT="${KAFKA_READY_TIMEOUT:-90}"
VENV_PY="$REPO_ROOT/.venv/bin/python"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"

POM_VERSION="$(sed -n 's:.*<kafka\.version>\(.*\)</kafka\.version>.*:\1:p' "$POM" | head -n1)"
KAFKA_VERSION="${KAFKA_VERSION:-$POM_VERSION}"

# JVM flags as in Kafka's kafka-run-class.sh (KAFKA_JVM_PERFORMANCE_OPTS), plus log4j2 setup.
JVM_PERF_OPTS=(-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
  -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true)
log_opts() {  # log_opts <log-name>
  echo "-Dlog4j2.configurationFile=$KAFKA_SRC/log4j2.properties -Dkafka.logs.dir=$LOGS -Dkafka.log.name=$1"
}

say() { echo "kafka: $*"; }

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
    say "jars for $KAFKA_VERSION already in ${LIBS#"$REPO_ROOT"/} ($(find "$LIBS" -name '*.jar' | wc -l) jars)"
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || { say "mvn not found (apt-get install -y maven)"; exit 1; }
  check_java
  say "resolving kafka_2.13:$KAFKA_VERSION + log4j-slf4j-impl from Maven Central ..."
  mkdir -p "$STATE"
  local tmp="$STATE/libs.tmp.$$"
  rm -rf "$tmp"
  # Into a temp dir, then swap: an interrupted run never leaves a half-filled libs/.
  # mvn -q still emits ANSI resets; keep its output in a file and show it only on failure.
  if ! mvn -q -B -Dstyle.color=never -f "$POM" -Dkafka.version="$KAFKA_VERSION" \
      dependency:copy-dependencies -DoutputDirectory="$tmp" -DincludeScope=runtime \
      </dev/null >"$STATE/mvn.log" 2>&1; then
    rm -rf "$tmp"
    sed 's/\x1b\[[0-9;]*m//g' "$STATE/mvn.log" | tail -n 30 | sed 's/^/    /' >&2
    say "maven failed to resolve the jars (full output: ${STATE#"$REPO_ROOT"/}/mvn.log)"; exit 1
  fi
  [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || { rm -rf "$tmp"; say "kafka_2.13 jar missing after resolve"; exit 1; }
  stamp_text >"$tmp/.stamp"
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  say "installed $(find "$LIBS" -name '*.jar' | wc -l) jars ($(du -sh "$LIBS" | cut -f1)) into ${LIBS#"$REPO_ROOT"/}"
}

# ---------------------------------------------------------------------------------------------
# process / readiness helpers

our_pid() {  # prints the pid of the broker we started, if it is alive; cleans a stale pid file
  [[ -f "$PIDFILE" ]] || return 1
  local pid
  pid="$(tr -dc '0-9' <"$PIDFILE")"
  if pid_matches "$pid" "kafka.Kafka"; then
    echo "$pid"
    return 0
  fi
  rm -f "$PIDFILE"   # stale (process gone, or pid reused by something else)
  return 1
}

# Does a broker answer a metadata request at $KAFKA_BOOTSTRAP_SERVERS?
#  - with the project venv (confluent_kafka installed): AdminClient.list_topics(timeout=2)
#  - otherwise: TCP connect to the first bootstrap host:port (plus, for a broker we started,
#    the "Kafka Server started" line in its log)
broker_answers() {
  if [[ -x "$VENV_PY" ]]; then
    local rc=0
    timeout 15 "$VENV_PY" - "$KAFKA_BOOTSTRAP_SERVERS" 2>/dev/null <<'PY' || rc=$?
import sys
try:
    from confluent_kafka.admin import AdminClient
except Exception:
    sys.exit(3)
admin = AdminClient({"bootstrap.servers": sys.argv[1],
                     "socket.connection.setup.timeout.ms": 2000, "log_level": 0})
try:
    md = admin.list_topics(timeout=2)
except Exception:
    sys.exit(1)
sys.exit(0 if md.brokers else 1)
PY
    [[ $rc -ne 3 ]] && return $rc   # 3 = confluent_kafka not importable: fall back
  fi
  local first="${KAFKA_BOOTSTRAP_SERVERS%%,*}"
  first="${first#*://}"
  local host="${first%:*}" port="${first##*:}"
  tcp_open "$host" "$port" || return 1
  if our_pid >/dev/null; then
    grep -qs "Kafka Server started" "$LOGS/server.log" "$OUTFILE"
  fi
}

wait_ready() {  # wait_ready <pid>
  local pid=$1 start waited=0 last=-1
  start=$(date +%s)
  while :; do
    if broker_answers; then
      say "ready at $KAFKA_BOOTSTRAP_SERVERS after $(( $(date +%s) - start ))s"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      say "broker process $pid exited during startup; last lines of ${OUTFILE#"$REPO_ROOT"/}:"
      tail -n 30 "$OUTFILE" | sed 's/^/    /' >&2
      rm -f "$PIDFILE"
      return 1
    fi
    waited=$(( $(date +%s) - start ))
    if (( waited >= KAFKA_READY_TIMEOUT )); then
      say "not ready after ${waited}s (pid $pid still running); see ${LOGS#"$REPO_ROOT"/}/server.log"
      return 1
    fi
    if (( waited / 5 != last / 5 )); then
      say "waiting for broker (${waited}s/${KAFKA_READY_TIMEOUT}s) ..."
      last=$waited
    fi
    sleep 1
  done
}

render_props() {
  mkdir -p "$DATA" "$LOGS"
  sed -e "s|@KAFKA_HOST@|$KAFKA_HOST|g" \
      -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
      -e "s|@KAFKA_CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
      -e "s|@KAFKA_DATA_DIR@|$DATA|g" \
      "$KAFKA_SRC/server.properties.tmpl" >"$PROPS.tmp"
  mv "$PROPS.tmp" "$PROPS"
}

format_once() {
  if [[ -f "$DATA/meta.properties" ]]; then
    return 0
  fi
  local cid
  # shellcheck disable=SC2046
  cid="$("$JAVA" $(log_opts storage-tool) -cp "$LIBS/*" kafka.tools.StorageTool random-uuid)"
  say "formatting storage (cluster id $cid, --standalone) in ${DATA#"$REPO_ROOT"/}"
  # shellcheck disable=SC2046
  "$JAVA" $(log_opts storage-tool) -cp "$LIBS/*" kafka.tools.StorageTool format \
    --standalone -t "$cid" -c "$PROPS" | grep -v '^Bootstrap metadata' | sed 's/^/    /'
  [[ -f "$DATA/meta.properties" ]] || { say "format did not write meta.properties"; exit 1; }
}

# ---------------------------------------------------------------------------------------------
# commands

cmd_up() {
  take_lock "$STATE/.lock"
  local pid
  if pid="$(our_pid)"; then
    if broker_answers; then
      say "reused: already running (pid $pid, started by infra/kafka.sh) at $KAFKA_BOOTSTRAP_SERVERS"
      report_result reused
      return 0
    fi
    say "our broker (pid $pid) is running but not answering yet"
    wait_ready "$pid"
    report_result reused
    return 0
  fi
  if broker_answers; then
    say "reused: a broker already answers at $KAFKA_BOOTSTRAP_SERVERS (not started by us)"
    report_result reused
    return 0
  fi
  if tcp_open "${KAFKA_HOST}" "$KAFKA_PORT" || tcp_open "${KAFKA_HOST}" "$KAFKA_CONTROLLER_PORT"; then
    say "port $KAFKA_PORT or $KAFKA_CONTROLLER_PORT on $KAFKA_HOST is taken by something that is not a" \
        "working Kafka broker; set KAFKA_PORT / KAFKA_CONTROLLER_PORT"
    exit 1
  fi

  cmd_install
  check_java
  render_props
  format_once

  say "starting kafka.Kafka $KAFKA_VERSION (client $KAFKA_HOST:$KAFKA_PORT, controller :$KAFKA_CONTROLLER_PORT)"
  : >"$OUTFILE"
  # A broker keeps ~3 files open per partition (log, index, time index); test suites create
  # thousands of short-lived partitions. Raise the open-file limit as far as we may.
  ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  # setsid + nohup: own session, survives the calling shell. bash -c writes its own pid and
  # then execs java, so the pid file holds the JVM's pid. fd 9 (our lock) is closed for it.
  # shellcheck disable=SC2016,SC2046
  nohup setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PIDFILE" \
    "$JAVA" $KAFKA_HEAP_OPTS "${JVM_PERF_OPTS[@]}" $(log_opts server) \
    -cp "$LIBS/*" kafka.Kafka "$PROPS" \
    </dev/null >>"$OUTFILE" 2>&1 9>&- &
  local i=0
  while [[ ! -s "$PIDFILE" ]] && (( i < 50 )); do sleep 0.1; i=$((i + 1)); done
  pid="$(tr -dc '0-9' <"$PIDFILE" 2>/dev/null || true)"
  [[ -n "$pid" ]] || { say "failed to launch java"; exit 1; }
  say "pid $pid; JVM output in ${OUTFILE#"$REPO_ROOT"/}, log in ${LOGS#"$REPO_ROOT"/}/server.log"
  wait_ready "$pid"
  report_result started
}

cmd_down() {
  take_lock "$STATE/.lock"
  local pid
  if ! pid="$(our_pid)"; then
    if broker_answers; then
      say "not started by infra/kafka.sh; leaving the broker at $KAFKA_BOOTSTRAP_SERVERS alone"
      report_result "left-running"
    else
      say "already stopped"
      report_result stopped
    fi
    return 0
  fi
  say "stopping pid $pid (SIGTERM, controlled shutdown) ..."
  kill -TERM "$pid" 2>/dev/null || true
  local i=0
  while kill -0 "$pid" 2>/dev/null && (( i < 300 )); do sleep 0.1; i=$((i + 1)); done
  if kill -0 "$pid" 2>/dev/null; then
    say "still alive after 30s; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
  rm -f "$PIDFILE"
  say "stopped"
  report_result stopped
}

cmd_status() {
  local pid
  if pid="$(our_pid)"; then
    if broker_answers; then
      echo "kafka: running (pid $pid, started by infra/kafka.sh, $KAFKA_VERSION) at $KAFKA_BOOTSTRAP_SERVERS"
    else
      echo "kafka: running (pid $pid, started by infra/kafka.sh) but NOT answering at $KAFKA_BOOTSTRAP_SERVERS"
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

cmd_reset() {
  cmd_down
  rm -rf "$DATA" "$PROPS"
  say "deleted ${DATA#"$REPO_ROOT"/} (formatted again on next up)"
}

case "${1:-}" in
  install) cmd_install ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  reset) cmd_reset ;;
  *) echo "usage: $0 {install|up|down|status|reset}" >&2; exit 2 ;;
esac
