use std::sync::atomic::{AtomicI32, Ordering};

use crate::abi::{self, func};
use crate::error::{check, Error, Result};
use crate::sys;

/// A lazily defined host metric. Metrics are declared as statics, when no
/// hook runs, so the host call that defines one waits for the first record;
/// the id it returns is kept for the life of the instance, making every
/// later record one host call.
#[derive(Debug)]
struct Metric {
    name: &'static str,
    kind: i32,
    id: AtomicI32, // -1 until defined
}

impl Metric {
    const fn new(kind: i32, name: &'static str) -> Metric {
        Metric { name, kind, id: AtomicI32::new(-1) }
    }

    fn record(&self, v: f64) -> Result<()> {
        let mut id = self.id.load(Ordering::Relaxed);
        if id < 0 {
            if !abi::valid_metric_name(self.name) {
                return Err(Error::new(func::METRIC_DEFINE, abi::BAD_ARGUMENT));
            }
            id = check(func::METRIC_DEFINE, unsafe {
                sys::metric_define(self.kind, self.name.as_ptr(), self.name.len() as i32)
            })?;
            self.id.store(id, Ordering::Relaxed);
        }
        check(func::METRIC_RECORD, unsafe { sys::metric_record(id, v) }).map(drop)
    }
}

/// A monotonically increasing count, exported to Prometheus as
/// `wasmgate_plugin_counter_total{plugin="…", name="…"}`. Declare counters
/// as statics; recording works in `on_request` and `on_response`:
///
/// ```ignore
/// static DENIED: Counter = Counter::new("denied");
/// DENIED.inc()?;
/// ```
#[derive(Debug)]
pub struct Counter(Metric);

impl Counter {
    /// Declares a counter; `name` must match `[a-z][a-z0-9_]{0,62}` (checked
    /// on first use). It makes no host call.
    pub const fn new(name: &'static str) -> Counter {
        Counter(Metric::new(abi::METRIC_COUNTER, name))
    }

    /// Adds `v` (≥ 0, finite).
    pub fn add(&self, v: f64) -> Result<()> {
        if !(v >= 0.0) || v.is_infinite() {
            return Err(Error::new(func::METRIC_RECORD, abi::BAD_ARGUMENT));
        }
        self.0.record(v)
    }

    /// Adds 1.
    pub fn inc(&self) -> Result<()> {
        self.0.record(1.0)
    }
}

/// A value that goes up and down, exported as
/// `wasmgate_plugin_gauge{plugin, name}`.
#[derive(Debug)]
pub struct Gauge(Metric);

impl Gauge {
    /// Declares a gauge (see [`Counter::new`] for names).
    pub const fn new(name: &'static str) -> Gauge {
        Gauge(Metric::new(abi::METRIC_GAUGE, name))
    }

    /// Sets the gauge.
    pub fn set(&self, v: f64) -> Result<()> {
        self.0.record(v)
    }
}

/// Observes values (e.g. durations in seconds), exported as
/// `wasmgate_plugin_histogram{plugin, name}` with the gateway's buckets.
#[derive(Debug)]
pub struct Histogram(Metric);

impl Histogram {
    /// Declares a histogram (see [`Counter::new`] for names).
    pub const fn new(name: &'static str) -> Histogram {
        Histogram(Metric::new(abi::METRIC_HISTOGRAM, name))
    }

    /// Records one value.
    pub fn observe(&self, v: f64) -> Result<()> {
        self.0.record(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_before_the_host() {
        static BAD: Counter = Counter::new("Bad-Name");
        assert!(BAD.inc().unwrap_err().is_bad_argument());
        static OK: Counter = Counter::new("ok");
        assert!(OK.add(-1.0).unwrap_err().is_bad_argument());
        assert!(OK.add(f64::NAN).unwrap_err().is_bad_argument());
        assert_eq!(OK.inc().unwrap_err(), Error::new(func::METRIC_DEFINE, abi::NOT_ALLOWED));
    }
}
