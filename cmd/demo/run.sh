#!/usr/bin/env bash
# Starts the demo: the five demo upstream services (users, orders, feed,
# notifications, legacy), each run twice (demo-upstreams -instances 2: ports
# 9101-9105 and 10101-10105), and the gateway with cmd/demo/wasmgate.yaml (or
# DEMO_CONFIG). Ctrl-C stops everything this script started.
#
# The admin token is WASMGATE_ADMIN_TOKEN when set, else a random one; either
# way it is printed and written to bin/demo-admin-token (mode 600, removed
# when the demo stops), so that
#   curl -H "Authorization: Bearer $(cat bin/demo-admin-token)" http://127.0.0.1:9901/routes
# works from the repository's root while the demo runs.
set -euo pipefail
cd "$(dirname "$0")/../.."

# A demo JWT (HS256, sub 1, expires in 2100) signed with the demo secret of
# cmd/demo/wasmgate.yaml (DEMO_JWT_SECRET overrides the secret, not this token).
DEMO_JWT='eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImRlbW8ifQ.eyJzdWIiOiIxIiwiaXNzIjoid2FzbWdhdGUtZGVtbyIsImF1ZCI6ImRlbW8tYXBpIiwiZXhwIjo0MTAyNDQ0ODAwLCJzY29wZSI6InJlYWQifQ.Lfm3wbUMh1edA2NQCSEsTrBf2U62kqslAtgw4r2FEDo'
export WASMGATE_ADMIN_TOKEN="${WASMGATE_ADMIN_TOKEN:-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
token_file=bin/demo-admin-token
mkdir -p bin
(umask 077 && printf '%s\n' "$WASMGATE_ADMIN_TOKEN" >"$token_file")
pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -f "$token_file"
  echo "demo stopped"
}
trap cleanup INT TERM EXIT

# Every demo starts from the config file's traffic state (README,
# "Strangler-fig walkthrough"); a gateway restarted alone would restore it.
rm -f bin/demo-traffic.state.json
# The HTTPS listener's certificate, from a development CA of its own.
bin/wasmgate cert -out bin/demo-tls -names localhost,127.0.0.1 >/dev/null
bin/demo-upstreams -instances 2 &
pids+=($!)
bin/wasmgate serve --config "${DEMO_CONFIG:-cmd/demo/wasmgate.yaml}" &
gateway=$!
pids+=("$gateway")

# The first start compiles the Go plugins (seconds); later starts hit the
# compilation cache.
ready=0
for _ in $(seq 1 600); do
  if curl -fsS --max-time 2 -H "Authorization: Bearer $WASMGATE_ADMIN_TOKEN" http://127.0.0.1:9901/readyz >/dev/null 2>&1; then
    ready=1
    break
  fi
  kill -0 "$gateway" 2>/dev/null || break # it exited: its log above says why
  sleep 0.1
done
if [[ $ready != 1 ]]; then
  echo "run.sh: the gateway did not become ready (its log above says why; is a demo port, 8080, 8443, 8081, 9901, 9101-9105 or 10101-10105, taken?)" >&2
  exit 1
fi

cat <<MSG

  wasmgate demo is running
    proxy   http://127.0.0.1:8080 and https://localhost:8443 (trust bin/demo-tls/ca.pem)
    probe   http://127.0.0.1:8081/readyz (no token)
    admin   http://127.0.0.1:9901   (token: $WASMGATE_ADMIN_TOKEN, also in $token_file)

  Try:
    curl -i http://127.0.0.1:8080/api/users/1
    curl -s --cacert bin/demo-tls/ca.pem https://localhost:8443/api/users/1
    curl -s -H 'X-Api-Version: 2' http://127.0.0.1:8080/api/users
    curl -s -H 'X-User-Id: 7' 'http://127.0.0.1:8080/api/feed?user=7'
    curl -s -X POST -H 'Idempotency-Key: k1' -H 'Content-Type: application/json' -d '{"user_id":7,"items":[{"sku":"book-gopl","qty":1}]}' http://127.0.0.1:8080/api/orders
    curl -s -b beta=1 'http://127.0.0.1:8080/api/feed?user=7'

  Plugins (WASM):
    curl -s -H "Authorization: Bearer $DEMO_JWT" http://127.0.0.1:8080/secure/me      # jwt-auth + rewrite
    curl -si http://127.0.0.1:8080/secure/me                                         # 401 + WWW-Authenticate
    curl -si -H "Authorization: Bearer $DEMO_JWT" http://127.0.0.1:8080/secure/admin/users  # authorize: 403, insufficient_scope
    curl -s -H 'X-Api-Key: demo-partner-key' http://127.0.0.1:8080/partner/orders   # api-key
    curl -s http://127.0.0.1:8080/v2/users/1                                         # json-transform
    curl -s 'http://127.0.0.1:8080/api/home?user=1'                                  # aggregate: 3 services, 1 request
    curl -s -H 'Sec-CH-UA-Mobile: ?1' 'http://127.0.0.1:8080/api/feed/shaped?user=1' # client-shape (mobile)
    curl -s 'http://127.0.0.1:8080/api/feed/shaped?user=1&fields=data.items.id'      # client-shape (fields=)
    curl -si http://127.0.0.1:8080/raw-wat/deny                                      # raw WAT plugin, local 403

  The same plugins in Rust, C and AssemblyScript (/rust, /c, /as):
    curl -s -H 'X-Api-Key: demo-partner-key-0123456789' http://127.0.0.1:8080/rust/orders   # api_key + authorize
    curl -s http://127.0.0.1:8080/c/users/1                                          # json_transform
    curl -s 'http://127.0.0.1:8080/as/home?user=1'                                   # aggregate

  Admin:
    curl -s -H "Authorization: Bearer $WASMGATE_ADMIN_TOKEN" http://127.0.0.1:9901/upstreams
    curl -s -H "Authorization: Bearer $WASMGATE_ADMIN_TOKEN" http://127.0.0.1:9901/routes
    curl -s -H "Authorization: Bearer $WASMGATE_ADMIN_TOKEN" http://127.0.0.1:9901/metrics | grep wasmgate_requests_total
    curl -s -X POST -H "Authorization: Bearer $WASMGATE_ADMIN_TOKEN" http://127.0.0.1:9901/config/reload

  Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}"
