#!/usr/bin/env bash
# Local Redis for `make run` / `make test`.
#
#   .ci/redis.sh start    use a Redis that already answers on 127.0.0.1:$REDIS_PORT, or start
#                         our own redis-server there (installing it with apt when root)
#   .ci/redis.sh stop     stop the redis-server THIS script started (pid file); nothing else
#   .ci/redis.sh status   exit 0 when a Redis answers PING, 3 when none does
#
# Environment:
#   REDIS_PORT        default 6379
#   MSGSTATUS_CACHE   cache root (default <repo>/.cache)
#   REDIS_DIR         working dir with redis.pid and redis.log (default $MSGSTATUS_CACHE/redis-$REDIS_PORT)
#   REDIS_STOP_TIMEOUT seconds between SIGTERM and SIGKILL (default 15)
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${MSGSTATUS_CACHE:-$ROOT/.cache}
REDIS_HOST=127.0.0.1
REDIS_PORT=${REDIS_PORT:-6379}
REDIS_DIR=${REDIS_DIR:-$CACHE/redis-$REDIS_PORT}
REDIS_STOP_TIMEOUT=${REDIS_STOP_TIMEOUT:-15}

case $REDIS_DIR in /*) ;; *) REDIS_DIR=$PWD/$REDIS_DIR ;; esac
PID_FILE=$REDIS_DIR/redis.pid
LOG_FILE=$REDIS_DIR/redis.log

say() { printf 'redis.sh[%s]: %s\n' "$REDIS_PORT" "$*"; }
die() {
  printf 'redis.sh[%s]: ERROR: %s\n' "$REDIS_PORT" "$*" >&2
  exit 1
}

# PING without depending on redis-cli (bash /dev/tcp, RESP inline command).
ping_redis() {
  if command -v redis-cli >/dev/null 2>&1; then
    [[ $(timeout 3 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]
    return
  fi
  # shellcheck disable=SC2016 # $1/$2 belong to the inner shell
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2" && printf "PING\r\n" >&3 && IFS= read -r line <&3 &&
    [[ $line == "+PONG"* ]]' _ "$REDIS_HOST" "$REDIS_PORT" 2>/dev/null
}

# Pid of the redis-server this script started on $REDIS_PORT, if alive.
our_pid() {
  local pid args
  [[ -f $PID_FILE ]] || return 1
  pid=$(<"$PID_FILE")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  args=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
  [[ $args == *redis-server*":$REDIS_PORT"* ]] || return 1
  printf '%s' "$pid"
}

ensure_redis_server() {
  command -v redis-server >/dev/null 2>&1 && return 0
  if [[ $(id -u) -ne 0 ]]; then
    die "redis-server is not installed. Install it with:
    sudo apt-get update && sudo apt-get install -y redis-server
  (or run any Redis 7 on $REDIS_HOST:$REDIS_PORT yourself; this script then uses it)"
  fi
  say "redis-server missing; installing it with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server </dev/null >/dev/null
  command -v redis-server >/dev/null 2>&1 || die "apt-get install redis-server did not provide redis-server"
}

cmd_start() {
  local pid i
  if pid=$(our_pid) && ping_redis; then
    say "already running (pid $pid) on $REDIS_HOST:$REDIS_PORT"
    return 0
  fi
  if ping_redis; then
    say "a Redis not started by this script answers on $REDIS_HOST:$REDIS_PORT; using it"
    return 0
  fi
  ensure_redis_server
  # apt's postinst may have started the distribution's service on 6379: acceptable, use it
  # (and `stop` leaves it alone, since there is no pid file of ours).
  if ping_redis; then
    say "a Redis answers on $REDIS_HOST:$REDIS_PORT after installing (the system service); using it"
    return 0
  fi
  mkdir -p "$REDIS_DIR"
  rm -f "$PID_FILE"
  # Our own server, never the distribution's service: loopback only, no persistence; message
  # buckets kept as compact listpacks (runtime/redis_config.py, docs/operations.md "Redis").
  redis-server --bind "$REDIS_HOST" --port "$REDIS_PORT" --daemonize yes \
    --save '' --appendonly no --dir "$REDIS_DIR" --hash-max-listpack-value 1024 \
    --pidfile "$PID_FILE" --logfile "$LOG_FILE" </dev/null >/dev/null 2>&1 ||
    die "redis-server failed to start (see $LOG_FILE)"
  for ((i = 0; i < 100; i++)); do
    if ping_redis; then
      say "started redis-server pid $(<"$PID_FILE") on $REDIS_HOST:$REDIS_PORT; log $LOG_FILE"
      return 0
    fi
    sleep 0.1
  done
  tail -n 20 "$LOG_FILE" >&2 || true
  die "redis-server did not answer PING within 10 s"
}

cmd_stop() {
  local pid deadline
  if ! pid=$(our_pid); then
    rm -f "$PID_FILE"
    say "not running (no redis-server started by this script on port $REDIS_PORT)"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + REDIS_STOP_TIMEOUT))
  while our_pid >/dev/null && ((SECONDS < deadline)); do
    sleep 0.1
  done
  if our_pid >/dev/null; then
    say "pid $pid still alive after ${REDIS_STOP_TIMEOUT} s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PID_FILE"
  say "stopped (pid $pid)"
}

cmd_status() {
  local pid
  if pid=$(our_pid); then
    if ping_redis; then
      say "running, pid $pid, on $REDIS_HOST:$REDIS_PORT"
      return 0
    fi
    say "pid $pid alive but not answering PING"
    return 1
  fi
  if ping_redis; then
    say "a Redis not started by this script answers on $REDIS_HOST:$REDIS_PORT"
    return 0
  fi
  say "not running"
  return 3
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
