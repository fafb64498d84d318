//! recordsync: a GraphQL server that keeps CRUD records in sync between many users in
//! real time.
//!
//! Every mutation commits the record and an entry in the change log in one
//! transaction, then publishes the change to the broker. The `recordChanged`
//! subscription reads the broker's live stream and, whenever it resumes from a cursor
//! or falls behind, the change log itself, so each subscriber receives every matching
//! change in commit order exactly once.
//!
//! # Layout
//! - [`config`]: every setting and limit, from flags or the environment.
//! - [`auth`]: JWT authentication and per-collection access.
//! - [`error`]: the one error enum and the code each variant shows a client.
//! - [`store`]: all database work, including the single write path.
//! - [`broker`]: fan-out of committed changes and the per-subscription feed.
//! - [`graphql`]: schema, resolvers, and the transports: GraphQL over HTTP, both
//!   WebSocket subprotocols, server-sent events.
//! - [`rest`]: the REST API under `/api`, on the same store and write path.
//! - [`sse`]: bounded server-sent event streams, shared by GraphQL and REST.
//! - [`request`]: reading bodies and media types the same way on every endpoint.
//! - [`cors`]: cross-origin access for browser pages, when `--cors-origins` allows it.
//! - [`telemetry`]: logging setup.
//! - [`metrics`]: Prometheus metrics and `/metrics`.
//! - this file: [`App`], which builds the state and serves the router until a shutdown
//!   future resolves. `main` and the tests start the server the same way.

pub mod auth;
pub mod broker;
pub mod config;
pub mod cors;
pub mod error;
pub mod graphql;
pub mod metrics;
pub mod request;
pub mod rest;
pub mod sse;
pub mod store;
pub mod telemetry;

use std::{future::Future, sync::Arc};

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Redirect},
    routing::get,
};
use migration::MigratorTrait;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::{DefaultOnResponse, TraceLayer},
};

pub use config::{Cli, Command, Config};

use crate::{
    broker::Broker,
    graphql::AppSchema,
    sse::Streams,
    store::{Limits, Store},
};

/// Everything a request handler needs; every field is a cheap handle.
#[derive(Clone)]
pub struct AppState {
    /// The GraphQL schema (holds the store as context data).
    pub schema: AppSchema,
    /// The store.
    pub store: Store,
    /// The settings.
    pub config: Arc<Config>,
    /// Cancelled when the server shuts down; WebSockets close and event streams end
    /// on it.
    pub shutdown: CancellationToken,
    /// The event streams being served, bounded by `--sse-max-streams`.
    pub streams: Streams,
    /// Checks credentials (or lets everything through when authentication is off).
    pub auth: auth::Authenticator,
    /// Open WebSocket connections, bounded in total and per client address.
    pub connections: graphql::ws::Connections,
    /// WebSocket connections and background tasks, awaited at shutdown.
    pub tasks: TaskTracker,
}

/// A built server, ready to serve.
pub struct App {
    state: AppState,
}

impl App {
    /// Opens (and migrates) the database and builds the state.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        metrics::handle();
        let db = store::connect(&config).await?;
        store::migrate(&db).await?;
        let head = store::changes::head(&db).await?;
        let broker = Broker::new(head, config.live_buffer);
        let limits = Limits {
            max_data_bytes: config.max_data_bytes,
            default_page_size: config.default_page_size,
            max_page_size: config.max_page_size,
            catch_up_batch: config.catch_up_batch,
            write_batch: usize::from(config.write_batch),
            write_queue: config.write_queue,
        };
        let store = Store::new(db, broker, limits);
        let schema = graphql::schema::build(store.clone(), &config);
        let shutdown = CancellationToken::new();
        let streams = Streams::new(config.sse_max_streams, config.keep_alive, shutdown.clone());
        let auth = authenticator(&config)?;
        cors::check(&config.cors_origins, config.cors_allow_credentials)
            .map_err(anyhow::Error::msg)?;
        let connections = graphql::ws::Connections::new(
            config.ws_max_connections,
            config.ws_max_connections_per_address,
        );
        Ok(Self {
            state: AppState {
                schema,
                store,
                config: Arc::new(config),
                shutdown,
                streams,
                auth,
                connections,
                tasks: TaskTracker::new(),
            },
        })
    }

    /// The store (for inspection in tests and tools).
    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// Serves on `listener` until `shutdown` resolves, then stops accepting, finishes
    /// in-flight requests, closes WebSockets with 1001, ends event streams and stops
    /// background work.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = self.state;
        state.tasks.spawn(prune_loop(state.clone()));
        if state.config.background_checkpoints() {
            state.tasks.spawn(checkpoint_loop(state.clone()));
        }
        if state.store.backend() == sea_orm::DbBackend::Postgres {
            let config = &state.config;
            let follower = broker::follower::FollowerConfig {
                url: config.database_url.clone(),
                poll_interval: config.follow_poll_interval,
                backoff_min: config.listen_backoff_min,
                backoff_max: config.listen_backoff_max,
                batch: u64::from(config.catch_up_batch.max(1)),
            };
            state.tasks.spawn(broker::follower::run(
                state.store.clone(),
                follower,
                state.shutdown.clone(),
            ));
        }
        let token = state.shutdown.clone();
        let grace = state.config.shutdown_grace;
        let tasks = state.tasks.clone();
        let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                tracing::info!("shutting down");
                token.cancel();
            })
            .await?;
        tasks.close();
        if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
            tracing::warn!("shutdown grace period over; dropping remaining connections");
        }
        Ok(())
    }
}

/// The authenticator `config` asks for; says loudly when there is none.
fn authenticator(config: &Config) -> anyhow::Result<auth::Authenticator> {
    let issuer = config.jwt_issuer.as_deref();
    let audience = config.jwt_audience.as_deref();
    match (&config.jwt_secret, &config.jwt_public_key_file) {
        (Some(_), Some(_)) => {
            anyhow::bail!("give --jwt-secret or --jwt-public-key-file, not both")
        }
        (Some(secret), None) => Ok(auth::Authenticator::hs256(
            secret.as_bytes(),
            issuer,
            audience,
        )),
        (None, Some(path)) => auth::Authenticator::public_key_file(path, issuer, audience),
        (None, None) => {
            tracing::warn!(
                "AUTHENTICATION IS OFF: anyone who can reach this port can read and change \
                 every record. Set --jwt-secret or --jwt-public-key-file before exposing it."
            );
            Ok(auth::Authenticator::disabled())
        }
    }
}

/// Builds the state and serves until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    App::build(config).await?.serve(listener, shutdown).await
}

/// The HTTP routes. Request bodies are read within `--max-body-bytes` by the handlers
/// that take one (see [`request::read_body`]), so that a body over the limit is refused
/// in each API's own error shape.
pub fn router(state: AppState) -> Router {
    let cors = cors::layer(
        &state.config.cors_origins,
        state.config.cors_allow_credentials,
        !state.auth.enabled(),
    );
    let routes = Router::new()
        .route("/", get(|| async { Redirect::temporary("/graphql") }))
        .route(
            "/graphql",
            get(graphql::http::get)
                .post(graphql::http::post)
                .fallback(graphql::http::other_method),
        )
        .nest("/api", rest::router())
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::render));
    let routes = match cors {
        Some(cors) => routes.layer(cors),
        None => routes,
    };
    routes
        .layer(axum::middleware::from_fn(metrics::track_http))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(telemetry::request_span)
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// Ready when the database answers, its migrations are current, and (PostgreSQL) the
/// change-log follower holds its LISTEN connection. The body says which check failed.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let database = state.store.ping().await;
    let migrations = match &database {
        Ok(()) => migration::Migrator::get_pending_migrations(state.store.db())
            .await
            .map(|pending| pending.is_empty())
            .unwrap_or(false),
        Err(_) => false,
    };
    let follower = if state.store.backend() == sea_orm::DbBackend::Postgres {
        if state.store.broker().follower_listening() {
            "listening"
        } else {
            "down"
        }
    } else {
        "not used"
    };
    if let Err(err) = &database {
        tracing::warn!(error = %err, "database unreachable");
    }
    let writer = state.store.writer_running();
    let ready = database.is_ok() && migrations && follower != "down" && writer;
    let body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "database": if database.is_ok() { "reachable" } else { "unreachable" },
        "migrations": if migrations { "current" } else if database.is_ok() { "pending" } else { "unknown" },
        "follower": follower,
        "writer": if writer { "running" } else { "stopped" },
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// Runs `work` every `period` until shutdown; a run that overruns delays the next.
async fn every<F, Fut>(state: &AppState, period: std::time::Duration, mut work: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        work().await;
    }
}

/// SQLite: checkpoints the write-ahead log every `sqlite_checkpoint_interval` until
/// shutdown, so that the write path never does.
async fn checkpoint_loop(state: AppState) {
    every(&state, state.config.sqlite_checkpoint_interval, || async {
        if let Err(err) = state.store.checkpoint().await {
            tracing::warn!(error = %err, "checkpointing the write-ahead log failed");
        }
    })
    .await;
}

/// Prunes the change log every `prune_interval` until shutdown.
async fn prune_loop(state: AppState) {
    every(&state, state.config.prune_interval, || async {
        match state.store.prune(state.config.change_retention).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "pruned the change log"),
            Err(err) => tracing::warn!(error = %err, "pruning the change log failed"),
        }
    })
    .await;
}
