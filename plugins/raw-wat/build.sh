#!/bin/sh
# Builds plugin.wasm from plugin.wat with wabt's wat2wasm (Debian: wabt).
# --debug-names keeps function names, so a trap's stack trace names them.
set -eu
cd "$(dirname "$0")"
exec wat2wasm --debug-names plugin.wat -o plugin.wasm
