// noop: a wasmgate plugin in AssemblyScript that does nothing: its
// onRequest returns Action.Continue at once. The same plugin as plugins/noop
// (Go) and sdk/c/examples/noop.c: it measures the fixed cost of an
// AssemblyScript plugin in a route's chain (instance checkout, one hook call,
// the collection the SDK runs after it) in the benchmarks (bench/: `wasmgate
// bench plugins`, `wasmgate bench coldstart`), and is the smallest complete
// AssemblyScript plugin.
//
// It exports on_init and on_request only (no on_response), so the response
// path skips it.
//
// Config: none; anything but an empty object is rejected (Plugin's default
// init).
//
// Build (from sdk/assemblyscript):
//   npx asc examples/noop/index.ts --config asconfig.json --target release -o build/noop.wasm

import { Plugin, register } from "../../assembly";
export * from "../../assembly/exports";

class Noop extends Plugin {}

register(new Noop());
