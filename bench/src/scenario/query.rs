//! `query`: `record(id:)` and a `records` page from N concurrent HTTP/1.1 keep-alive
//! clients, each with one request in flight: requests/s and latency.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use anyhow::{Context, bail};
use bytes::Bytes;
use serde_json::json;
use tokio::time::Instant;

use crate::{
    Ctx,
    cli::{QueryArgs, QueryKind},
    fresh_collection,
    http::{HttpClient, check_data},
    net::CpuMeter,
    report::{Phase, Report, histogram, record},
    verify::Verification,
};

const RECORD: &str =
    "query($id: UUID!) { record(id: $id) { id collection data version updatedAt } }";
const PAGE: &str = "query($c: String!, $n: Int!) { records(collection: $c, first: $n) { nodes { id data version updatedAt } pageInfo { hasNextPage endCursor } changeCursor } }";

/// Runs `query`.
pub async fn run(ctx: &Arc<Ctx>, args: &QueryArgs) -> anyhow::Result<Report> {
    let collection = fresh_collection("query");
    ctx.progress
        .stage(format!("query: creating {} records", args.records));
    let ids = seed(ctx, &collection, args.records.max(1)).await?;
    let mut phases = Vec::new();
    for kind in &args.kinds {
        let (name, bodies, expect, rows): (_, Vec<Bytes>, Vec<String>, _) = match kind {
            QueryKind::Record => (
                "record(id:)".to_owned(),
                ids.iter()
                    .map(|id| body(RECORD, json!({"id": id})))
                    .collect(),
                ids.clone(),
                1,
            ),
            QueryKind::Page => (
                format!("records(first: {})", args.page_size),
                vec![body(PAGE, json!({"c": collection, "n": args.page_size}))],
                vec!["changeCursor".to_owned()],
                args.page_size.min(ids.len()),
            ),
        };
        ctx.progress.stage(format!("query {name}"));
        let check = Check {
            expect: Arc::new(expect),
            rows,
        };
        phases.push(measure(ctx, args, name, Arc::new(bodies), check).await?);
    }
    Ok(Report {
        scenario: "query",
        params: json!({
            "clients": args.clients, "duration_s": args.duration, "warmup_s": args.warmup,
            "records": args.records, "page_size": args.page_size,
        }),
        phases,
        errors: 0,
        error_samples: Vec::new(),
        verification: Verification::default(),
    })
}

fn body(query: &str, variables: serde_json::Value) -> Bytes {
    Bytes::from(json!({"query": query, "variables": variables}).to_string())
}

/// Creates `n` records with 16 clients and returns their ids.
async fn seed(ctx: &Arc<Ctx>, collection: &str, n: usize) -> anyhow::Result<Vec<String>> {
    let mut tasks = Vec::new();
    let clients = 16.min(n);
    for c in 0..clients {
        let ctx = Arc::clone(ctx);
        let collection = collection.to_owned();
        let count = n / clients + usize::from(c < n % clients);
        tasks.push(tokio::spawn(async move {
            let mut http = HttpClient::connect(Arc::clone(&ctx.endpoint), c).await?;
            let mut ids = Vec::with_capacity(count);
            for i in 0..count {
                let d = http
                    .data(
                        "mutation($c: String!, $d: JSON!) { createRecord(input: {collection: $c, data: $d}) { id } }",
                        json!({"c": collection, "d": {"title": format!("record {c}-{i}"), "done": false, "rank": i}}),
                    )
                    .await?;
                ids.push(d["createRecord"]["id"].as_str().context("no id")?.to_owned());
                ctx.progress.ops.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(ids)
        }));
    }
    let mut ids = Vec::with_capacity(n);
    for t in tasks {
        ids.extend(t.await??);
    }
    Ok(ids)
}

/// What a correct response holds.
#[derive(Clone)]
struct Check {
    /// Text the data of the response to body `k` contains (`expect[k % len]`).
    expect: Arc<Vec<String>>,
    /// Records the data holds at least.
    rows: usize,
}

impl Check {
    fn verify(&self, k: usize, data: &str) -> Result<(), String> {
        let rows = data.matches("\"id\":").count();
        if data.contains(&self.expect[k % self.expect.len()]) && rows >= self.rows {
            Ok(())
        } else {
            Err(format!("unexpected data ({rows} records): {data:.200}"))
        }
    }
}

/// Runs one query kind: every client loops over `bodies` until the time is up.
/// A response counts as correct when it has data, no errors and passes `check`.
async fn measure(
    ctx: &Arc<Ctx>,
    args: &QueryArgs,
    name: String,
    bodies: Arc<Vec<Bytes>>,
    check: Check,
) -> anyhow::Result<Phase> {
    let start = Instant::now();
    let cpu = CpuMeter::start(ctx.server_pid);
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let until = measure_from + Duration::from_secs_f64(args.duration);
    let budget = Arc::new(std::sync::atomic::AtomicU64::new(args.max_requests));
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let ctx = Arc::clone(ctx);
        let (bodies, check, budget) = (Arc::clone(&bodies), check.clone(), Arc::clone(&budget));
        tasks.push(tokio::spawn(async move {
            let mut hist = histogram();
            let mut http = HttpClient::connect(Arc::clone(&ctx.endpoint), c).await?;
            let mut i = c;
            let mut last = None;
            loop {
                let now = Instant::now();
                if now >= until {
                    break;
                }
                let measured = now >= measure_from;
                if measured
                    && budget
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1))
                        .is_err()
                {
                    break;
                }
                let k = i % bodies.len();
                i += 1;
                let result = http.post(bodies[k].clone()).await;
                let done = Instant::now();
                let ok = match &result {
                    Ok(resp) => match check_data(resp) {
                        Ok(data) => check.verify(k, data),
                        Err(e) => Err(format!("{e:#}")),
                    },
                    Err(e) => Err(format!("{e:#}")),
                };
                match ok {
                    Ok(()) => {
                        ctx.progress.ops.fetch_add(1, Ordering::Relaxed);
                        if measured {
                            record(&mut hist, done.duration_since(now).as_micros() as i64);
                            last = Some(done);
                        }
                    }
                    Err(e) => {
                        ctx.error(format!("query: {e}"));
                        if result.is_err() {
                            http.reconnect().await?;
                        }
                    }
                }
            }
            anyhow::Ok((hist, last))
        }));
    }
    let mut hist = histogram();
    let mut end = measure_from;
    for t in tasks {
        let (h, last) = t.await??;
        hist.add(&h).ok();
        if let Some(l) = last {
            end = end.max(l);
        }
    }
    let cpu = cpu.finish();
    let seconds = end.duration_since(measure_from).as_secs_f64();
    if hist.is_empty() || seconds <= 0.0 {
        bail!("no request of {name} succeeded");
    }
    let mut phase = Phase::new(name);
    phase.cpu_use(&cpu);
    phase.cpu_per(&cpu, hist.len(), "request");
    phase.metric("clients", args.clients as f64, "");
    phase.metric("requests", hist.len() as f64, "");
    phase.metric("requests/s", hist.len() as f64 / seconds, "req/s");
    phase.latency("request", &hist);
    Ok(phase)
}
