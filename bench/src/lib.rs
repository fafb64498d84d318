//! recordsync-bench: a load generator that measures a running recordsync server (or any
//! server with the same GraphQL schema) through its public API only: HTTP POST to
//! `/graphql` and `graphql-transport-ws`.
//!
//! Every scenario reports latencies from HDR histograms, counts errors, and checks that
//! every subscription received every expected change exactly once and in log order;
//! a run that lost or duplicated an event fails, whatever its speed.
//!
//! # Layout
//! - [`cli`]: the command line, one subcommand per scenario.
//! - [`net`]: the endpoint, client sockets spread over 127.0.0.0/8, fd limit, RSS.
//! - [`http`]: a lean HTTP/1.1 keep-alive GraphQL client.
//! - [`ws`]: a minimal `graphql-transport-ws` client and event parser.
//! - [`writer`]: mutation clients, closed-loop or at a fixed rate.
//! - [`subs`]: subscriber connections that track and time every event.
//! - [`verify`]: exactly-once, in-order checks against the change log.
//! - [`report`]: histograms, the table and the JSON object.
//! - [`progress`]: the progress line on stderr.
//! - [`summary`]: medians over repeated runs.
//! - [`scenario`]: `query`, `mutate`, `fanout`, `idle`, `replay`.

pub mod cli;
pub mod http;
pub mod net;
pub mod progress;
pub mod report;
pub mod scenario;
pub mod subs;
pub mod summary;
pub mod verify;
pub mod writer;
pub mod ws;

use std::{
    sync::{Arc, atomic::Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

use crate::{
    cli::{Cli, Scenario},
    net::Endpoint,
    progress::Progress,
    report::{Errors, Report},
};

/// What every part of a run shares.
pub struct Ctx {
    /// The server.
    pub endpoint: Arc<Endpoint>,
    /// The progress line's counters.
    pub progress: Arc<Progress>,
    /// Errors seen.
    pub errors: Errors,
    /// The server's pid, to read its RSS.
    pub server_pid: Option<u32>,
}

impl Ctx {
    /// Counts an error.
    pub fn error(&self, message: impl std::fmt::Display) {
        self.errors.add(message);
        self.progress.errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// Wall-clock time in microseconds since the Unix epoch: the clock the server's
/// `changedAt` uses, so the two compare on one machine.
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// A collection name no earlier run used.
pub fn fresh_collection(scenario: &str) -> String {
    // The process id keeps two benches started together (one per server instance) from
    // picking the same collection.
    format!("bench-{scenario}-{}-{}", std::process::id(), now_us())
}

/// Runs the scenario `cli` names and returns its report.
pub async fn run(cli: &Cli) -> anyhow::Result<Report> {
    let fd_limit = net::raise_fd_limit(cli.nofile);
    let endpoint = Arc::new(Endpoint::resolve(&cli.url, cli.source_addrs).await?);
    let ctx = Arc::new(Ctx {
        endpoint,
        progress: Progress::start(),
        errors: Errors::default(),
        server_pid: cli.server_pid,
    });
    let result = match &cli.scenario {
        Scenario::Query(a) => scenario::query::run(&ctx, a).await,
        Scenario::Mutate(a) => scenario::mutate::run(&ctx, a).await,
        Scenario::Fanout(a) => scenario::fanout::run(&ctx, a).await,
        Scenario::Idle(a) => scenario::idle::run(&ctx, a, fd_limit).await,
        Scenario::Replay(a) => scenario::replay::run(&ctx, a).await,
        Scenario::Summarize(_) => Err(anyhow::anyhow!("summarize runs no scenario")),
    };
    ctx.progress.finish();
    let mut report = result?;
    report.errors = ctx.errors.count();
    report.error_samples = ctx.errors.samples();
    Ok(report)
}
