// Metrics, exported to Prometheus as wasmgate_plugin_counter_total,
// wasmgate_plugin_gauge and wasmgate_plugin_histogram {plugin, name}.
// Define in any hook (at most 32 per plugin), record in onRequest and
// onResponse.

import * as host from "./host";
import { Code, MetricKind, validMetricName } from "./abi";
import { record } from "./errors";
import { arg1, ptr0, len0 } from "./buffer";

/** Defines (or finds) a metric and returns its id, or a negative code. */
export function defineMetric(kind: MetricKind, name: string): i32 {
  arg1(name);
  return record("metric_define", host.metric_define(kind, ptr0, len0));
}

/** Records a value for the metric id (counter: adds, gauge: sets,
 *  histogram: observes). */
export function recordMetric(id: i32, value: f64): i32 {
  return record("metric_record", host.metric_record(id, value));
}

/** A metric defined on its first record, so that one declared at the top
 *  level (during _initialize) costs no host call until used; the id is
 *  then kept for the life of the instance. */
export class Metric {
  private id: i32 = -1;

  constructor(public readonly kind: MetricKind, public readonly name: string) {}

  record(value: f64): i32 {
    if (this.id < 0) {
      if (!validMetricName(this.name)) return record("metric_define", Code.BadArgument);
      const id = defineMetric(this.kind, this.name);
      if (id < 0) return id;
      this.id = id;
    }
    return recordMetric(this.id, value);
  }
}

/** A monotonically increasing count. */
export class Counter extends Metric {
  constructor(name: string) {
    super(MetricKind.Counter, name);
  }

  /** Adds v (>= 0 and finite). */
  add(v: f64): i32 {
    if (!(v >= 0) || !isFinite(v)) return record("metric_record", Code.BadArgument);
    return this.record(v);
  }

  /** Adds 1. */
  inc(): i32 {
    return this.record(1);
  }
}

/** A value that goes up and down. */
export class Gauge extends Metric {
  constructor(name: string) {
    super(MetricKind.Gauge, name);
  }

  set(v: f64): i32 {
    return this.record(v);
  }
}

/** Observed values (e.g. durations in seconds), with the gateway's buckets. */
export class Histogram extends Metric {
  constructor(name: string) {
    super(MetricKind.Histogram, name);
  }

  observe(v: f64): i32 {
    return this.record(v);
  }
}
