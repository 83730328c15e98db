#!/usr/bin/env bash
# Post a canonical event file to msgstatus ingest, signed per the Standard Webhooks spec.
#   MSGSTATUS_WEBHOOK_SECRET=whsec_... docs/examples/post-webhook.sh FILE [URL]
# Needs only bash, openssl, base64, od and curl.
set -euo pipefail
file=${1:?usage: post-webhook.sh FILE [URL]}
url=${2:-http://127.0.0.1:${MSGSTATUS_INGEST_PORT:-8081}/webhooks/events}
secret=${MSGSTATUS_WEBHOOK_SECRET:?set MSGSTATUS_WEBHOOK_SECRET (make run prints it)}
body=$(cat -- "$file")
id="msg_$(date +%s%N)"
ts=$(date +%s)
key=$(printf '%s' "${secret#whsec_}" | base64 -d | od -An -tx1 | tr -d ' \n')
sig=$(printf '%s.%s.%s' "$id" "$ts" "$body" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key" -binary | base64 -w0)
curl -sS -X POST "$url" \
  -H 'content-type: application/json' \
  -H "webhook-id: $id" -H "webhook-timestamp: $ts" -H "webhook-signature: v1,$sig" \
  --data-binary "$body"
echo
