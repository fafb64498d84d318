//! What a scenario measured: HDR latency summaries, rates, errors and the delivery
//! verification, printed as a table or as one JSON object.

use std::{
    fmt::Write as _,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::verify::Verification;

/// A latency histogram in microseconds, from 1 µs to one hour at 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Records `micros` (clamped into the histogram's range).
pub fn record(h: &mut Histogram<u64>, micros: i64) {
    let v = micros.clamp(1, 3_600_000_000) as u64;
    let _ = h.record(v);
}

/// A latency distribution summarised.
#[derive(Debug, Clone)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Percentiles and maximum, in microseconds.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Maximum.
    pub max: u64,
}

impl Latency {
    /// Summarises a histogram.
    pub fn of(h: &Histogram<u64>) -> Self {
        Self {
            count: h.len(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }

    fn json(&self) -> Value {
        let ms = |us: u64| us as f64 / 1000.0;
        json!({
            "count": self.count,
            "p50_ms": ms(self.p50),
            "p90_ms": ms(self.p90),
            "p99_ms": ms(self.p99),
            "p99_9_ms": ms(self.p999),
            "max_ms": ms(self.max),
        })
    }
}

/// Errors seen while running, with the first few messages kept.
#[derive(Debug, Default)]
pub struct Errors {
    count: AtomicU64,
    first: Mutex<Vec<String>>,
}

impl Errors {
    /// Counts an error.
    pub fn add(&self, message: impl std::fmt::Display) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
        if first.len() < 5 {
            let mut text = message.to_string();
            text.truncate(300);
            first.push(text);
        }
    }

    /// Errors so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The first messages.
    pub fn samples(&self) -> Vec<String> {
        self.first.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A figure of a phase.
#[derive(Debug, Clone)]
pub struct Metric {
    /// What it is.
    pub name: String,
    /// Its value.
    pub value: f64,
    /// Its unit.
    pub unit: &'static str,
}

/// One measured part of a scenario (a query kind, a subscriber count, a rate step).
#[derive(Debug, Clone, Default)]
pub struct Phase {
    /// Which part.
    pub name: String,
    /// Rates, counts and sizes.
    pub metrics: Vec<Metric>,
    /// Latency distributions by what they measure.
    pub latencies: Vec<(String, Latency)>,
}

impl Phase {
    /// Adds "server CPU" and "bench CPU" to the phase.
    pub fn cpu_use(&mut self, cpu: &crate::net::CpuUse) {
        if let Some(s) = cpu.server {
            self.metric("server CPU", s, "% of a core");
        }
        if let Some(b) = cpu.bench {
            self.metric("bench CPU", b, "% of a core");
        }
    }

    /// Adds "server CPU per `what`": the server's CPU time (utime + stime) over the
    /// phase divided by `count`, in microseconds. What a server spends per operation
    /// holds on any machine, unlike a throughput the load generator shares cores with.
    pub fn cpu_per(&mut self, cpu: &crate::net::CpuUse, count: u64, what: &str) {
        if let Some(seconds) = cpu.server_seconds
            && count > 0
        {
            self.metric(
                format!("server CPU per {what}"),
                seconds / count as f64 * 1e6,
                "µs",
            );
        }
    }

    /// A phase called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// Adds a figure.
    pub fn metric(&mut self, name: impl Into<String>, value: f64, unit: &'static str) {
        self.metrics.push(Metric {
            name: name.into(),
            value,
            unit,
        });
    }

    /// Adds a latency distribution (skipped when empty).
    pub fn latency(&mut self, name: impl Into<String>, h: &Histogram<u64>) {
        if !h.is_empty() {
            self.latencies.push((name.into(), Latency::of(h)));
        }
    }
}

/// Everything one scenario run found.
#[derive(Debug)]
pub struct Report {
    /// The subcommand.
    pub scenario: &'static str,
    /// Its knobs, as run.
    pub params: Value,
    /// The measured parts.
    pub phases: Vec<Phase>,
    /// Errors of requests, connections and subscriptions.
    pub errors: u64,
    /// The first error messages.
    pub error_samples: Vec<String>,
    /// Whether every expected event arrived exactly once and in order.
    pub verification: Verification,
}

impl Report {
    /// Why the run failed, if it did: lost, duplicated or reordered events, or errors.
    pub fn failure(&self) -> Option<String> {
        let mut why = Vec::new();
        if let Some(v) = self.verification.failure() {
            why.push(v);
        }
        if self.errors > 0 {
            why.push(format!("{} errors", self.errors));
        }
        (!why.is_empty()).then(|| why.join("; "))
    }

    /// The JSON object of this run.
    pub fn json(&self) -> Value {
        let phases: Vec<Value> = self
            .phases
            .iter()
            .map(|p| {
                let metrics: serde_json::Map<String, Value> = p
                    .metrics
                    .iter()
                    .map(|m| (m.name.clone(), json!({"value": m.value, "unit": m.unit})))
                    .collect();
                let latencies: serde_json::Map<String, Value> = p
                    .latencies
                    .iter()
                    .map(|(name, l)| (name.clone(), l.json()))
                    .collect();
                json!({"name": p.name, "metrics": metrics, "latency": latencies})
            })
            .collect();
        json!({
            "scenario": self.scenario,
            "params": self.params,
            "phases": phases,
            "errors": self.errors,
            "error_samples": self.error_samples,
            "verification": self.verification.json(),
            "ok": self.failure().is_none(),
        })
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "== {} {}", self.scenario, self.params);
        let name_width = self
            .phases
            .iter()
            .flat_map(|p| p.metrics.iter().map(|m| m.name.len()))
            .chain(
                self.phases
                    .iter()
                    .flat_map(|p| p.latencies.iter().map(|(n, _)| n.len())),
            )
            .max()
            .unwrap_or(10)
            .max(10);
        for phase in &self.phases {
            let _ = writeln!(out, "\n-- {}", phase.name);
            for m in &phase.metrics {
                let _ = writeln!(
                    out,
                    "  {:<name_width$}  {:>14} {}",
                    m.name,
                    format_value(m.value),
                    m.unit
                );
            }
            if !phase.latencies.is_empty() {
                let _ = writeln!(
                    out,
                    "  {:<name_width$}  {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                    "latency (ms)", "count", "p50", "p90", "p99", "p99.9", "max"
                );
                for (name, l) in &phase.latencies {
                    let ms = |us: u64| format!("{:.3}", us as f64 / 1000.0);
                    let _ = writeln!(
                        out,
                        "  {:<name_width$}  {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                        name,
                        l.count,
                        ms(l.p50),
                        ms(l.p90),
                        ms(l.p99),
                        ms(l.p999),
                        ms(l.max)
                    );
                }
            }
        }
        let _ = writeln!(out, "\nerrors: {}", self.errors);
        for e in &self.error_samples {
            let _ = writeln!(out, "  {e}");
        }
        let _ = writeln!(out, "verification: {}", self.verification.summary());
        match self.failure() {
            Some(why) => {
                let _ = writeln!(out, "FAILED: {why}");
            }
            None => {
                let _ = writeln!(out, "OK");
            }
        }
        out
    }
}

fn format_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}
