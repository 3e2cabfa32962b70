//! noop: a wasmgate plugin in Rust that does nothing: its on_request returns
//! Continue at once. The same plugin as plugins/noop (Go),
//! sdk/c/examples/noop.c and sdk/assemblyscript/examples/noop: it measures
//! the fixed cost of a Rust plugin in a route's chain (instance checkout, one
//! hook call) in the benchmarks (bench/: `wasmgate bench plugins`, `wasmgate
//! bench coldstart`), and is the smallest complete Rust plugin.
//!
//! It exports on_init and on_request only, so the response path skips it.
//!
//! Config: none; anything but an empty object (or null) is rejected.

use wasmgate::{HookError, Plugin};

struct Noop;

impl Plugin for Noop {
    fn init(config: &[u8]) -> Result<Self, HookError> {
        wasmgate::no_config(config)?;
        Ok(Noop)
    }
}

wasmgate::plugin!(Noop);
