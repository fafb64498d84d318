//! `fanout`: S subscriptions (over C connections) on one collection, W writers at a
//! fixed total rate R: commit-to-receipt latency of every delivery and deliveries/s.
//! With `--ceiling` the rate grows step by step until a step is not sustained: the
//! writers fell behind the rate, or the deliveries of a step were not all received
//! within `--grace-ms` of the step's scheduled end.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use serde_json::json;
use tokio::time::Instant;

use crate::{
    Ctx,
    cli::{FanoutArgs, MutationKind},
    fresh_collection,
    http::HttpClient,
    net::CpuMeter,
    now_us,
    report::{Phase, Report},
    subs::{MAX_STEPS, Subscribers},
    verify::{Verification, read_log},
    writer::{self, Pace},
};

/// Runs `fanout`.
pub async fn run(ctx: &Arc<Ctx>, args: &FanoutArgs) -> anyhow::Result<Report> {
    let collection = fresh_collection("fanout");
    ctx.progress.stage("fanout: connecting");
    let writers_n = args.writers.max(1);
    let mut writers = writer::connect_all(
        ctx,
        writers_n,
        0,
        &collection,
        MutationKind::Create,
        args.pad_bytes,
    )
    .await?;
    let mut http = HttpClient::connect(Arc::clone(&ctx.endpoint), writers_n).await?;
    let start_cursor = http.head_cursor().await?;
    let subs = Subscribers::open(
        ctx,
        args.connections,
        args.subscribers.max(1),
        &collection,
        &start_cursor,
        256,
    )
    .await;
    subs.barrier(&mut http, &collection, Duration::from_secs(60))
        .await?;
    let per_event = subs.subscriptions as u64;

    let mut phases = Vec::new();
    let mut rate = args.rate;
    let mut best: Option<(f64, f64)> = None;
    let steps = if args.ceiling {
        args.max_steps.min(MAX_STEPS)
    } else {
        1
    };
    for step in 0..steps {
        if rate > args.max_rate {
            break;
        }
        ctx.progress.stage(format!("fanout {rate:.0} mutations/s"));
        let before = subs.delivered();
        let interval = Duration::from_secs_f64(writers_n as f64 / rate);
        let start = Instant::now();
        let cpu = CpuMeter::start(ctx.server_pid);
        let start_us = now_us();
        let until = start + Duration::from_secs_f64(args.duration);
        let (w, runs) = writer::run_all(
            ctx,
            writers,
            |i| Pace::Every {
                interval,
                offset: interval.mul_f64(i as f64 / writers_n as f64),
            },
            step as u32,
            start,
            until,
            Arc::new(writer::unlimited()),
        )
        .await?;
        writers = w;
        let (latency, written, _) = writer::merge(&runs);
        let achieved = written as f64 / args.duration;
        // Every write of this step must reach every subscription within the grace
        // period after the step's scheduled end: a server that answers or delivers
        // late is behind the rate even if it catches up later.
        let target = before + written * per_event;
        let grace = Duration::from_millis(args.grace_ms);
        let in_time = subs
            .wait_delivered(
                target,
                (until + grace).saturating_duration_since(Instant::now()),
            )
            .await;
        if !in_time {
            ctx.progress
                .stage(format!("fanout {rate:.0} mutations/s: draining"));
            subs.wait_delivered(target, Duration::from_secs_f64(args.drain_timeout))
                .await;
        }
        let cpu = cpu.finish();
        let timing = subs.shared.step(step);
        let delivered = timing.count.load(Ordering::Relaxed);
        let last_receipt = timing.last_receipt_us.load(Ordering::Relaxed);
        let span = ((last_receipt - start_us) as f64 / 1e6).max(args.duration);
        let sustained = in_time && achieved >= 0.95 * rate;
        let mut phase = Phase::new(format!("{rate:.0} mutations/s"));
        phase.cpu_use(&cpu);
        phase.cpu_per(&cpu, delivered, "delivered event");
        phase.cpu_per(&cpu, written, "mutation");
        phase.metric("subscriptions", subs.subscriptions as f64, "");
        phase.metric("connections", subs.connected as f64, "");
        phase.metric("target rate", rate, "mut/s");
        phase.metric("achieved rate", achieved, "mut/s");
        phase.metric("deliveries", delivered as f64, "");
        phase.metric("deliveries/s", delivered as f64 / span, "events/s");
        phase.metric("sustained", if sustained { 1.0 } else { 0.0 }, "bool");
        phase.latency("mutation", &latency);
        phase.latency(
            "commit-to-receipt",
            &timing
                .commit_to_receipt
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        phase.latency(
            "send-to-receipt",
            &timing
                .send_to_receipt
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        phases.push(phase);
        if !sustained {
            break;
        }
        let per_s = delivered as f64 / span;
        if best.is_none_or(|(_, d)| per_s > d) {
            best = Some((rate, per_s));
        }
        rate *= args.ramp;
    }

    ctx.progress.stage("fanout: checking deliveries");
    let log = read_log(&mut http, &collection, &start_cursor).await?;
    subs.wait_delivered(
        per_event * log.count,
        Duration::from_secs_f64(args.drain_timeout),
    )
    .await;
    let trackers = subs.close().await;
    let verification = Verification::check(&log, &trackers, &writer::acked(&writers));
    if args.ceiling {
        let mut summary = Phase::new("ceiling");
        let (r, d) = best.unwrap_or((0.0, 0.0));
        summary.metric("highest sustained rate", r, "mut/s");
        summary.metric("deliveries/s at that rate", d, "events/s");
        phases.push(summary);
    }
    Ok(Report {
        scenario: "fanout",
        params: json!({
            "subscribers": args.subscribers, "connections": args.connections,
            "rate": args.rate, "writers": writers_n, "duration_s": args.duration,
            "ceiling": args.ceiling, "ramp": args.ramp, "grace_ms": args.grace_ms,
            "pad_bytes": args.pad_bytes,
        }),
        phases,
        errors: 0,
        error_samples: Vec::new(),
        verification,
    })
}
