//! Every setting of the server, from the command line or the environment.
//!
//! Each limit the server enforces lives here with its default, so `recordsync --help`
//! is the complete list of what can be tuned.

use std::{net::SocketAddr, time::Duration};

use clap::{Args, Parser, Subcommand};

/// The command line: a subcommand (default `serve`) and the server settings.
#[derive(Debug, Parser)]
#[command(
    name = "recordsync",
    version,
    about = "Real-time CRUD sync over GraphQL"
)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Server settings, accepted before or after the subcommand.
    #[command(flatten)]
    pub config: Config,
}

/// The subcommands.
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum Command {
    /// Apply migrations and serve GraphQL (the default).
    Serve,
    /// Print the GraphQL schema (SDL) and exit.
    Schema,
    /// Apply pending database migrations and exit.
    Migrate,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Server settings. Every option can also be set through the environment variable named
/// in `--help`.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(
        long,
        env = "RECORDSYNC_LISTEN",
        default_value = "127.0.0.1:8000",
        global = true
    )]
    pub listen: SocketAddr,

    /// Database URL. SQLite (`sqlite://file.db`) is the default; the file is created on
    /// first start and opened in WAL mode.
    #[arg(
        long,
        env = "RECORDSYNC_DATABASE_URL",
        default_value = "sqlite://recordsync.db",
        global = true
    )]
    pub database_url: String,

    /// Largest number of pooled database connections.
    #[arg(
        long,
        env = "RECORDSYNC_DB_POOL_SIZE",
        default_value_t = 8,
        global = true
    )]
    pub db_pool_size: u32,

    /// Largest serialized size of a record's `data`, in bytes.
    #[arg(long, env = "RECORDSYNC_MAX_DATA_BYTES", default_value_t = 64 * 1024, global = true)]
    pub max_data_bytes: usize,

    /// Deepest nesting of a record's `data` (and of a merge patch), counting the object
    /// itself as 1; deeper is `BAD_USER_INPUT` on every write path. At most 100, so that
    /// every JSON parser a reader uses (serde_json stops at 128) can read what is stored.
    #[arg(
        long,
        env = "RECORDSYNC_MAX_DATA_DEPTH",
        default_value_t = 32,
        value_parser = clap::value_parser!(u8).range(1..=100),
        global = true
    )]
    pub max_data_depth: u8,

    /// Largest HTTP request body, in bytes.
    #[arg(long, env = "RECORDSYNC_MAX_BODY_BYTES", default_value_t = 1024 * 1024, global = true)]
    pub max_body_bytes: usize,

    /// Page size of `records` and `changes` when `first`/`last` is not given.
    #[arg(
        long,
        env = "RECORDSYNC_DEFAULT_PAGE_SIZE",
        default_value_t = 50,
        global = true
    )]
    pub default_page_size: u32,

    /// Largest `first`/`last` a client may ask for; larger is `BAD_USER_INPUT`.
    #[arg(
        long,
        env = "RECORDSYNC_MAX_PAGE_SIZE",
        default_value_t = 500,
        global = true
    )]
    pub max_page_size: u32,

    /// Deepest GraphQL selection accepted.
    #[arg(
        long,
        env = "RECORDSYNC_MAX_QUERY_DEPTH",
        default_value_t = 16,
        global = true
    )]
    pub max_query_depth: usize,

    /// Largest GraphQL query complexity accepted; more is `LIMIT_EXCEEDED`. Each field
    /// counts one, and a page (`records`, `changes`) counts what it selects once per
    /// record it may hold (`first` or `last`, else 50), so aliases of large pages add
    /// up: one page of 500 selecting 10 fields costs 5,001.
    #[arg(
        long,
        env = "RECORDSYNC_MAX_QUERY_COMPLEXITY",
        default_value_t = 10_000,
        global = true
    )]
    pub max_query_complexity: usize,

    /// Most fields a GraphQL document may select once its fragments are expanded; more
    /// is `LIMIT_EXCEEDED` (fragments spreading each other grow exponentially).
    #[arg(
        long,
        env = "RECORDSYNC_MAX_QUERY_FIELDS",
        default_value_t = 1000,
        global = true
    )]
    pub max_query_fields: usize,

    /// How long changes stay in the change log. A cursor older than this gets
    /// `CURSOR_EXPIRED`. Accepts `7d`, `12h`, `30m`, `10s`.
    #[arg(long, env = "RECORDSYNC_CHANGE_RETENTION", default_value = "7d", value_parser = humantime::parse_duration, global = true)]
    pub change_retention: Duration,

    /// How often expired changes are pruned.
    #[arg(long, env = "RECORDSYNC_PRUNE_INTERVAL", default_value = "1m", value_parser = humantime::parse_duration, global = true)]
    pub prune_interval: Duration,

    /// Live changes buffered in memory for subscribers. A subscriber that falls further
    /// behind catches up from the change log instead, so this bounds memory, not delivery.
    #[arg(
        long,
        env = "RECORDSYNC_LIVE_BUFFER",
        default_value_t = 1024,
        global = true
    )]
    pub live_buffer: usize,

    /// Most changes read from the log per query while a subscriber replays or catches
    /// up (see `--catch-up-bytes`, which usually ends a batch first for large records).
    #[arg(
        long,
        env = "RECORDSYNC_CATCH_UP_BATCH",
        default_value_t = 100,
        global = true
    )]
    pub catch_up_batch: u32,

    /// Bytes of changes read from the log per query while a subscriber replays: a batch
    /// ends at the first change that reaches this (it always holds one). Changes are
    /// kept as their JSON text, and a catching-up subscription holds at most two
    /// batches (the one it sends and the next, read meanwhile), so it holds at most
    /// 2 × (this + `--max-data-bytes`).
    #[arg(
        long,
        env = "RECORDSYNC_CATCH_UP_BYTES",
        default_value_t = 256 * 1024,
        global = true
    )]
    pub catch_up_bytes: usize,

    /// Most writes committed in one transaction (1 to 2048). Writes that arrive while a
    /// transaction commits wait and then commit together (group commit); each is still
    /// all or nothing and answered only once committed.
    #[arg(
        long,
        env = "RECORDSYNC_WRITE_BATCH",
        default_value_t = 256,
        value_parser = clap::value_parser!(u16).range(1..=2048),
        global = true
    )]
    pub write_batch: u16,

    /// Writes queued for the writer before further clients wait for room. Queued data is
    /// already checked against `--max-data-bytes` (a patch against `--max-body-bytes`),
    /// so this bounds the memory pending writes take.
    #[arg(
        long,
        env = "RECORDSYNC_WRITE_QUEUE",
        default_value_t = 1024,
        global = true
    )]
    pub write_queue: usize,

    /// SQLite: how often a background task copies the write-ahead log into the database
    /// file (a passive checkpoint, which blocks no reader or writer). Writers then never
    /// checkpoint themselves, so no write waits for the disk's fsync; durability is
    /// unchanged, since every commit is in the log. (Once the log passes 40 MB, writers
    /// may wait up to 50 ms while it is started over.) `0s` leaves checkpoints to SQLite,
    /// which runs them inside the commit that fills 1,000 pages of log.
    #[arg(long, env = "RECORDSYNC_SQLITE_CHECKPOINT_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration, global = true)]
    pub sqlite_checkpoint_interval: Duration,

    /// PostgreSQL: read the change log at least this often even without notifications.
    #[arg(long, env = "RECORDSYNC_FOLLOW_POLL_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration, global = true)]
    pub follow_poll_interval: Duration,

    /// PostgreSQL: first wait before retrying a lost LISTEN connection or a failed
    /// change-log read; doubles on every failure.
    #[arg(long, env = "RECORDSYNC_LISTEN_BACKOFF_MIN", default_value = "100ms", value_parser = humantime::parse_duration, global = true)]
    pub listen_backoff_min: Duration,

    /// PostgreSQL: longest wait between reconnection attempts.
    #[arg(long, env = "RECORDSYNC_LISTEN_BACKOFF_MAX", default_value = "5s", value_parser = humantime::parse_duration, global = true)]
    pub listen_backoff_max: Duration,

    /// Largest WebSocket message accepted from a client, in bytes.
    #[arg(long, env = "RECORDSYNC_WS_MAX_MESSAGE_BYTES", default_value_t = 256 * 1024, global = true)]
    pub ws_max_message_bytes: usize,

    /// Read buffer per WebSocket connection, in bytes. Messages larger than this still
    /// arrive (up to `--ws-max-message-bytes`); a small buffer keeps idle connections
    /// cheap.
    #[arg(
        long,
        env = "RECORDSYNC_WS_READ_BUFFER_BYTES",
        default_value_t = 1024,
        global = true
    )]
    pub ws_read_buffer_bytes: usize,

    /// Time a WebSocket client has to send `connection_init` before it is closed (4408),
    /// on either WebSocket protocol.
    #[arg(long, env = "RECORDSYNC_WS_INIT_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration, global = true)]
    pub ws_init_timeout: Duration,

    /// Operations (subscriptions, queries, mutations) one WebSocket connection may run at
    /// once, on either WebSocket protocol.
    #[arg(
        long,
        env = "RECORDSYNC_WS_MAX_SUBSCRIPTIONS",
        default_value_t = 100,
        global = true
    )]
    pub ws_max_subscriptions: usize,

    /// Outgoing messages queued per WebSocket connection before its subscriptions wait
    /// (and, if they wait long, catch up from the change log).
    #[arg(
        long,
        env = "RECORDSYNC_WS_SEND_QUEUE",
        default_value_t = 64,
        global = true
    )]
    pub ws_send_queue: usize,

    /// Most writes in one atomic batch (`commitWrites`, `POST /api/batch`); more is
    /// `BAD_USER_INPUT`.
    #[arg(
        long,
        env = "RECORDSYNC_MAX_BATCH_WRITES",
        default_value_t = 100,
        global = true
    )]
    pub max_batch_writes: usize,

    /// How long the outcome of a write sent with an idempotency key is kept: a retry
    /// within it answers that outcome again; after it the key is free. Pruned with the
    /// change log. Accepts `24h`, `7d`.
    #[arg(long, env = "RECORDSYNC_IDEMPOTENCY_RETENTION", default_value = "24h", value_parser = humantime::parse_duration, global = true)]
    pub idempotency_retention: Duration,

    /// Bytes of outgoing messages queued per WebSocket connection; past it, its
    /// operations wait as they do for `--ws-send-queue` (one message larger than this
    /// still goes, alone).
    #[arg(
        long,
        env = "RECORDSYNC_WS_SEND_QUEUE_BYTES",
        default_value_t = 1024 * 1024,
        global = true
    )]
    pub ws_send_queue_bytes: usize,

    /// Bytes of serialized subscription results kept for sharing: subscriptions with
    /// the same document, variables and rights execute each change once, and the
    /// others send the kept result. 0 turns sharing off.
    #[arg(
        long,
        env = "RECORDSYNC_WS_SHARED_RESULT_BYTES",
        default_value_t = 16 * 1024 * 1024,
        global = true
    )]
    pub ws_shared_result_bytes: usize,

    /// Most bytes of record data one GraphQL query may load (all its pages and
    /// records together, as JSON text); past it the query fails with
    /// `RESPONSE_TOO_LARGE` at the first record over the bound, before its answer is
    /// built. Subscriptions (one record per event) and mutations are not counted.
    #[arg(
        long,
        env = "RECORDSYNC_MAX_RESPONSE_BYTES",
        default_value_t = 8 * 1024 * 1024,
        global = true
    )]
    pub max_response_bytes: usize,

    /// Require a JWT signed with this HS256 shared secret on every request. Without
    /// this or `--jwt-public-key-file`, authentication is off (local use only).
    #[arg(
        long,
        env = "RECORDSYNC_JWT_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub jwt_secret: Option<String>,

    /// Require a JWT signed with the private half of this PEM public key (RSA for
    /// RS256, EC P-256 for ES256) on every request.
    #[arg(long, env = "RECORDSYNC_JWT_PUBLIC_KEY_FILE", global = true)]
    pub jwt_public_key_file: Option<std::path::PathBuf>,

    /// When set, tokens must carry this `iss`.
    #[arg(long, env = "RECORDSYNC_JWT_ISSUER", global = true)]
    pub jwt_issuer: Option<String>,

    /// When set, tokens must carry this `aud`.
    #[arg(long, env = "RECORDSYNC_JWT_AUDIENCE", global = true)]
    pub jwt_audience: Option<String>,

    /// Let browsers send credentials (cookies, HTTP authentication) cross-origin to the
    /// origins of `--cors-origins`; not allowed with `*`.
    #[arg(long, env = "RECORDSYNC_CORS_ALLOW_CREDENTIALS", global = true)]
    pub cors_allow_credentials: bool,

    /// Turn off GraphQL introspection (`__schema`, `__type`), so a client cannot list
    /// the schema. On by default: GraphiQL and code generators need it.
    #[arg(long, env = "RECORDSYNC_NO_INTROSPECTION", global = true)]
    pub no_introspection: bool,

    /// Most aliased fields one GraphQL document may contain; more is refused with
    /// `LIMIT_EXCEEDED` (aliases multiply the work of one request).
    #[arg(
        long,
        env = "RECORDSYNC_MAX_ALIASES",
        default_value_t = 30,
        global = true
    )]
    pub max_aliases: usize,

    /// Open WebSocket connections the server accepts in total; more get 429
    /// `TOO_MANY_CONNECTIONS`.
    #[arg(
        long,
        env = "RECORDSYNC_WS_MAX_CONNECTIONS",
        default_value_t = 10_000,
        global = true
    )]
    pub ws_max_connections: usize,

    /// Open WebSocket connections from one client address (behind a proxy, the proxy's
    /// address); more get 429 `TOO_MANY_CONNECTIONS`.
    #[arg(
        long,
        env = "RECORDSYNC_WS_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 100,
        global = true
    )]
    pub ws_max_connections_per_address: usize,

    /// Messages per second a WebSocket client may send (bursts up to this many); a
    /// client sending faster is closed with 1008.
    #[arg(
        long,
        env = "RECORDSYNC_WS_MAX_MESSAGES_PER_SECOND",
        default_value_t = 100,
        global = true
    )]
    pub ws_max_messages_per_second: u32,

    /// Entries kept for Apollo Automatic Persisted Queries (hash → parsed document);
    /// 0 turns persisted queries off.
    #[arg(
        long,
        env = "RECORDSYNC_APQ_CACHE_SIZE",
        default_value_t = 1000,
        global = true
    )]
    pub apq_cache_size: usize,

    /// Parsed GraphQL documents kept by their text (documents up to 2 KiB that passed
    /// the document limits, each at most about 400 KiB parsed), so the few documents
    /// clients send over and over are parsed once; 0 parses every request.
    #[arg(
        long,
        env = "RECORDSYNC_DOCUMENT_CACHE_SIZE",
        default_value_t = 64,
        global = true
    )]
    pub document_cache_size: usize,

    /// Log format: `pretty` for terminals, `json` (one object per line) for machines.
    #[arg(long, env = "RECORDSYNC_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty, global = true)]
    pub log_format: LogFormat,

    /// How often the server shows idle clients it is alive: a WebSocket ping frame on
    /// every WebSocket, a `ka` message on the legacy `graphql-ws` protocol, and a comment
    /// line on every event stream (which also keeps proxies from timing it out).
    #[arg(long, env = "RECORDSYNC_KEEP_ALIVE", default_value = "15s", value_parser = humantime::parse_duration, global = true)]
    pub keep_alive: Duration,

    /// A WebSocket from which nothing has arrived for this long, not even the pong to a
    /// keep-alive ping, is dead: the server drops it and its subscriptions. Should be a
    /// few times `--keep-alive`.
    #[arg(long, env = "RECORDSYNC_WS_DEAD_TIMEOUT", default_value = "45s", value_parser = humantime::parse_duration, global = true)]
    pub ws_dead_timeout: Duration,

    /// Server-sent event streams (GraphQL subscriptions over SSE and the REST change
    /// stream) served at once; more are refused with 429 `TOO_MANY_SUBSCRIPTIONS`.
    #[arg(
        long,
        env = "RECORDSYNC_SSE_MAX_STREAMS",
        default_value_t = 1000,
        global = true
    )]
    pub sse_max_streams: usize,

    /// Server-sent event streams one caller may have open at once: the token's subject
    /// (`sub`) when it has one, else the client address (behind a proxy, the proxy's);
    /// more are refused with 429 `TOO_MANY_SUBSCRIPTIONS`.
    #[arg(
        long,
        env = "RECORDSYNC_SSE_MAX_STREAMS_PER_CALLER",
        default_value_t = 100,
        global = true
    )]
    pub sse_max_streams_per_caller: usize,

    /// Origins whose pages may call the HTTP API from a browser (CORS): a comma-separated
    /// list such as `http://localhost:3000,https://app.example.com`, or `*` for any.
    /// Empty (the default): only pages served from this server's own origin. WebSockets
    /// are not subject to CORS.
    #[arg(
        long,
        env = "RECORDSYNC_CORS_ORIGINS",
        value_delimiter = ',',
        value_parser = crate::validate::parse_origin,
        global = true
    )]
    pub cors_origins: Vec<String>,

    /// HTTP connections served at once (WebSockets leave this count once upgraded; they
    /// have limits of their own). Further connections wait in the listen backlog until
    /// one closes. Event streams hold a connection each, so this must be over
    /// `--sse-max-streams`. Keep it under the process's open-file limit.
    #[arg(
        long,
        env = "RECORDSYNC_HTTP_MAX_CONNECTIONS",
        default_value_t = 2000,
        global = true
    )]
    pub http_max_connections: usize,

    /// Time a client has to send a request's headers, counted from when the connection
    /// opens or, on a kept-alive connection, from the end of the previous response: a
    /// connection that sends nothing, or headers too slowly, is closed.
    #[arg(long, env = "RECORDSYNC_HTTP_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration, global = true)]
    pub http_header_read_timeout: Duration,

    /// An HTTP connection on which no byte moves in either direction for this long (a
    /// stalled request body, a client that stopped reading its response) is closed. Must
    /// be longer than `--keep-alive`, which event streams send at least that often.
    #[arg(long, env = "RECORDSYNC_HTTP_IDLE_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration, global = true)]
    pub http_idle_timeout: Duration,

    /// How long shutdown waits for in-flight requests and WebSockets to finish.
    #[arg(long, env = "RECORDSYNC_SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration, global = true)]
    pub shutdown_grace: Duration,
}

impl Config {
    /// Whether a background task checkpoints SQLite's write-ahead log. The connections
    /// turn SQLite's own checkpoints off exactly when this holds, so both ask here.
    pub fn background_checkpoints(&self) -> bool {
        self.database_url.starts_with("sqlite:") && !self.sqlite_checkpoint_interval.is_zero()
    }
}

impl Config {
    /// Checks every duration and count a start-up needs: the first option with a value
    /// the server cannot run with, named as on the command line.
    pub fn validate(&self) -> Result<(), String> {
        let positive_durations = [
            ("--change-retention", self.change_retention),
            ("--prune-interval", self.prune_interval),
            ("--idempotency-retention", self.idempotency_retention),
            ("--follow-poll-interval", self.follow_poll_interval),
            ("--listen-backoff-min", self.listen_backoff_min),
            ("--listen-backoff-max", self.listen_backoff_max),
            ("--ws-init-timeout", self.ws_init_timeout),
            ("--keep-alive", self.keep_alive),
            ("--ws-dead-timeout", self.ws_dead_timeout),
            ("--http-header-read-timeout", self.http_header_read_timeout),
            ("--http-idle-timeout", self.http_idle_timeout),
        ];
        for (option, value) in positive_durations {
            if value.is_zero() {
                return Err(format!("{option} must be longer than 0s"));
            }
        }
        let positive_counts = [
            ("--db-pool-size", self.db_pool_size as usize),
            ("--max-data-bytes", self.max_data_bytes),
            ("--max-body-bytes", self.max_body_bytes),
            ("--max-page-size", self.max_page_size as usize),
            ("--max-query-depth", self.max_query_depth),
            ("--max-query-complexity", self.max_query_complexity),
            ("--max-query-fields", self.max_query_fields),
            ("--live-buffer", self.live_buffer),
            ("--catch-up-batch", self.catch_up_batch as usize),
            ("--catch-up-bytes", self.catch_up_bytes),
            ("--ws-send-queue-bytes", self.ws_send_queue_bytes),
            ("--max-batch-writes", self.max_batch_writes),
            ("--max-response-bytes", self.max_response_bytes),
            ("--write-queue", self.write_queue),
            ("--ws-max-message-bytes", self.ws_max_message_bytes),
            ("--ws-read-buffer-bytes", self.ws_read_buffer_bytes),
            ("--ws-max-subscriptions", self.ws_max_subscriptions),
            ("--ws-send-queue", self.ws_send_queue),
            ("--ws-max-connections", self.ws_max_connections),
            (
                "--ws-max-connections-per-address",
                self.ws_max_connections_per_address,
            ),
            (
                "--ws-max-messages-per-second",
                self.ws_max_messages_per_second as usize,
            ),
            ("--sse-max-streams", self.sse_max_streams),
            ("--http-max-connections", self.http_max_connections),
            (
                "--sse-max-streams-per-caller",
                self.sse_max_streams_per_caller,
            ),
        ];
        for (option, value) in positive_counts {
            if value == 0 {
                return Err(format!("{option} must be at least 1"));
            }
        }
        if self.listen_backoff_min > self.listen_backoff_max {
            return Err("--listen-backoff-min must not be longer than --listen-backoff-max".into());
        }
        if self.http_max_connections <= self.sse_max_streams {
            return Err(
                "--http-max-connections must be over --sse-max-streams: event streams hold a connection each"
                    .into(),
            );
        }
        if self.http_idle_timeout <= self.keep_alive {
            return Err("--http-idle-timeout must be longer than --keep-alive".into());
        }
        if self.default_page_size > self.max_page_size {
            return Err("--default-page-size must not be over --max-page-size".into());
        }
        Ok(())
    }
}

impl Default for Config {
    /// The documented defaults. The environment is not read: a `RECORDSYNC_*` variable
    /// set for the binary must not change (or break) a server built in code.
    fn default() -> Self {
        use clap::{CommandFactory, FromArgMatches};
        #[derive(Parser)]
        struct Defaults {
            #[command(flatten)]
            config: Config,
        }
        let command = Defaults::command().mut_args(|arg| arg.env(None::<&str>));
        // Every field has a default that parses (a unit test holds this), so this only
        // fails if that test fails too.
        command
            .try_get_matches_from(["recordsync"])
            .and_then(|matches| Config::from_arg_matches(&matches))
            .unwrap_or_else(|e| panic!("the documented defaults must parse: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_ignore_the_environment() {
        // SAFETY: no other test of this binary reads or writes this variable.
        unsafe { std::env::set_var("RECORDSYNC_PRUNE_INTERVAL", "not a duration") };
        let config = Config::default();
        assert_eq!(config.prune_interval, Duration::from_secs(60));
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn zero_durations_and_counts_name_their_option() {
        let config = Config {
            prune_interval: Duration::ZERO,
            ..Config::default()
        };
        assert_eq!(
            config.validate(),
            Err("--prune-interval must be longer than 0s".to_owned())
        );
        let config = Config {
            catch_up_batch: 0,
            ..Config::default()
        };
        assert_eq!(
            config.validate(),
            Err("--catch-up-batch must be at least 1".to_owned())
        );
    }
}
