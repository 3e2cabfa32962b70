#!/usr/bin/env bash
# Measures the memory of the make run demo's gateway: its RSS (and Go heap,
# from /metrics) once started and idle, then after a minute of load over a
# mix of demo routes (Go, Rust, C and AssemblyScript plugins, the cache,
# plain proxying), then idle again after the load (pools shrink). It runs
# the demo (cmd/demo/run.sh) in the background; demo ports must be free.
#
#   bash cmd/demo/memory.sh [LOAD_SECONDS] [CONNECTIONS]
#
# ALL_WAZERO=1 measures the demo with every plugin on wazero (the demo runs
# its Go plugins on wasmtime); DEMO_CONFIG=FILE measures another config.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ ${ALL_WAZERO:-} == 1 ]]; then
  # Beside the original: its module paths are relative to its directory.
  export DEMO_CONFIG=cmd/demo/.memory-all-wazero.yaml
  sed -e 's/engine: wasmtime, //' -e '/^    engine: wasmtime$/d' cmd/demo/wasmgate.yaml >"$DEMO_CONFIG"
  if grep -q 'engine: wasmtime' "$DEMO_CONFIG"; then echo "memory.sh: a plugin is still on wasmtime" >&2; exit 1; fi
fi
secs=${1:-60}
conns=${2:-32}
idle_after=${IDLE_AFTER:-40}
command -v wrk >/dev/null || { echo "memory.sh: wrk is needed (apt-get install wrk)" >&2; exit 1; }
export WASMGATE_ADMIN_TOKEN=${WASMGATE_ADMIN_TOKEN:-memory-$$-$RANDOM}
log=$(mktemp)
lua=
bash cmd/demo/run.sh >"$log" 2>&1 &
demo=$!
trap 'kill -TERM $demo 2>/dev/null; wait $demo 2>/dev/null || true; rm -f "$log" "$lua" cmd/demo/.memory-all-wazero.yaml' EXIT
for _ in $(seq 1 600); do
  curl -fsS --max-time 2 http://127.0.0.1:8081/readyz >/dev/null 2>&1 && break
  kill -0 $demo 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.2
done
pid=$(pgrep -f "bin/wasmgate serve --config ${DEMO_CONFIG:-cmd/demo/wasmgate.yaml}" | head -1)
[[ -n $pid ]] || { cat "$log"; echo "memory.sh: no gateway process" >&2; exit 1; }

# rss_mib: the gateway's resident memory; heap_mib: Go heap in use and the
# plugins' linear memory, from /metrics.
rss_mib() { awk '/^VmRSS/ {printf "%.0f", $2/1024}' /proc/$pid/status; }
metric() {
  curl -fsS -H "Authorization: Bearer $WASMGATE_ADMIN_TOKEN" http://127.0.0.1:9901/metrics |
    awk -v m="$1" '$1 ~ "^"m"({|$)" {s += $2} END {printf "%.0f", s/1048576}'
}
report() {
  printf '%-28s RSS %5s MiB   Go heap in use %5s MiB   plugin linear memory %5s MiB\n' \
    "$1" "$(rss_mib)" "$(metric go_memstats_heap_inuse_bytes)" "$(metric wasmgate_plugin_memory_bytes)"
}
sleep 10
report "idle after start"

JWT='eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImRlbW8ifQ.eyJzdWIiOiIxIiwiaXNzIjoid2FzbWdhdGUtZGVtbyIsImF1ZCI6ImRlbW8tYXBpIiwiZXhwIjo0MTAyNDQ0ODAwLCJzY29wZSI6InJlYWQifQ.Lfm3wbUMh1edA2NQCSEsTrBf2U62kqslAtgw4r2FEDo'
lua=$(mktemp --suffix .lua)
cat >"$lua" <<LUA
local reqs = {
  {"/api/users/1", {}},
  {"/cached/users", {}},
  {"/v2/users/1", {}},
  {"/secure/me", {["Authorization"] = "Bearer $JWT"}},
  {"/rust/orders", {["X-Api-Key"] = "demo-partner-key-0123456789"}},
  {"/c/orders", {["X-Api-Key"] = "demo-partner-key-0123456789"}},
  {"/as/orders", {["X-Api-Key"] = "demo-partner-key-0123456789"}},
  {"/rust/users/1", {}}, {"/c/users/1", {}}, {"/as/users/1", {}},
  {"/api/home?user=1", {}}, {"/rust/home?user=1", {}}, {"/c/home?user=1", {}}, {"/as/home?user=1", {}},
}
local i = 0
request = function()
  i = i % #reqs + 1
  return wrk.format("GET", reqs[i][1], reqs[i][2])
end
LUA
wrk -t2 -c"$conns" -d"${secs}s" -s "$lua" http://127.0.0.1:8080 | sed -n '/Requests\/sec\|Non-2xx\|Socket errors/p'
report "after ${secs}s of load"
sleep "$idle_after"
report "idle ${idle_after}s after load"
