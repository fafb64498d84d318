//! `replay`: K changes are written while nobody listens; then clients resume with
//! `after` set to the cursor from before the first of them: events/s until caught up.

use std::{
    sync::{Arc, atomic::AtomicU64},
    time::Duration,
};

use serde_json::json;
use tokio::time::Instant;

use crate::{
    Ctx,
    cli::{MutationKind, ReplayArgs},
    fresh_collection,
    http::HttpClient,
    net::CpuMeter,
    report::{Phase, Report},
    subs::Subscribers,
    verify::{Verification, read_log},
    writer::{self, Pace},
};

/// Longest time spent writing the changes to replay.
const WRITE_LIMIT: Duration = Duration::from_secs(600);

/// Runs `replay`.
pub async fn run(ctx: &Arc<Ctx>, args: &ReplayArgs) -> anyhow::Result<Report> {
    let collection = fresh_collection("replay");
    let writers = writer::connect_all(
        ctx,
        args.writers.max(1),
        0,
        &collection,
        MutationKind::Create,
        args.pad_bytes,
    )
    .await?;
    let mut http = HttpClient::connect(Arc::clone(&ctx.endpoint), args.writers).await?;
    let start_cursor = http.head_cursor().await?;

    ctx.progress
        .stage(format!("replay: writing {} changes", args.changes));
    let start = Instant::now();
    let (writers, runs) = writer::run_all(
        ctx,
        writers,
        |_| Pace::Closed,
        0,
        start,
        start + WRITE_LIMIT,
        Arc::new(AtomicU64::new(args.changes)),
    )
    .await?;
    let write_time = start.elapsed();
    let (mutation, written, _) = writer::merge(&runs);
    let log = read_log(&mut http, &collection, &start_cursor).await?;

    ctx.progress
        .stage(format!("replay: {} clients catching up", args.clients));
    let resumed = Instant::now();
    let cpu = CpuMeter::start(ctx.server_pid);
    let subs = Subscribers::open(
        ctx,
        args.clients.max(1),
        args.clients.max(1),
        &collection,
        &start_cursor,
        256,
    )
    .await;
    let target = log.count * subs.subscriptions as u64;
    let deadline = resumed + Duration::from_secs_f64(args.drain_timeout);
    let mut first = None;
    while subs.delivered() < target && Instant::now() < deadline {
        if first.is_none() && subs.delivered() > 0 {
            first = Some(resumed.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let caught_up = resumed.elapsed();
    let cpu = cpu.finish();
    let delivered = subs.delivered();
    if delivered < target {
        ctx.error(format!(
            "replay did not finish within {}s: {delivered} of {target} events",
            args.drain_timeout
        ));
    }

    let mut phase = Phase::new(format!("{} missed changes", log.count));
    phase.cpu_use(&cpu);
    phase.cpu_per(&cpu, delivered, "replayed event");
    phase.metric("changes written", written as f64, "");
    phase.metric(
        "write rate (setup)",
        written as f64 / write_time.as_secs_f64(),
        "mut/s",
    );
    phase.metric("resuming clients", subs.subscriptions as f64, "");
    if let Some(f) = first {
        phase.metric("first event after", f.as_secs_f64() * 1e3, "ms");
    }
    phase.metric("caught up after", caught_up.as_secs_f64(), "s");
    phase.metric(
        "events/s (all clients)",
        delivered as f64 / caught_up.as_secs_f64(),
        "events/s",
    );
    phase.metric(
        "events/s per client",
        delivered as f64 / caught_up.as_secs_f64() / subs.subscriptions.max(1) as f64,
        "events/s",
    );
    phase.latency("mutation (setup)", &mutation);
    let trackers = subs.close().await;
    let verification = Verification::check(&log, &trackers, &writer::acked(&writers));
    Ok(Report {
        scenario: "replay",
        params: json!({
            "changes": args.changes, "writers": args.writers, "clients": args.clients,
            "pad_bytes": args.pad_bytes,
        }),
        phases: vec![phase],
        errors: 0,
        error_samples: Vec::new(),
        verification,
    })
}
