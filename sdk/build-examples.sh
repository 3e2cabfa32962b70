#!/usr/bin/env bash
# Builds the example plugins of the Rust, C and AssemblyScript SDKs, for the
# make run demo (cmd/demo/wasmgate.yaml names these paths):
#
#   Rust            sdk/rust/target/wasm32-wasi/release/examples/NAME.wasm
#   C               bin/examples/c/NAME.wasm
#   AssemblyScript  sdk/assemblyscript/build/NAME.wasm
#
# with the build lines of each SDK's README: Debian's /usr/bin/cargo and
# /usr/bin/rustc (a rustup toolchain earlier on PATH has no wasm32-wasi
# target), clang --target=wasm32-wasi -mexec-model=reactor, and the
# AssemblyScript compiler pinned in sdk/assemblyscript/package-lock.json.
# cargo and asc rebuild only what changed; the C examples are a second each.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

echo "rust examples (cargo)"
(cd sdk/rust && RUSTC=/usr/bin/rustc /usr/bin/cargo build --offline --quiet --release --target wasm32-wasi --examples)

echo "c examples (clang)"
mkdir -p bin/examples/c
for src in sdk/c/examples/*.c; do
	name=$(basename "$src" .c)
	out=bin/examples/c/$name.wasm
	if [[ ! -f $out || $src -nt $out || sdk/c/wasmgate.c -nt $out || sdk/c/wasmgate.h -nt $out ]]; then
		clang --target=wasm32-wasi -mexec-model=reactor -O2 -Wl,--strip-debug -I sdk/c -o "$out" "$src" sdk/c/wasmgate.c
	fi
done

echo "assemblyscript examples (asc)"
cd sdk/assemblyscript
if [[ ! -x node_modules/.bin/asc ]]; then
	npm ci --no-audit --no-fund --prefer-offline
fi
mkdir -p build
for dir in examples/*/; do
	name=$(basename "$dir")
	npx --no asc "$dir/index.ts" --config asconfig.json --target release -o "build/$name.wasm"
done
