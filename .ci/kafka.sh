#!/usr/bin/env bash
# Local single-node Kafka (KRaft combined mode) run from Maven Central jars.
#
#   .ci/kafka.sh fetch    copy the broker's runtime jars into $CACHE/kafka-libs (once)
#   .ci/kafka.sh start    format storage (once), start the broker, wait until a client sees it
#   .ci/kafka.sh stop     SIGTERM, up to $KAFKA_STOP_TIMEOUT s, then SIGKILL (idempotent)
#   .ci/kafka.sh status   exit 0 when a Kafka answers on 127.0.0.1:$KAFKA_PORT, 3 when none
#   .ci/kafka.sh ready    one readiness probe (exit 0 ready, 1 nothing listening, 2 not ready)
#
# Environment:
#   KAFKA_PORT             client port (default 9092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port (default 9093)
#   MSGSTATUS_CACHE        cache root (default <repo>/.cache)
#   KAFKA_DIR              data/log/pid dir (default $MSGSTATUS_CACHE/kafka-$KAFKA_PORT)
#                          holds server.properties, data/, kafka.log, kafka.pid, cluster.id
#   KAFKA_HEAP_OPTS        default "-Xms384m -Xmx384m"
#   KAFKA_JVM_OPTS         extra JVM options (appended)
#   KAFKA_START_TIMEOUT    seconds to wait for readiness (default 60)
#   KAFKA_STOP_TIMEOUT     seconds between SIGTERM and SIGKILL (default 30)
#   KAFKA_REUSE            1 (default): `start` uses a Kafka that already answers on the port;
#                          0: `start` fails instead (a test's own broker must really be its own)
#   KAFKA_PROBE            "auto" (aiokafka from $VENV when importable) or "stdlib"
#   VENV                   virtualenv whose python runs the probe (default <repo>/.venv)
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
CONF=$ROOT/.ci/kafka
CACHE=${MSGSTATUS_CACHE:-$ROOT/.cache}
KAFKA_HOST=127.0.0.1
KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
KAFKA_DIR=${KAFKA_DIR:-$CACHE/kafka-$KAFKA_PORT}
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms384m -Xmx384m}
KAFKA_JVM_OPTS=${KAFKA_JVM_OPTS:-}
KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-60}
KAFKA_STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}
KAFKA_PROBE=${KAFKA_PROBE:-auto}
KAFKA_REUSE=${KAFKA_REUSE:-1}
VENV=${VENV:-$ROOT/.venv}

case $CACHE in /*) ;; *) CACHE=$PWD/$CACHE ;; esac
case $KAFKA_DIR in /*) ;; *) KAFKA_DIR=$PWD/$KAFKA_DIR ;; esac

LIBS=$CACHE/kafka-libs
DATA_DIR=$KAFKA_DIR/data
PID_FILE=$KAFKA_DIR/kafka.pid
LOG_FILE=$KAFKA_DIR/kafka.log
PROPS=$KAFKA_DIR/server.properties
# Marks the JVM's command line so that stop/status never act on a recycled pid.
MARK="-Dmsgstatus.kafka.dir=$KAFKA_DIR"

say() { printf 'kafka.sh[%s]: %s\n' "$KAFKA_PORT" "$*"; }
die() {
  printf 'kafka.sh[%s]: ERROR: %s\n' "$KAFKA_PORT" "$*" >&2
  exit 1
}
now() { printf '%s' "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

python_bin() {
  if [[ -x $VENV/bin/python ]]; then
    printf '%s' "$VENV/bin/python"
  elif command -v python3 >/dev/null 2>&1; then
    command -v python3
  else
    die "python3 is needed for the readiness probe"
  fi
}

# Readiness probe: a real client metadata request, not just an open port.
# argv: host port timeout_seconds mode. Exit 0 ready, 1 nothing listening, 2 not (yet) Kafka.
read -r -d '' PROBE_PY <<'PY' || true
import asyncio, logging, socket, struct, sys

host, port, timeout, mode = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
logging.disable(logging.CRITICAL)


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ValueError("connection closed")
        buf += chunk
    return buf


def call(sock, api_key, version, corr, payload):
    client_id = b"msgstatus-ready"
    req = struct.pack(">hhih", api_key, version, corr, len(client_id)) + client_id + payload
    sock.sendall(struct.pack(">i", len(req)) + req)
    (size,) = struct.unpack(">i", recv_exact(sock, 4))
    if not 4 <= size <= 16 << 20:
        raise ValueError("not a Kafka response")
    data = recv_exact(sock, size)
    if struct.unpack_from(">i", data)[0] != corr:
        raise ValueError("correlation id mismatch")
    return data[4:]


def stdlib_probe(sock):
    # ApiVersions v0 (api_key 18): error_code 0 means the broker serves requests.
    (err,) = struct.unpack_from(">h", call(sock, 18, 0, 1, b""), 0)
    if err != 0:
        return 2
    # Metadata v0 (api_key 3), empty topic list = all topics: at least one live broker.
    (brokers,) = struct.unpack_from(">i", call(sock, 3, 0, 2, struct.pack(">i", 0)), 0)
    return 0 if brokers > 0 else 2


async def aiokafka_probe():
    from aiokafka.client import AIOKafkaClient

    client = AIOKafkaClient(
        bootstrap_servers=f"{host}:{port}",
        client_id="msgstatus-ready",
        request_timeout_ms=int(timeout * 1000),
    )
    try:
        await asyncio.wait_for(client.bootstrap(), timeout)
        metadata = await asyncio.wait_for(client.fetch_all_metadata(), timeout)
        return 0 if metadata.brokers() else 2
    except Exception:
        return 2
    finally:
        await client.close()


try:
    sock = socket.create_connection((host, port), timeout=timeout)
except OSError:
    sys.exit(1)
try:
    sock.settimeout(timeout)
    rc = stdlib_probe(sock)
except (OSError, ValueError, struct.error):
    rc = 2
finally:
    sock.close()
if rc == 0 and mode != "stdlib":
    try:
        import aiokafka  # noqa: F401
    except ImportError:
        pass
    else:
        rc = asyncio.run(aiokafka_probe())
sys.exit(rc)
PY

probe() {
  local rc=0
  "$(python_bin)" -c "$PROBE_PY" "$KAFKA_HOST" "$KAFKA_PORT" "${1:-5}" "$KAFKA_PROBE" \
    </dev/null >/dev/null 2>&1 || rc=$?
  return "$rc"
}

port_open() {
  # shellcheck disable=SC2016 # $1/$2 belong to the inner shell
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$KAFKA_HOST" "$1" 2>/dev/null
}

# Pid of the broker this script started for $KAFKA_DIR, if it is alive.
our_pid() {
  local pid
  [[ -f $PID_FILE ]] || return 1
  pid=$(<"$PID_FILE")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  is_ours "$pid" || return 1
  printf '%s' "$pid"
}

# True while $1 is a live (non-zombie) JVM started by this script for $KAFKA_DIR.
is_ours() {
  local args
  args=$(tr '\0' '\n' 2>/dev/null <"/proc/$1/cmdline") || return 1
  grep -qxF -- "$MARK" <<<"$args"
}

# For error messages: which kafka.sh-started broker (of another KAFKA_DIR) holds $KAFKA_PORT.
owner_hint() {
  local proc args dir
  for proc in /proc/[0-9]*; do
    args=$(tr '\0' '\n' 2>/dev/null <"$proc/cmdline") || continue
    dir=$(sed -n 's/^-Dmsgstatus\.kafka\.dir=//p' <<<"$args")
    [[ -n $dir && $dir != "$KAFKA_DIR" ]] || continue
    if grep -qs "^listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT," "$dir/server.properties"; then
      printf '; it is pid %s, started by kafka.sh for %s (stop it: KAFKA_PORT=%s KAFKA_DIR=%s %s stop)' \
        "${proc#/proc/}" "$dir" "$KAFKA_PORT" "$dir" "$0"
    fi
  done
}

libs_hash() { sha256sum <"$CONF/pom.xml" | cut -d" " -f1; }
libs_ready() {
  [[ -f $LIBS/.complete ]] && [[ $(<"$LIBS/.complete") == "$(libs_hash)" ]]
}

cmd_fetch() {
  if libs_ready; then
    say "jars already in $LIBS"
    return 0
  fi
  mkdir -p "$CACHE"
  # Several callers (make test, a test's own broker) may fetch at once.
  exec 9>"$CACHE/kafka-libs.lock"
  flock -w 600 9 || die "could not lock $CACHE/kafka-libs.lock"
  if libs_ready; then
    exec 9>&-
    say "jars already in $LIBS"
    return 0
  fi
  command -v mvn >/dev/null 2>&1 ||
    die "mvn not found: install it (apt-get install -y maven) or run .ci/infra.sh up as root"
  local t0 tmp count size
  t0=$(now)
  tmp=$(mktemp -d "$CACHE/kafka-libs.tmp.XXXXXX")
  if ! mvn -q -B -Dstyle.color=never -f "$CONF/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp" </dev/null >"$CACHE/kafka-libs.mvn.log" 2>&1; then
    tail -n 40 "$CACHE/kafka-libs.mvn.log" >&2
    rm -rf "$tmp"
    die "mvn dependency:copy-dependencies failed (is Maven Central reachable? log: $CACHE/kafka-libs.mvn.log)"
  fi
  if ! compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || ! compgen -G "$tmp/log4j-slf4j-impl-*.jar" >/dev/null; then
    rm -rf "$tmp"
    die "the fetched jars lack kafka_2.13 or log4j-slf4j-impl"
  fi
  libs_hash >"$tmp/.complete"
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  exec 9>&-
  count=$(find "$LIBS" -name '*.jar' | wc -l)
  size=$(du -sh "$LIBS" | cut -f1)
  say "fetched $count jars ($size) into $LIBS in $(since "$t0") s"
}

check_java() {
  command -v java >/dev/null 2>&1 ||
    die "java not found: install a JRE 17+ (apt-get install -y openjdk-17-jre-headless)"
  local major
  major=$(java -version 2>&1 | sed -n 's/.* version "\([0-9]*\).*/\1/p' | head -n1)
  [[ -n $major && $major -ge 17 ]] || die "Kafka 4 needs Java 17 or newer (found: ${major:-unknown})"
}

render_config() {
  mkdir -p "$DATA_DIR"
  sed -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
    -e "s|@KAFKA_CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
    -e "s|@KAFKA_DATA_DIR@|$DATA_DIR|g" \
    "$CONF/server.properties.template" >"$PROPS"
}

format_storage() {
  [[ -f $DATA_DIR/meta.properties ]] && return 0
  local cid
  # Like Kafka's own Uuid.randomUuid: never a leading "-", which the tool's argument parser
  # would take for an option (1 format in 64 failed with "--cluster-id: expected one argument").
  cid=$("$(python_bin)" -c '
import base64, uuid
cid = "-"
while cid.startswith("-"):
    cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
print(cid)')
  # Static voters (controller.quorum.voters) => no --standalone.
  if ! java -Xmx256m "-Dlog4j2.configurationFile=$CONF/log4j2.properties" -cp "$LIBS/*" \
    kafka.tools.StorageTool format -t "$cid" -c "$PROPS" >"$KAFKA_DIR/format.log" 2>&1 </dev/null; then
    tail -n 30 "$KAFKA_DIR/format.log" >&2
    die "formatting $DATA_DIR failed (see $KAFKA_DIR/format.log)"
  fi
  printf '%s\n' "$cid" >"$KAFKA_DIR/cluster.id"
  say "formatted $DATA_DIR (cluster id $cid)"
}

launch() {
  [[ -f $LOG_FILE ]] && mv -f "$LOG_FILE" "$LOG_FILE.1"
  rm -f "$PID_FILE"
  local -a heap jvm
  read -r -a heap <<<"$KAFKA_HEAP_OPTS"
  read -r -a jvm <<<"$KAFKA_JVM_OPTS"
  # setsid: the broker gets its own session, so a Ctrl-C in the terminal does not reach it;
  # whoever started it stops it with `kafka.sh stop`. The wrapper writes its own pid, then
  # execs java, so the pid file holds the JVM's pid.
  # shellcheck disable=SC2016 # $$ and $1 belong to the inner shell
  setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' kafka-launch "$PID_FILE" \
    java "${heap[@]}" -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
    -XX:MaxInlineLevel=15 -Djava.awt.headless=true "$MARK" \
    "-Dlog4j2.configurationFile=$CONF/log4j2.properties" "-Dkafka.logs.dir=$KAFKA_DIR" \
    ${jvm[@]+"${jvm[@]}"} -cp "$LIBS/*" kafka.Kafka "$PROPS" \
    </dev/null >>"$LOG_FILE" 2>&1 &
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -s $PID_FILE ]] && return 0
    sleep 0.1
  done
  die "the broker did not write $PID_FILE"
}

fail_start() {
  printf -- '--- last lines of %s ---\n' "$LOG_FILE" >&2
  tail -n 40 "$LOG_FILE" >&2 || true
  printf -- '---\n' >&2
  die "$1"
}

# Waits until the broker with pid $1 answers a metadata request; $2 = start time.
wait_ready() {
  local pid=$1 t0=$2 deadline
  deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! is_ours "$pid"; then
      rm -f "$PID_FILE"
      fail_start "the broker (pid $pid) exited during start-up"
    fi
    if port_open "$KAFKA_PORT" && probe 5; then
      say "ready on $KAFKA_HOST:$KAFKA_PORT (pid $pid) after $(since "$t0") s; log $LOG_FILE"
      return 0
    fi
    sleep 0.25
  done
  cmd_stop >&2 || true
  fail_start "the broker was not ready after ${KAFKA_START_TIMEOUT} s (stopped it again)"
}

cmd_start() {
  local pid rc=0 t0
  t0=$(now)
  if pid=$(our_pid); then
    if probe 5; then
      say "already running (pid $pid) on $KAFKA_HOST:$KAFKA_PORT"
      return 0
    fi
    say "broker pid $pid is still starting; waiting for it"
    wait_ready "$pid" "$t0"
    return 0
  fi
  probe 5 || rc=$?
  case $rc in
    0)
      [[ $KAFKA_REUSE == 1 ]] ||
        die "a Kafka broker not started for $KAFKA_DIR already answers on $KAFKA_HOST:$KAFKA_PORT (KAFKA_REUSE=0)$(owner_hint)"
      say "a Kafka broker already answers on $KAFKA_HOST:$KAFKA_PORT (not started by this script); using it"
      return 0
      ;;
    2) die "port $KAFKA_PORT is in use, but not by a Kafka broker that answers metadata requests" ;;
  esac
  if port_open "$KAFKA_CONTROLLER_PORT"; then
    die "controller port $KAFKA_CONTROLLER_PORT is in use (set KAFKA_CONTROLLER_PORT)"
  fi
  cmd_fetch >/dev/null
  check_java
  mkdir -p "$KAFKA_DIR"
  render_config
  format_storage
  launch
  pid=$(<"$PID_FILE")
  say "started broker pid $pid (data $KAFKA_DIR); waiting up to ${KAFKA_START_TIMEOUT} s"
  wait_ready "$pid" "$t0"
}

cmd_stop() {
  local pid deadline
  if ! pid=$(our_pid); then
    rm -f "$PID_FILE"
    say "not running (no broker started by this script for $KAFKA_DIR)"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
  while is_ours "$pid" && ((SECONDS < deadline)); do
    sleep 0.2
  done
  if is_ours "$pid"; then
    say "pid $pid still alive after ${KAFKA_STOP_TIMEOUT} s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while is_ours "$pid" && ((SECONDS < deadline)); do
      sleep 0.2
    done
  fi
  rm -f "$PID_FILE"
  say "stopped (pid $pid)"
}

cmd_status() {
  local pid rc=0
  probe 5 || rc=$?
  if pid=$(our_pid); then
    if ((rc == 0)); then
      say "running, pid $pid, ready on $KAFKA_HOST:$KAFKA_PORT, data $KAFKA_DIR"
      return 0
    fi
    say "pid $pid alive but not answering on $KAFKA_HOST:$KAFKA_PORT (starting or stuck)"
    return 1
  fi
  if ((rc == 0)); then
    say "a Kafka broker not started by this script answers on $KAFKA_HOST:$KAFKA_PORT"
    return 0
  fi
  say "not running"
  return 3
}

cmd_ready() {
  local rc=0
  probe "${1:-5}" || rc=$?
  return "$rc"
}

case ${1:-} in
  fetch) cmd_fetch ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  ready) cmd_ready "${2:-5}" ;;
  *)
    echo "usage: $0 fetch|start|stop|status|ready" >&2
    exit 2
    ;;
esac
