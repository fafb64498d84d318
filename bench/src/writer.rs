//! Writers: clients sending `createRecord` or `updateRecord`, one in flight each,
//! as fast as answered or at a fixed rate. Each write carries `w`, `n`, `t` and `s` in
//! its data so that subscribers can check and time it.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::time::Instant;

use crate::{
    Ctx,
    cli::MutationKind,
    http::{HttpClient, check_data},
    now_us,
    report::{histogram, record},
};

const CREATE: &str = "mutation($c: String!, $d: JSON!) { createRecord(input: {collection: $c, data: $d}) { id version } }";
const UPDATE: &str =
    "mutation($id: UUID!, $d: JSON!) { updateRecord(id: $id, data: $d) { id version } }";

/// How a writer paces its mutations.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// The next one as soon as the previous one is answered.
    Closed,
    /// One every `interval`, starting `offset` after the start; a late writer sends at
    /// once and never skips, so the achieved rate shows whether it kept up.
    Every {
        /// Time between two mutations of this writer.
        interval: Duration,
        /// This writer's phase, to spread writers over the interval.
        offset: Duration,
    },
}

/// One writing client and what it has done.
pub struct Writer {
    /// Its number, `w` in the data.
    pub w: u32,
    client: HttpClient,
    collection: String,
    kind: MutationKind,
    /// The record it updates (for `updateRecord`).
    target: Option<String>,
    /// Its last sequence number used.
    pub n: u64,
    /// Sequence numbers acknowledged by the server.
    pub acked: Vec<u64>,
    pad: String,
}

/// What one writer run measured.
pub struct Run {
    /// Latency of each mutation sent after the measured window opened, µs.
    pub latency: Histogram<u64>,
    /// Mutations answered inside the measured window.
    pub measured: u64,
    /// When its last mutation was answered.
    pub last_answer: Option<Instant>,
}

impl Writer {
    /// Connects writer `w` (client socket `index`) for `collection`. For updates it
    /// first creates the record it will update, with `n = 0`.
    pub async fn new(
        ctx: &Arc<Ctx>,
        w: u32,
        index: usize,
        collection: &str,
        kind: MutationKind,
        pad_bytes: usize,
    ) -> anyhow::Result<Self> {
        let client = HttpClient::connect(Arc::clone(&ctx.endpoint), index).await?;
        let mut writer = Self {
            w,
            client,
            collection: collection.to_owned(),
            kind,
            target: None,
            n: 0,
            acked: Vec::new(),
            pad: "x".repeat(pad_bytes),
        };
        if kind == MutationKind::Update {
            let d = writer
                .client
                .data(
                    CREATE,
                    json!({"c": collection, "d": {"w": w, "n": 0, "setup": true}}),
                )
                .await?;
            writer.target = d["createRecord"]["id"].as_str().map(str::to_owned);
        }
        Ok(writer)
    }

    fn body(&self, n: u64, step: u32) -> Bytes {
        let mut data = json!({"w": self.w, "n": n, "t": now_us(), "s": step});
        if !self.pad.is_empty() {
            data["pad"] = json!(self.pad);
        }
        let req = match (&self.kind, &self.target) {
            (MutationKind::Update, Some(id)) => {
                json!({"query": UPDATE, "variables": {"id": id, "d": data}})
            }
            _ => json!({"query": CREATE, "variables": {"c": self.collection, "d": data}}),
        };
        Bytes::from(req.to_string())
    }

    /// Writes from now until `until` (or until `budget` mutations have been claimed by
    /// all writers sharing it), paced by `pace`, tagging writes with `step`. Latencies
    /// and counts are kept only for mutations sent at or after `measure_from`.
    pub async fn run(
        &mut self,
        ctx: &Ctx,
        pace: Pace,
        step: u32,
        measure_from: Instant,
        until: Instant,
        budget: &AtomicU64,
    ) -> Run {
        let mut run = Run {
            latency: histogram(),
            measured: 0,
            last_answer: None,
        };
        let start = Instant::now();
        let mut k: u32 = 0;
        loop {
            if let Pace::Every { interval, offset } = pace {
                let at = start + offset + interval * k;
                k += 1;
                if at >= until {
                    break;
                }
                tokio::time::sleep_until(at).await;
            }
            if Instant::now() >= until {
                break;
            }
            if budget
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1))
                .is_err()
            {
                break;
            }
            self.n += 1;
            let n = self.n;
            let body = self.body(n, step);
            let sent = Instant::now();
            let result = self.client.post(body).await;
            let answered = Instant::now();
            let checked = match &result {
                Ok(resp) => check_data(resp).map(|_| ()),
                Err(e) => Err(anyhow::anyhow!("{e:#}")),
            };
            match checked {
                Ok(()) => {
                    self.acked.push(n);
                    ctx.progress.ops.fetch_add(1, Ordering::Relaxed);
                    if sent >= measure_from {
                        run.measured += 1;
                        record(
                            &mut run.latency,
                            answered.duration_since(sent).as_micros() as i64,
                        );
                    }
                    run.last_answer = Some(answered);
                }
                Err(e) => {
                    ctx.error(format!("mutation: {e:#}"));
                    if result.is_err() && self.client.reconnect().await.is_err() {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
        run
    }
}

/// A budget no run will exhaust.
pub fn unlimited() -> AtomicU64 {
    AtomicU64::new(u64::MAX)
}

/// Connects writers `0..n` (client sockets from `first_index`) concurrently.
pub async fn connect_all(
    ctx: &Arc<Ctx>,
    n: usize,
    first_index: usize,
    collection: &str,
    kind: MutationKind,
    pad_bytes: usize,
) -> anyhow::Result<Vec<Writer>> {
    let tasks: Vec<_> = (0..n)
        .map(|w| {
            let ctx = Arc::clone(ctx);
            let collection = collection.to_owned();
            tokio::spawn(async move {
                Writer::new(
                    &ctx,
                    w as u32,
                    first_index + w,
                    &collection,
                    kind,
                    pad_bytes,
                )
                .await
            })
        })
        .collect();
    let mut writers = Vec::with_capacity(n);
    for t in tasks {
        writers.push(t.await??);
    }
    Ok(writers)
}

/// Runs every writer at once (writer `i` paced by `pace(i)`) and returns them with
/// what each measured, in the same order.
pub async fn run_all(
    ctx: &Arc<Ctx>,
    writers: Vec<Writer>,
    pace: impl Fn(usize) -> Pace,
    step: u32,
    measure_from: Instant,
    until: Instant,
    budget: Arc<AtomicU64>,
) -> anyhow::Result<(Vec<Writer>, Vec<Run>)> {
    let tasks: Vec<_> = writers
        .into_iter()
        .enumerate()
        .map(|(i, mut writer)| {
            let ctx = Arc::clone(ctx);
            let budget = Arc::clone(&budget);
            let pace = pace(i);
            tokio::spawn(async move {
                let run = writer
                    .run(&ctx, pace, step, measure_from, until, &budget)
                    .await;
                (writer, run)
            })
        })
        .collect();
    let mut writers = Vec::with_capacity(tasks.len());
    let mut runs = Vec::with_capacity(tasks.len());
    for t in tasks {
        let (w, r) = t.await?;
        writers.push(w);
        runs.push(r);
    }
    Ok((writers, runs))
}

/// Every writer's acknowledged sequence numbers, for verification.
pub fn acked(writers: &[Writer]) -> Vec<(u32, Vec<u64>)> {
    writers.iter().map(|w| (w.w, w.acked.clone())).collect()
}

/// The runs' latencies merged, the mutations they measured, and the last answer.
pub fn merge(runs: &[Run]) -> (Histogram<u64>, u64, Option<Instant>) {
    let mut h = histogram();
    let mut measured = 0;
    let mut last: Option<Instant> = None;
    for r in runs {
        let _ = h.add(&r.latency);
        measured += r.measured;
        last = match (last, r.last_answer) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
    (h, measured, last)
}
