#!/usr/bin/env bash
# Local infrastructure for msgstatus: Redis + single-node Kafka.
#
#   .ci/infra.sh up      make sure java/mvn exist (apt when root), start Redis and Kafka unless
#                        they already answer, record what THIS script started
#   .ci/infra.sh down    stop only what `up` recorded as started by it; nothing else
#   .ci/infra.sh status  status of both
#
# Environment:
#   KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093), REDIS_PORT (6379), MSGSTATUS_CACHE (<repo>/.cache)
#   MSGSTATUS_INFRA_STATE  file recording what `up` started (default $MSGSTATUS_CACHE/infra.state).
#                          `make test` and `make run` use their own state file, so their
#                          `down` never stops infrastructure someone else brought up.
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${MSGSTATUS_CACHE:-$ROOT/.cache}
case $CACHE in /*) ;; *) CACHE=$PWD/$CACHE ;; esac
export MSGSTATUS_CACHE=$CACHE
export KAFKA_PORT=${KAFKA_PORT:-9092}
export KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
export REDIS_PORT=${REDIS_PORT:-6379}
STATE=${MSGSTATUS_INFRA_STATE:-$CACHE/infra.state}
KAFKA=$ROOT/.ci/kafka.sh
REDIS=$ROOT/.ci/redis.sh

say() { printf 'infra.sh: %s\n' "$*"; }
die() {
  printf 'infra.sh: ERROR: %s\n' "$*" >&2
  exit 1
}

recorded() { [[ -f $STATE ]] && grep -qxF -- "$1" "$STATE"; }
record() {
  mkdir -p "$(dirname -- "$STATE")"
  recorded "$1" || printf '%s\n' "$1" >>"$STATE"
}

java_ok() {
  command -v java >/dev/null 2>&1 || return 1
  local major
  major=$(java -version 2>&1 | sed -n 's/.* version "\([0-9]*\).*/\1/p' | head -n1)
  [[ -n $major && $major -ge 17 ]]
}

ensure_jdk_maven() {
  java_ok && command -v mvn >/dev/null 2>&1 && return 0
  if [[ $(id -u) -ne 0 ]]; then
    die "Java 17+ and Maven are needed to run Kafka locally. Install them with:
    sudo apt-get update && sudo apt-get install -y openjdk-17-jre-headless maven"
  fi
  say "installing openjdk-17-jre-headless and maven with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless maven </dev/null >/dev/null
  java_ok || die "java 17+ still not available after apt-get install"
}

cmd_up() {
  local t0=$SECONDS
  ensure_jdk_maven

  # Record a server only when nothing answers yet, i.e. when this script starts it
  # (recorded before starting, so that `down` also cleans up a failed start).
  if bash "$REDIS" status >/dev/null 2>&1; then
    bash "$REDIS" start
  else
    record "redis $REDIS_PORT"
    bash "$REDIS" start
  fi

  bash "$KAFKA" fetch
  if bash "$KAFKA" status >/dev/null 2>&1; then
    bash "$KAFKA" start
  else
    record "kafka $KAFKA_PORT $KAFKA_CONTROLLER_PORT"
    bash "$KAFKA" start
  fi

  say "up in $((SECONDS - t0)) s (state: $STATE)"
  cat <<EOF
  Kafka: 127.0.0.1:$KAFKA_PORT      MSGSTATUS_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$KAFKA_PORT
  Redis: 127.0.0.1:$REDIS_PORT      MSGSTATUS_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
EOF
}

cmd_down() {
  if [[ ! -s $STATE ]]; then
    say "nothing recorded in $STATE; nothing to stop"
    return 0
  fi
  local kind port cport rc=0
  # Kafka first (clients of Redis do not matter here, but stop the heavier one first).
  while read -r kind port cport; do
    [[ $kind == kafka ]] || continue
    KAFKA_PORT=$port KAFKA_CONTROLLER_PORT=$cport bash "$KAFKA" stop || rc=1
  done <"$STATE"
  while read -r kind port _; do
    [[ $kind == redis ]] || continue
    REDIS_PORT=$port bash "$REDIS" stop || rc=1
  done <"$STATE"
  if ((rc == 0)); then
    rm -f "$STATE"
  fi
  return "$rc"
}

cmd_status() {
  local rc=0
  bash "$REDIS" status || rc=1
  bash "$KAFKA" status || rc=1
  if [[ -s $STATE ]]; then
    say "started by infra.sh up (state $STATE): $(tr '\n' ';' <"$STATE")"
  fi
  return "$rc"
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
