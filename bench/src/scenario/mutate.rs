//! `mutate`: `createRecord` / `updateRecord` from N concurrent clients as fast as they
//! are answered, with no subscribers and with S subscribers on the collection:
//! mutations/s and latency, plus the subscribers' delivery latency.

use std::{
    sync::{Arc, atomic::AtomicU64},
    time::Duration,
};

use serde_json::json;
use tokio::time::Instant;

use crate::{
    Ctx,
    cli::{MutateArgs, MutationKind},
    fresh_collection,
    http::HttpClient,
    net::CpuMeter,
    report::{Phase, Report},
    subs::Subscribers,
    verify::{Verification, read_log},
    writer::{self, Pace},
};

/// Runs `mutate`.
pub async fn run(ctx: &Arc<Ctx>, args: &MutateArgs) -> anyhow::Result<Report> {
    let mut phases = Vec::new();
    let mut verification = Verification::default();
    for &subscribers in &args.subscribers {
        for &op in &args.ops {
            let (phase, v) = phase(ctx, args, op, subscribers).await?;
            phases.push(phase);
            verification.merge(v);
        }
    }
    Ok(Report {
        scenario: "mutate",
        params: json!({
            "clients": args.clients, "duration_s": args.duration, "warmup_s": args.warmup,
            "subscribers": args.subscribers, "subs_per_conn": args.subs_per_conn,
            "pad_bytes": args.pad_bytes,
        }),
        phases,
        errors: 0,
        error_samples: Vec::new(),
        verification,
    })
}

async fn phase(
    ctx: &Arc<Ctx>,
    args: &MutateArgs,
    op: MutationKind,
    subscribers: usize,
) -> anyhow::Result<(Phase, Verification)> {
    let op_name = match op {
        MutationKind::Create => "createRecord",
        MutationKind::Update => "updateRecord",
    };
    let name = format!("{op_name}, {subscribers} subscribers");
    ctx.progress.stage(format!("mutate {name}: setting up"));
    let collection = fresh_collection("mutate");
    let writers =
        writer::connect_all(ctx, args.clients, 0, &collection, op, args.pad_bytes).await?;
    let mut http = HttpClient::connect(Arc::clone(&ctx.endpoint), args.clients).await?;
    let start_cursor = http.head_cursor().await?;
    let subs = if subscribers > 0 {
        let conns = subscribers.div_ceil(args.subs_per_conn.max(1));
        let subs =
            Subscribers::open(ctx, conns, subscribers, &collection, &start_cursor, 256).await;
        subs.barrier(&mut http, &collection, Duration::from_secs(60))
            .await?;
        Some(subs)
    } else {
        None
    };

    ctx.progress.stage(format!("mutate {name}"));
    let delivered_before = subs.as_ref().map_or(0, Subscribers::delivered);
    let start = Instant::now();
    let cpu = CpuMeter::start(ctx.server_pid);
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let until = measure_from + Duration::from_secs_f64(args.duration);
    let budget = Arc::new(AtomicU64::new(args.max_mutations));
    let (writers, runs) = writer::run_all(
        ctx,
        writers,
        |_| Pace::Closed,
        0,
        measure_from,
        until,
        budget,
    )
    .await?;
    let cpu = cpu.finish();
    let (latency, measured, last) = writer::merge(&runs);
    let end = last.unwrap_or(until).max(measure_from);
    let seconds = end.duration_since(measure_from).as_secs_f64().max(1e-9);
    let delivered_during = subs.as_ref().map_or(0, Subscribers::delivered) - delivered_before;

    ctx.progress
        .stage(format!("mutate {name}: checking deliveries"));
    let log = read_log(&mut http, &collection, &start_cursor).await?;
    let mut phase = Phase::new(name);
    phase.cpu_use(&cpu);
    phase.cpu_per(&cpu, measured, "mutation");
    phase.metric("clients", args.clients as f64, "");
    phase.metric("mutations measured", measured as f64, "");
    phase.metric("mutations/s", measured as f64 / seconds, "mut/s");
    phase.latency("mutation", &latency);
    let trackers = match subs {
        Some(subs) => {
            let target = subs.subscriptions as u64 * log.count;
            let drained = subs
                .wait_delivered(target, Duration::from_secs_f64(args.drain_timeout))
                .await;
            let drain = Instant::now().duration_since(end);
            phase.metric("subscriptions", subs.subscriptions as f64, "");
            phase.metric("connections", subs.connected as f64, "");
            phase.metric(
                "deliveries/s while writing",
                delivered_during as f64 / start.elapsed().min(end - start).as_secs_f64().max(1e-9),
                "events/s",
            );
            if drained {
                phase.metric(
                    "all delivered after last write",
                    drain.as_secs_f64() * 1e3,
                    "ms",
                );
            }
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
            subs.close().await
        }
        None => Vec::new(),
    };
    let verification = Verification::check(&log, &trackers, &writer::acked(&writers));
    Ok((phase, verification))
}
