#!/usr/bin/env bash
# A Redis Cluster of three masters and three replicas on loopback, from the apt redis-server
# (no persistence, small maxmemory): what `make test-cluster` runs the read API and the Redis
# failover test against (docs/reliability.md).
#
#   .ci/redis-cluster.sh up        fresh cluster (nodes an earlier run left are stopped first):
#                                  six redis-server, `redis-cli --cluster create
#                                  --cluster-replicas 1`, then waits until every node reports
#                                  cluster_state:ok and knows all six
#   .ci/redis-cluster.sh down      stop every node THIS script started (pid files); nothing else
#   .ci/redis-cluster.sh status    one line per node: port, pid, role; exit 0 when all answer
#   .ci/redis-cluster.sh urls      the service setting, e.g. redis+cluster://127.0.0.1:29201,...
#   .ci/redis-cluster.sh kill N    SIGKILL node N (1-6; 1-3 start as masters)
#   .ci/redis-cluster.sh start N   start node N again (its cluster config kept, its data gone)
#
# Environment:
#   REDIS_CLUSTER_BASE_PORT     node N listens on base+N (default 29200: 29201-29206)
#   REDIS_CLUSTER_DIR           nodes' directories (default $MSGSTATUS_CACHE/redis-cluster-<base>)
#   REDIS_CLUSTER_NODE_TIMEOUT  ms before a silent master is failed over (default 2000)
#   REDIS_CLUSTER_MAXMEMORY     per node (default 256mb)
#   MSGSTATUS_CACHE             cache root (default <repo>/.cache)
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${MSGSTATUS_CACHE:-$ROOT/.cache}
case $CACHE in /*) ;; *) CACHE=$PWD/$CACHE ;; esac
BASE=${REDIS_CLUSTER_BASE_PORT:-29200}
DIR=${REDIS_CLUSTER_DIR:-$CACHE/redis-cluster-$BASE}
case $DIR in /*) ;; *) DIR=$PWD/$DIR ;; esac
NODE_TIMEOUT=${REDIS_CLUSTER_NODE_TIMEOUT:-2000}
MAXMEMORY=${REDIS_CLUSTER_MAXMEMORY:-256mb}
START_TIMEOUT=${REDIS_CLUSTER_START_TIMEOUT:-60}
HOST=127.0.0.1
NODES=(1 2 3 4 5 6)

say() { printf 'redis-cluster.sh[%s]: %s\n' "$BASE" "$*"; }
die() {
  printf 'redis-cluster.sh[%s]: ERROR: %s\n' "$BASE" "$*" >&2
  exit 1
}

port() { printf '%s' $((BASE + $1)); }
cli() {
  local n=$1
  shift
  timeout 5 redis-cli -h "$HOST" -p "$(port "$n")" "$@"
}

# Pid of node N if THIS script started it and it still runs.
our_pid() {
  local n=$1 pid args f=$DIR/node$1/redis.pid
  [[ -s $f ]] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  args=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
  [[ $args == *redis-server*":$(port "$n")"* ]] || return 1
  printf '%s' "$pid"
}

spawn() {
  local n=$1 d=$DIR/node$1
  mkdir -p "$d"
  rm -f "$d/redis.pid"
  redis-server --bind "$HOST" --port "$(port "$n")" --daemonize yes \
    --cluster-enabled yes --cluster-config-file "$d/nodes.conf" \
    --cluster-node-timeout "$NODE_TIMEOUT" \
    --save '' --appendonly no --maxmemory "$MAXMEMORY" --maxmemory-policy noeviction \
    --hash-max-listpack-value 1024 \
    --dir "$d" --pidfile "$d/redis.pid" --logfile "$d/redis.log" </dev/null >/dev/null 2>&1 ||
    return 1
  local i
  for ((i = 0; i < 100; i++)); do
    [[ $(cli "$n" ping 2>/dev/null) == PONG ]] && return 0
    sleep 0.1
  done
  return 1
}

stop_node() {
  local n=$1 pid i
  pid=$(our_pid "$n") || {
    rm -f "$DIR/node$n/redis.pid"
    return 0
  }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    our_pid "$n" >/dev/null || break
    sleep 0.1
  done
  our_pid "$n" >/dev/null && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$DIR/node$n/redis.pid"
  say "stopped node $n (pid $pid, port $(port "$n"))"
}

# Every node answers, reports cluster_state:ok, knows all six nodes and three masters.
healthy() {
  local n info
  for n in "${NODES[@]}"; do
    info=$(cli "$n" cluster info 2>/dev/null) || return 1
    [[ $info == *cluster_state:ok* ]] || return 1
    [[ $info == *cluster_known_nodes:6* ]] || return 1
    [[ $info == *cluster_size:3* ]] || return 1
  done
  # Each master has its replica attached (a replica reports master_link_status:up).
  for n in "${NODES[@]}"; do
    info=$(cli "$n" info replication 2>/dev/null) || return 1
    if [[ $info == *role:slave* && $info != *master_link_status:up* ]]; then
      return 1
    fi
  done
}

cmd_up() {
  local t0=$SECONDS n
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
    die "redis-server and redis-cli are needed (apt-get install redis-server)"
  for n in "${NODES[@]}"; do
    if our_pid "$n" >/dev/null; then
      say "stopping what an earlier run left in $DIR first"
      cmd_down
      break
    fi
  done
  for n in "${NODES[@]}"; do
    if cli "$n" ping >/dev/null 2>&1; then
      die "something not started by this script answers on $HOST:$(port "$n")"
    fi
  done
  rm -rf -- "$DIR"
  mkdir -p "$DIR"
  for n in "${NODES[@]}"; do
    spawn "$n" || {
      tail -n 20 "$DIR/node$n/redis.log" >&2 || true
      cmd_down >&2 || true
      die "node $n did not start"
    }
  done
  local -a addrs=()
  for n in "${NODES[@]}"; do addrs+=("$HOST:$(port "$n")"); done
  # The first three given become masters; each of the others replicates one of them.
  if ! redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes \
    >"$DIR/create.log" 2>&1; then
    cat "$DIR/create.log" >&2
    cmd_down >&2 || true
    die "redis-cli --cluster create failed"
  fi
  local deadline=$((SECONDS + START_TIMEOUT))
  until healthy; do
    if ((SECONDS >= deadline)); then
      for n in "${NODES[@]}"; do cli "$n" cluster info 2>&1 | head -n 3 >&2 || true; done
      cmd_down >&2 || true
      die "the cluster was not ok on every node within ${START_TIMEOUT} s"
    fi
    sleep 0.2
  done
  say "three masters and three replicas ok in $((SECONDS - t0)) s: $(urls) (data $DIR)"
}

cmd_down() {
  local n
  [[ -d $DIR ]] || {
    say "no cluster in $DIR"
    return 0
  }
  for n in "${NODES[@]}"; do stop_node "$n"; done
}

cmd_status() {
  local n pid role rc=0
  for n in "${NODES[@]}"; do
    pid=$(our_pid "$n") || pid=-
    if role=$(cli "$n" role 2>/dev/null | head -n1); then
      say "node $n port $(port "$n") pid $pid: $role"
    else
      say "node $n port $(port "$n") pid $pid: not answering"
      rc=1
    fi
  done
  return "$rc"
}

urls() {
  local n out=""
  for n in "${NODES[@]}"; do out+="${out:+,}$HOST:$(port "$n")"; done
  printf 'redis+cluster://%s' "$out"
}

cmd_kill() {
  local n=$1 pid
  [[ $n =~ ^[1-6]$ ]] || die "no node '$n' (1-6)"
  pid=$(our_pid "$n") || die "node $n is not running"
  kill -KILL "$pid"
  while [[ -e /proc/$pid ]] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; do
    sleep 0.05
  done
  rm -f "$DIR/node$n/redis.pid"
  say "killed node $n (pid $pid, port $(port "$n"))"
}

cmd_start() {
  local n=$1
  [[ $n =~ ^[1-6]$ ]] || die "no node '$n' (1-6)"
  if our_pid "$n" >/dev/null; then
    say "node $n already runs"
    return 0
  fi
  [[ -s $DIR/node$n/nodes.conf ]] || die "node $n was never part of the cluster in $DIR"
  spawn "$n" || die "node $n did not start (see $DIR/node$n/redis.log)"
  say "started node $n again on $HOST:$(port "$n") (pid $(<"$DIR/node$n/redis.pid"))"
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  urls) urls && echo ;;
  kill) cmd_kill "${2:?node 1-6}" ;;
  start) cmd_start "${2:?node 1-6}" ;;
  *)
    echo "usage: $0 up|down|status|urls|kill N|start N" >&2
    exit 2
    ;;
esac
