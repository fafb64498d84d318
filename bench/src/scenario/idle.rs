//! `idle`: C connections with one subscription each, held idle: server RSS per
//! connection (from `/proc/<pid>/status` with `--server-pid`), then one change
//! broadcast to all and the time until every connection has it.

use std::{
    sync::{Arc, atomic::AtomicU64},
    time::Duration,
};

use serde_json::json;
use tokio::time::Instant;

use crate::{
    Ctx,
    cli::{IdleArgs, MutationKind},
    fresh_collection,
    http::HttpClient,
    net::{own_rss_kib, rss_kib},
    report::{Phase, Report},
    subs::Subscribers,
    verify::{Verification, read_log},
    writer::{self, Pace},
};

/// Runs `idle`; `fd_limit` is this process's open-file limit.
pub async fn run(ctx: &Arc<Ctx>, args: &IdleArgs, fd_limit: u64) -> anyhow::Result<Report> {
    let collection = fresh_collection("idle");
    let mut writers = writer::connect_all(ctx, 1, 0, &collection, MutationKind::Create, 0).await?;
    let mut http = HttpClient::connect(Arc::clone(&ctx.endpoint), 1).await?;
    let start_cursor = http.head_cursor().await?;
    let rss_before = ctx.server_pid.and_then(rss_kib);
    let client_before = own_rss_kib();

    ctx.progress
        .stage(format!("idle: opening {} connections", args.connections));
    let opening = Instant::now();
    let subs = Subscribers::open(
        ctx,
        args.connections,
        args.connections,
        &collection,
        &start_cursor,
        args.connect_concurrency,
    )
    .await;
    let open_time = opening.elapsed();
    ctx.progress
        .stage("idle: first change (every subscription live)");
    let barrier = subs
        .barrier(
            &mut http,
            &collection,
            Duration::from_secs_f64(args.drain_timeout),
        )
        .await;

    ctx.progress
        .stage(format!("idle: holding {} connections", subs.connected));
    tokio::time::sleep(Duration::from_secs_f64(args.hold)).await;
    let rss_held = ctx.server_pid.and_then(rss_kib);
    let client_held = own_rss_kib();

    ctx.progress.stage("idle: broadcasting one change");
    let before = subs.delivered();
    let start = Instant::now();
    let (w, runs) = writer::run_all(
        ctx,
        writers,
        |_| Pace::Closed,
        0,
        start,
        start + Duration::from_secs_f64(args.drain_timeout),
        Arc::new(AtomicU64::new(1)),
    )
    .await?;
    writers = w;
    let (mutation, written, _) = writer::merge(&runs);
    if written == 0 {
        ctx.error("the broadcast mutation was not acknowledged");
    }
    let target = before + written * subs.subscriptions as u64;
    let all = subs
        .wait_delivered(target, Duration::from_secs_f64(args.drain_timeout))
        .await;
    let broadcast_time = start.elapsed();

    let mut phase = Phase::new(format!("{} connections", args.connections));
    phase.metric("connections requested", args.connections as f64, "");
    phase.metric("connections held", subs.connected as f64, "");
    phase.metric("client open-file limit", fd_limit as f64, "");
    phase.metric("time to open and subscribe", open_time.as_secs_f64(), "s");
    if let Ok(b) = &barrier {
        phase.metric("first change reached all", b.as_secs_f64() * 1e3, "ms");
    }
    if let (Some(before), Some(held)) = (rss_before, rss_held) {
        phase.metric("server RSS before", before as f64, "KiB");
        phase.metric("server RSS holding", held as f64, "KiB");
        phase.metric(
            "server RSS per connection",
            held.saturating_sub(before) as f64 / subs.connected.max(1) as f64,
            "KiB",
        );
    }
    if let (Some(before), Some(held)) = (client_before, client_held) {
        phase.metric(
            "bench RSS per connection",
            held.saturating_sub(before) as f64 / subs.connected.max(1) as f64,
            "KiB",
        );
    }
    if all {
        phase.metric(
            "broadcast reached all",
            broadcast_time.as_secs_f64() * 1e3,
            "ms",
        );
    } else {
        ctx.error(format!(
            "the broadcast did not reach every connection within {}s",
            args.drain_timeout
        ));
    }
    phase.latency("mutation", &mutation);
    let step = subs.shared.step(0);
    phase.latency(
        "commit-to-receipt",
        &step
            .commit_to_receipt
            .lock()
            .unwrap_or_else(|e| e.into_inner()),
    );
    phase.latency(
        "send-to-receipt",
        &step
            .send_to_receipt
            .lock()
            .unwrap_or_else(|e| e.into_inner()),
    );
    if let Err(e) = barrier {
        ctx.error(format!("{e:#}"));
    }

    ctx.progress.stage("idle: checking deliveries");
    let log = read_log(&mut http, &collection, &start_cursor).await?;
    let trackers = subs.close().await;
    let verification = Verification::check(&log, &trackers, &writer::acked(&writers));
    Ok(Report {
        scenario: "idle",
        params: json!({
            "connections": args.connections, "hold_s": args.hold,
            "connect_concurrency": args.connect_concurrency,
        }),
        phases: vec![phase],
        errors: 0,
        error_samples: Vec::new(),
        verification,
    })
}
