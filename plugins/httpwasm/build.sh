#!/bin/sh
# Copies the unmodified http-wasm guest the demo runs, router.wasm, from the
# module http-wasm-host-go v0.7.0 (go.mod pins it; its examples/router.wat
# is the source): /host/... goes on to the upstream without /host, any other
# path is answered "hello world" by the guest itself.
set -eu
cd "$(dirname "$0")"
src=$(cd ../.. && "${GO:-go}" mod download -json github.com/http-wasm/http-wasm-host-go | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
if [ -z "$src" ] || [ ! -f "$src/examples/router.wasm" ]; then
	echo "plugins/httpwasm: http-wasm-host-go is not in the Go module cache (go mod download)" >&2
	exit 1
fi
cp "$src/examples/router.wasm" router.wasm.tmp
chmod u+w router.wasm.tmp
mv router.wasm.tmp router.wasm
echo "plugins/httpwasm: router.wasm (http-wasm-host-go examples, unmodified)"

# The benchmark's pair: one header plugin written against each ABI.
for w in header header-native; do
	wat2wasm --debug-names "$w.wat" -o "$w.wasm"
done
echo "plugins/httpwasm: header.wasm, header-native.wasm (wasmgate bench plugins -routes abi-native,abi-httpwasm)"
