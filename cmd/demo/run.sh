#!/usr/bin/env bash
# Starts the demo: the demo upstream services and the gateway with
# cmd/demo/wasmgate.yaml. Ctrl-C stops everything this script started.
set -euo pipefail
cd "$(dirname "$0")/../.."

export WASMGATE_ADMIN_TOKEN="${WASMGATE_ADMIN_TOKEN:-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "demo stopped"
}
trap cleanup INT TERM EXIT

bin/demo-upstreams -instances 2 &
pids+=($!)
bin/wasmgate serve --config cmd/demo/wasmgate.yaml &
pids+=($!)

for _ in $(seq 1 100); do
  curl -fsS -H "Authorization: Bearer $WASMGATE_ADMIN_TOKEN" http://127.0.0.1:9901/readyz >/dev/null 2>&1 && break
  sleep 0.1
done

cat <<MSG

  wasmgate demo is running
    proxy   http://127.0.0.1:8080
    admin   http://127.0.0.1:9901   (token: $WASMGATE_ADMIN_TOKEN)

  Try:
    curl -i http://127.0.0.1:8080/api/users/1
    curl -s -H 'X-Api-Version: 2' http://127.0.0.1:8080/api/users
    curl -s -H 'X-User-Id: 7' 'http://127.0.0.1:8080/api/feed?user=7'
    curl -s -X POST -H 'Idempotency-Key: k1' -H 'Content-Type: application/json' -d '{"user_id":7,"items":[{"sku":"book-gopl","qty":1}]}' http://127.0.0.1:8080/api/orders
    curl -s -b beta=1 'http://127.0.0.1:8080/api/feed?user=7'
    curl -s -H "Authorization: Bearer $WASMGATE_ADMIN_TOKEN" http://127.0.0.1:9901/upstreams
    curl -s -H "Authorization: Bearer $WASMGATE_ADMIN_TOKEN" http://127.0.0.1:9901/routes
    curl -s -H "Authorization: Bearer $WASMGATE_ADMIN_TOKEN" http://127.0.0.1:9901/metrics | grep wasmgate_requests_total
    curl -s -X POST -H "Authorization: Bearer $WASMGATE_ADMIN_TOKEN" http://127.0.0.1:9901/config/reload

  Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}"
