//! The command line: global options and one subcommand per scenario with its knobs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Measures a running recordsync (or any server with the same GraphQL schema) through
/// its public API: HTTP POST to `/graphql` and `graphql-transport-ws`.
#[derive(Debug, Parser)]
#[command(name = "recordsync-bench", version)]
pub struct Cli {
    /// The server's GraphQL endpoint; the WebSocket URL is the same with `ws://`.
    #[arg(long, global = true, default_value = "http://127.0.0.1:8000/graphql")]
    pub url: String,
    /// The server's process id: its RSS is read from `/proc/<pid>/status`.
    #[arg(long, global = true)]
    pub server_pid: Option<u32>,
    /// Print one JSON object per scenario instead of the table.
    #[arg(long, global = true)]
    pub json: bool,
    /// Client sockets are bound to this many source addresses from 127.0.1.1 upwards
    /// (loopback servers only), so each address needs few ephemeral ports.
    #[arg(long, global = true, default_value_t = 256)]
    pub source_addrs: u32,
    /// Raise the open-file limit to this (the hard limit too, when allowed).
    #[arg(long, global = true, default_value_t = 200_000)]
    pub nofile: u64,
    /// Also append the JSON object to this file.
    #[arg(long, global = true)]
    pub json_out: Option<PathBuf>,
    /// The scenario.
    #[command(subcommand)]
    pub scenario: Scenario,
}

/// One scenario per subcommand.
#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// `record(id:)` and a `records` page from N concurrent HTTP/1.1 keep-alive clients.
    Query(QueryArgs),
    /// `createRecord` / `updateRecord` from N concurrent clients, with and without
    /// subscribers on the collection.
    Mutate(MutateArgs),
    /// S subscribers on one collection, writers at a fixed rate: commit-to-receipt
    /// latency per delivery, and (with `--ceiling`) the highest rate sustained.
    Fanout(FanoutArgs),
    /// C idle connections with one subscription each: server RSS per connection, then
    /// one change broadcast to all.
    Idle(IdleArgs),
    /// A client resumes with `after` K changes behind: events/s until caught up.
    Replay(ReplayArgs),
    /// Medians over repeated runs from `--json` / `--json-out` output (talks to no
    /// server).
    Summarize(SummarizeArgs),
}

/// Knobs of `summarize`.
#[derive(Debug, Args)]
pub struct SummarizeArgs {
    /// Files of JSON objects, one per line.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Knobs of `query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Concurrent clients, each one keep-alive connection with one request in flight.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Seconds measured per query kind.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds run before measuring, per query kind.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Records created first (and read by id, round-robin).
    #[arg(long, default_value_t = 1000)]
    pub records: usize,
    /// The `records` page size.
    #[arg(long, default_value_t = 50)]
    pub page_size: usize,
    /// Stop a query kind after this many requests even if time is left.
    #[arg(long, default_value_t = 2_000_000)]
    pub max_requests: u64,
    /// Which query kinds to run.
    #[arg(long, value_delimiter = ',', default_value = "record,page")]
    pub kinds: Vec<QueryKind>,
}

/// A query measured by `query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QueryKind {
    /// `record(id:)`.
    Record,
    /// A `records` page.
    Page,
}

/// The mutation a writer sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MutationKind {
    /// `createRecord`: a new record every time.
    Create,
    /// `updateRecord`: each client replaces the data of its own record.
    Update,
}

/// Knobs of `mutate`.
#[derive(Debug, Args)]
pub struct MutateArgs {
    /// Concurrent writing clients, one mutation in flight each.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Seconds measured per phase.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Seconds written before measuring, per phase.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Subscriber counts, one phase each (0 means none attached).
    #[arg(long, value_delimiter = ',', default_value = "0,1000")]
    pub subscribers: Vec<usize>,
    /// Subscribers per WebSocket connection.
    #[arg(long, default_value_t = 10)]
    pub subs_per_conn: usize,
    /// Mutations to measure, one phase each.
    #[arg(long, value_delimiter = ',', default_value = "create,update")]
    pub ops: Vec<MutationKind>,
    /// Extra bytes of padding in each record's data.
    #[arg(long, default_value_t = 0)]
    pub pad_bytes: usize,
    /// Stop a phase after this many mutations even if time is left.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_mutations: u64,
    /// Seconds to wait for subscribers to receive everything after the writers stop.
    #[arg(long, default_value_t = 60.0)]
    pub drain_timeout: f64,
}

/// Knobs of `fanout`.
#[derive(Debug, Args)]
pub struct FanoutArgs {
    /// Subscriptions on the collection.
    #[arg(long, default_value_t = 1000)]
    pub subscribers: usize,
    /// WebSocket connections the subscriptions are spread over.
    #[arg(long, default_value_t = 100)]
    pub connections: usize,
    /// Mutations per second (the first step with `--ceiling`).
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Writing clients sharing the rate, one mutation in flight each: enough that a
    /// slow answer does not hold the rate back.
    #[arg(long, default_value_t = 16)]
    pub writers: usize,
    /// Seconds per rate step.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Raise the rate step by step until it is no longer sustained.
    #[arg(long)]
    pub ceiling: bool,
    /// Each step's rate is the previous one times this.
    #[arg(long, default_value_t = 1.5)]
    pub ramp: f64,
    /// Highest rate tried with `--ceiling`.
    #[arg(long, default_value_t = 20_000.0)]
    pub max_rate: f64,
    /// Most steps tried with `--ceiling`.
    #[arg(long, default_value_t = 12)]
    pub max_steps: usize,
    /// A step is sustained if the writers kept 95% of the rate and every delivery of
    /// it arrived within this many milliseconds of the step's scheduled end.
    #[arg(long, default_value_t = 1000)]
    pub grace_ms: u64,
    /// Extra bytes of padding in each record's data.
    #[arg(long, default_value_t = 0)]
    pub pad_bytes: usize,
    /// Seconds to wait for subscribers to receive everything after a step.
    #[arg(long, default_value_t = 60.0)]
    pub drain_timeout: f64,
}

/// Knobs of `idle`.
#[derive(Debug, Args)]
pub struct IdleArgs {
    /// Connections to open, one subscription each.
    #[arg(long, default_value_t = 50_000)]
    pub connections: usize,
    /// WebSocket handshakes in flight at once while opening.
    #[arg(long, default_value_t = 128)]
    pub connect_concurrency: usize,
    /// Seconds to hold the connections idle before reading the server's RSS.
    #[arg(long, default_value_t = 5.0)]
    pub hold: f64,
    /// Seconds to wait for the broadcast to reach everyone.
    #[arg(long, default_value_t = 30.0)]
    pub drain_timeout: f64,
}

/// Knobs of `replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Changes written before the client resumes.
    #[arg(long, default_value_t = 100_000)]
    pub changes: u64,
    /// Writing clients used to write them.
    #[arg(long, default_value_t = 16)]
    pub writers: usize,
    /// Clients that resume at once, each on its own connection.
    #[arg(long, default_value_t = 1)]
    pub clients: usize,
    /// Extra bytes of padding in each record's data.
    #[arg(long, default_value_t = 0)]
    pub pad_bytes: usize,
    /// Seconds to wait for the replay to finish.
    #[arg(long, default_value_t = 300.0)]
    pub drain_timeout: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_parse_with_their_knobs() {
        let cli = Cli::try_parse_from([
            "recordsync-bench",
            "--url",
            "http://127.0.0.1:9000/graphql",
            "--json",
            "mutate",
            "--subscribers",
            "0,1000",
            "--ops",
            "create",
        ])
        .unwrap();
        assert!(cli.json);
        let Scenario::Mutate(m) = cli.scenario else {
            panic!("not mutate");
        };
        assert_eq!(m.subscribers, vec![0, 1000]);
        assert_eq!(m.ops, vec![MutationKind::Create]);

        let cli = Cli::try_parse_from([
            "recordsync-bench",
            "fanout",
            "--ceiling",
            "--server-pid",
            "1",
        ])
        .unwrap();
        assert_eq!(cli.server_pid, Some(1));
        assert!(matches!(
            cli.scenario,
            Scenario::Fanout(FanoutArgs { ceiling: true, .. })
        ));
    }
}
