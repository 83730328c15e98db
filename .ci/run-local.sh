#!/usr/bin/env bash
# What `make run` executes once the local Kafka and Redis are up: runs `msgstatus ingest`,
# `msgstatus projector`, `msgstatus api` and `msgstatus notifier` in the background until Ctrl-C (or SIGTERM).
# On exit -- a signal, or one service ending by itself -- it stops the others (SIGTERM,
# then SIGKILL after $MSGSTATUS_STOP_GRACE s) and runs `.ci/infra.sh down`, which stops
# the Kafka and Redis that the matching `infra.sh up` started (same MSGSTATUS_INFRA_STATE).
#
# Reads MSGSTATUS_* from the environment. Generates, when unset:
#   MSGSTATUS_API_KEYS        dev-<32 hex>
#   MSGSTATUS_WEBHOOK_SECRET  whsec_<base64 of 24 random bytes>
#   MSGSTATUS_SIGNING_SECRETS whsec_<base64 of 24 random bytes> (the notifier signs pushes with it)
# Only values generated here are printed; values the user set are shown as $MSGSTATUS_...
# placeholders, so a banner pasted into a ticket or a CI log never carries a real secret.
# MSGSTATUS_KEEP_INFRA=1 skips `infra.sh down` on exit.
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV=${VENV:-$ROOT/.venv}
MSGSTATUS=$VENV/bin/msgstatus
GRACE=${MSGSTATUS_STOP_GRACE:-15}
SERVICES=(ingest projector api notifier)

export MSGSTATUS_KAFKA_BOOTSTRAP_SERVERS=${MSGSTATUS_KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:${KAFKA_PORT:-9092}}
export MSGSTATUS_REDIS_URL=${MSGSTATUS_REDIS_URL:-redis://127.0.0.1:${REDIS_PORT:-6379}/0}
INGEST_URL=http://127.0.0.1:${MSGSTATUS_INGEST_PORT:-8081}
API_URL=http://127.0.0.1:${MSGSTATUS_API_PORT:-8080}

say() { printf 'run-local: %s\n' "$*" >&2; }

declare -a PIDS=()
declare -A NAME_OF=()
CLEANED=0

# SIGTERM to every service still alive, SIGKILL after $GRACE s, then infra down. Runs once.
cleanup() {
  ((CLEANED == 0)) || return 0
  CLEANED=1
  trap '' INT TERM
  local pid deadline alive
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  deadline=$((SECONDS + GRACE))
  while :; do
    alive=()
    for pid in "${PIDS[@]}"; do
      kill -0 "$pid" 2>/dev/null && alive+=("$pid")
    done
    ((${#alive[@]} > 0)) || break
    if ((SECONDS >= deadline)); then
      for pid in "${alive[@]}"; do
        say "${NAME_OF[$pid]} (pid $pid) still running after ${GRACE} s; SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
      done
      break
    fi
    sleep 0.2
  done
  wait 2>/dev/null || true
  if [[ ${MSGSTATUS_KEEP_INFRA:-0} != 1 ]]; then
    # Own session: a second Ctrl-C must not cut the broker's shutdown short.
    setsid -w bash "$ROOT/.ci/infra.sh" down </dev/null || say "infra.sh down failed"
  fi
}

# shellcheck disable=SC2317 # invoked by the traps below
on_signal() {
  say "got SIG$1; stopping the services"
  cleanup
  exit "$2"
}
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM
trap cleanup EXIT

[[ -x $MSGSTATUS ]] || {
  say "$MSGSTATUS not found: run 'make venv' first"
  exit 1
}

# SHOWN_*: what the banner prints, the value itself only when generated here.
SHOWN_KEYS='$MSGSTATUS_API_KEYS'
SHOWN_API_KEY='${MSGSTATUS_API_KEYS%%,*}'
SHOWN_SECRET='$MSGSTATUS_WEBHOOK_SECRET'
if [[ -z ${MSGSTATUS_API_KEYS:-} ]]; then
  MSGSTATUS_API_KEYS=dev-$("$VENV/bin/python" -c 'import secrets; print(secrets.token_hex(16))')
  export MSGSTATUS_API_KEYS
  SHOWN_KEYS=$MSGSTATUS_API_KEYS
  SHOWN_API_KEY=$MSGSTATUS_API_KEYS
fi
if [[ -z ${MSGSTATUS_WEBHOOK_SECRET:-} ]]; then
  MSGSTATUS_WEBHOOK_SECRET=whsec_$("$VENV/bin/python" -c \
    'import base64, secrets; print(base64.b64encode(secrets.token_bytes(24)).decode())')
  export MSGSTATUS_WEBHOOK_SECRET
  SHOWN_SECRET=$MSGSTATUS_WEBHOOK_SECRET
fi
SHOWN_SIGNING='$MSGSTATUS_SIGNING_SECRETS'
if [[ -z ${MSGSTATUS_SIGNING_SECRETS:-} ]]; then
  MSGSTATUS_SIGNING_SECRETS=whsec_$("$VENV/bin/python" -c \
    'import base64, secrets; print(base64.b64encode(secrets.token_bytes(24)).decode())')
  export MSGSTATUS_SIGNING_SECRETS
  SHOWN_SIGNING=$MSGSTATUS_SIGNING_SECRETS
fi
MSG_ID=011d9d6e-b5b9-4cb9-be13-2bc336a923ce

cat >&2 <<EOF

================================================================================
 msgstatus (local)   Kafka $MSGSTATUS_KAFKA_BOOTSTRAP_SERVERS   Redis $MSGSTATUS_REDIS_URL
   MSGSTATUS_API_KEYS=$SHOWN_KEYS
   MSGSTATUS_WEBHOOK_SECRET=$SHOWN_SECRET
   MSGSTATUS_SIGNING_SECRETS=$SHOWN_SIGNING   (push signatures, docs/push.md)
   ingest $INGEST_URL   api $API_URL   (Ctrl-C stops everything)

 In another terminal, post the seed example (signed per Standard Webhooks) and read it back:
export MSGSTATUS_WEBHOOK_SECRET="$SHOWN_SECRET"
docs/examples/post-webhook.sh docs/examples/seed-events.json $INGEST_URL/webhooks/events

 Read it back (by id, by phone number, by reference key):
curl -sS -H "X-Api-Key: $SHOWN_API_KEY" $API_URL/api/messagestatus/$MSG_ID
curl -sS -H "X-Api-Key: $SHOWN_API_KEY" '$API_URL/api/messagestatus/phonenumber/%2B1234567890?count=1'
curl -sS -H "X-Api-Key: $SHOWN_API_KEY" '$API_URL/api/messagestatus/reference/EXT_KEY?count=2'
================================================================================

EOF

# The projector and the notifier both read MSGSTATUS_METRICS_PORT: under `make run` the
# notifier takes MSGSTATUS_NOTIFIER_METRICS_PORT (default 9109) instead, so setting the one
# variable for the projector never makes the two collide.
for svc in "${SERVICES[@]}"; do
  if [[ $svc == notifier ]]; then
    MSGSTATUS_METRICS_PORT=${MSGSTATUS_NOTIFIER_METRICS_PORT:-9109} "$MSGSTATUS" "$svc" &
  else
    "$MSGSTATUS" "$svc" &
  fi
  PIDS+=("$!")
  NAME_OF[$!]=$svc
  say "started msgstatus $svc (pid $!)"
done

# Blocks until the first service exits; a trapped signal interrupts it and runs on_signal.
rc=0
done_pid=
wait -n -p done_pid "${PIDS[@]}" || rc=$?
if [[ -n $done_pid ]]; then
  say "msgstatus ${NAME_OF[$done_pid]} (pid $done_pid) exited with status $rc; stopping the others"
else
  say "wait failed (status $rc); stopping the services"
fi
cleanup
# A service ends with 0 only when told to stop (Ctrl-C reaches the whole process group, so
# it may exit before this script's own trap runs): that is a normal end of `make run`.
exit "$rc"
