//! `summarize`: medians over repeated runs, from the JSON objects of `--json` or
//! `--json-out`. Runs are grouped by scenario and knobs; each figure is shown as the
//! median with the lowest and highest run beside it.

use std::{fmt::Write as _, path::PathBuf};

use anyhow::Context;
use serde_json::Value;

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

fn spread(mut values: Vec<f64>) -> String {
    let Some(m) = median(&mut values) else {
        return "-".into();
    };
    let (lo, hi) = (values[0], values[values.len() - 1]);
    format!("{} ({} .. {})", fmt(m), fmt(lo), fmt(hi))
}

fn fmt(v: f64) -> String {
    if v.abs() >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// Reads every JSON line of `paths` and returns the medians as text.
pub fn summarize(paths: &[PathBuf]) -> anyhow::Result<String> {
    let mut groups: Vec<(String, Vec<Value>)> = Vec::new();
    for path in paths {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let run: Value = serde_json::from_str(line)
                .with_context(|| format!("{}: not a JSON object per line", path.display()))?;
            let key = format!(
                "{} {}",
                run["scenario"].as_str().unwrap_or("?"),
                run["params"]
            );
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, runs)) => runs.push(run),
                None => groups.push((key, vec![run])),
            }
        }
    }
    let mut out = String::new();
    for (key, runs) in &groups {
        let ok = runs.iter().filter(|r| r["ok"] == Value::Bool(true)).count();
        let _ = writeln!(
            out,
            "== {key}\n   {} runs, {ok} ok; median (lowest .. highest)",
            runs.len()
        );
        let mut phase_names: Vec<&str> = Vec::new();
        for r in runs {
            for p in r["phases"].as_array().into_iter().flatten() {
                if let Some(name) = p["name"].as_str()
                    && !phase_names.contains(&name)
                {
                    phase_names.push(name);
                }
            }
        }
        for name in phase_names {
            let phases: Vec<&Value> = runs
                .iter()
                .filter_map(|r| {
                    r["phases"]
                        .as_array()?
                        .iter()
                        .find(|p| p["name"].as_str() == Some(name))
                })
                .collect();
            let _ = writeln!(out, "-- {name} ({} runs)", phases.len());
            let metric_names: Vec<String> = phases[0]["metrics"]
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            for m in metric_names {
                let values: Vec<f64> = phases
                    .iter()
                    .filter_map(|p| p["metrics"][&m]["value"].as_f64())
                    .collect();
                let unit = phases[0]["metrics"][&m]["unit"].as_str().unwrap_or("");
                let _ = writeln!(out, "  {m:<34} {} {unit}", spread(values));
            }
            let latency_names: Vec<String> = phases[0]["latency"]
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            for l in latency_names {
                for q in ["p50_ms", "p90_ms", "p99_ms", "p99_9_ms", "max_ms"] {
                    let values: Vec<f64> = phases
                        .iter()
                        .filter_map(|p| p["latency"][&l][q].as_f64())
                        .collect();
                    let _ = writeln!(out, "  {:<34} {} ms", format!("{l} {q}"), spread(values));
                }
            }
        }
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }
}
