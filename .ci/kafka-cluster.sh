#!/usr/bin/env bash
# A three-node Kafka cluster (KRaft, each node broker + controller) on loopback, run with the
# same jars as .ci/kafka.sh, which starts and stops every node. Topics default to replication
# factor 3 and min.insync.replicas=2 (.ci/kafka/cluster.properties).
#
#   .ci/kafka-cluster.sh up          fresh cluster (storage formatted anew; nodes an earlier run
#                                    left are stopped first), waits until it lists 3 brokers
#   .ci/kafka-cluster.sh down        stop every node this script started (SIGTERM, then SIGKILL)
#   .ci/kafka-cluster.sh status      which nodes run (exit 0 when all three do)
#   .ci/kafka-cluster.sh bootstrap   print the bootstrap list, e.g. 127.0.0.1:29101,...
#   .ci/kafka-cluster.sh kill N      SIGKILL node N (1-3): the fault the cluster tests inject
#   .ci/kafka-cluster.sh start N     start node N again (its data kept) and wait until it answers
#
# Environment:
#   KAFKA_CLUSTER_BASE_PORT  node N listens on base+N, its controller on base+10+N (default 29100)
#   KAFKA_CLUSTER_DIR        data of the nodes (default $MSGSTATUS_CACHE/kafka-cluster-<base>)
#   KAFKA_HEAP_OPTS          per node (default "-Xms256m -Xmx384m": three JVMs on a small box)
#   MSGSTATUS_CACHE          cache root (default <repo>/.cache); also what .ci/kafka.sh reads
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
KAFKA=$ROOT/.ci/kafka.sh
CACHE=${MSGSTATUS_CACHE:-$ROOT/.cache}
case $CACHE in /*) ;; *) CACHE=$PWD/$CACHE ;; esac
BASE=${KAFKA_CLUSTER_BASE_PORT:-29100}
DIR=${KAFKA_CLUSTER_DIR:-$CACHE/kafka-cluster-$BASE}
case $DIR in /*) ;; *) DIR=$PWD/$DIR ;; esac
NODES=(1 2 3)

export MSGSTATUS_CACHE=$CACHE
export KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms256m -Xmx384m}
export KAFKA_PROPS_OVERRIDES=$ROOT/.ci/kafka/cluster.properties
export KAFKA_REUSE=0 KAFKA_MIN_BROKERS=1
export KAFKA_STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-20}
export KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-90}

say() { printf 'kafka-cluster.sh: %s\n' "$*"; }
die() {
  printf 'kafka-cluster.sh: ERROR: %s\n' "$*" >&2
  exit 1
}

voters() {
  local n out=""
  for n in "${NODES[@]}"; do
    out+="${out:+,}$n@127.0.0.1:$((BASE + 10 + n))"
  done
  printf '%s' "$out"
}

bootstrap() {
  local n out=""
  for n in "${NODES[@]}"; do
    out+="${out:+,}127.0.0.1:$((BASE + n))"
  done
  printf '%s' "$out"
}

# node N CMD: runs `.ci/kafka.sh CMD` as node N of this cluster.
node() {
  local n=$1
  shift
  [[ $n =~ ^[123]$ ]] || die "no node '$n' (1, 2 or 3)"
  KAFKA_NODE_ID=$n KAFKA_PORT=$((BASE + n)) KAFKA_CONTROLLER_PORT=$((BASE + 10 + n)) \
    KAFKA_DIR=$DIR/node$n KAFKA_QUORUM_VOTERS=$(voters) \
    KAFKA_CLUSTER_ID=$(cat "$DIR/cluster.id" 2>/dev/null || true) bash "$KAFKA" "$@"
}

cmd_up() {
  local t0=$SECONDS n
  for n in "${NODES[@]}"; do
    if [[ -s $DIR/node$n/kafka.pid ]]; then
      say "stopping what an earlier run left in $DIR first"
      cmd_down
      break
    fi
  done
  bash "$KAFKA" fetch >/dev/null
  rm -rf -- "$DIR"
  mkdir -p "$DIR"
  # One cluster id for all nodes; StorageTool formats each with it (static voters).
  # Never a leading "-" (as Kafka's own Uuid.randomUuid): the storage tool would take it for
  # an option.
  "$(command -v python3)" -c '
import base64, uuid
cid = "-"
while cid.startswith("-"):
    cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
print(cid)' >"$DIR/cluster.id"
  # A node is ready only once a quorum of controllers exists: start all (formatting their
  # storage in parallel), then wait for each.
  local -a pids=()
  local failed=0
  for n in "${NODES[@]}"; do
    node "$n" spawn &
    pids+=($!)
  done
  for n in "${pids[@]}"; do
    wait "$n" || failed=1
  done
  if ((failed)); then
    cmd_down >&2 || true
    die "a node did not start"
  fi
  for n in "${NODES[@]}"; do
    node "$n" wait || {
      cmd_down >&2 || true
      die "node $n was not ready"
    }
  done
  # Every broker registered: metadata from node 1 lists all three.
  local deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  until KAFKA_MIN_BROKERS=3 node 1 ready 5; do
    if ((SECONDS >= deadline)); then
      cmd_down >&2 || true
      die "the cluster did not list three brokers within ${KAFKA_START_TIMEOUT} s"
    fi
    sleep 0.5
  done
  say "three brokers up in $((SECONDS - t0)) s: $(bootstrap) (data $DIR)"
}

cmd_down() {
  local n rc=0
  local -a pids=()
  [[ -d $DIR ]] || {
    say "no cluster in $DIR"
    return 0
  }
  # In parallel: a node stopping alone waits for a controller that is stopping too.
  for n in "${NODES[@]}"; do
    node "$n" stop &
    pids+=($!)
  done
  for n in "${pids[@]}"; do
    wait "$n" || rc=1
  done
  return "$rc"
}

cmd_status() {
  local n rc=0
  for n in "${NODES[@]}"; do
    node "$n" status || rc=1
  done
  return "$rc"
}

cmd_kill() {
  local n=$1 pid
  [[ -s $DIR/node$n/kafka.pid ]] || die "node $n has no pid file"
  pid=$(<"$DIR/node$n/kafka.pid")
  grep -qxF -- "-Dmsgstatus.kafka.dir=$DIR/node$n" < <(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null) ||
    die "node $n (pid $pid) is not running"
  kill -KILL "$pid"
  while [[ -e /proc/$pid ]] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; do
    sleep 0.05
  done
  say "killed node $n (pid $pid)"
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  bootstrap) bootstrap && echo ;;
  kill) cmd_kill "${2:?node 1-3}" ;;
  start) node "${2:?node 1-3}" start ;;
  *)
    echo "usage: $0 up|down|status|bootstrap|kill N|start N" >&2
    exit 2
    ;;
esac
