//! The application: builds the service, the transports' states and the router, serves
//! until a shutdown future resolves, and runs the background work (pruning, SQLite
//! checkpoints, the PostgreSQL follower). Readiness (`/readyz`) is answered here.

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

use crate::{
    auth,
    broker::Broker,
    config::Config,
    graphql::{self, GraphqlState},
    http::{cors, serve::ConnectionLimits, sse::Streams},
    metrics,
    rest::{self, RestState},
    service::{self, Service},
    store::{self, Limits, Store},
    telemetry,
};

/// What the application's own routes (readiness) and background work need.
#[derive(Clone)]
struct AppState {
    /// The operations, and through them the store and the broker.
    service: Service,
    /// The settings.
    config: Arc<Config>,
    /// Cancelled when the server shuts down.
    shutdown: CancellationToken,
    /// Checks the credential `/metrics` needs when authentication is on.
    auth: auth::Authenticator,
}

impl axum::extract::FromRef<AppState> for auth::Authenticator {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

/// A built server, ready to serve.
pub struct App {
    /// Readiness and background work.
    state: AppState,
    /// The GraphQL endpoint's state.
    graphql: GraphqlState,
    /// The REST API's state.
    rest: RestState,
    /// WebSocket connections and background tasks, awaited at shutdown.
    tasks: TaskTracker,
}

impl App {
    /// Checks the settings, opens (and migrates) the database and builds the state.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        config.validate().map_err(anyhow::Error::msg)?;
        metrics::handle();
        let db = store::connect(&config).await?;
        store::migrate(&db).await?;
        let head = store::changes::head(&db).await?;
        let broker = Broker::new(head, config.live_buffer);
        let limits = Limits {
            max_data_bytes: config.max_data_bytes,
            max_data_depth: usize::from(config.max_data_depth),
            default_page_size: config.default_page_size,
            max_page_size: config.max_page_size,
            catch_up_batch: config.catch_up_batch,
            catch_up_bytes: config.catch_up_bytes,
            write_batch: usize::from(config.write_batch),
            write_queue: config.write_queue,
            max_batch_writes: config.max_batch_writes,
        };
        let cursors = store::cursor_key(&db).await?;
        let service = Service::new(Store::new(db, broker, limits, cursors));
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let streams = Streams::new(
            config.sse_max_streams,
            config.sse_max_streams_per_caller,
            config.keep_alive,
            shutdown.clone(),
        );
        let auth = authenticator(&config)?;
        cors::check(&config.cors_origins, config.cors_allow_credentials)
            .map_err(anyhow::Error::msg)?;
        let graphql = GraphqlState {
            schema: graphql::schema::build(service.clone(), &config),
            auth: auth.clone(),
            streams: streams.clone(),
            connections: graphql::ws::admission::Connections::new(
                config.ws_max_connections,
                config.ws_max_connections_per_address,
            ),
            ws: graphql::ws::WsSettings {
                limits: graphql::ws::WsLimits {
                    init_timeout: config.ws_init_timeout,
                    max_subscriptions: config.ws_max_subscriptions,
                    send_queue: config.ws_send_queue,
                    send_queue_bytes: config.ws_send_queue_bytes,
                    keep_alive: config.keep_alive,
                    dead_timeout: config.ws_dead_timeout,
                    max_messages_per_second: config.ws_max_messages_per_second,
                },
                max_message_bytes: config.ws_max_message_bytes,
                read_buffer_bytes: config.ws_read_buffer_bytes,
                shapes: Arc::new(graphql::ws::shared::Shapes::new(
                    config.ws_shared_result_bytes,
                )),
            },
            max_body_bytes: config.max_body_bytes,
            shutdown: shutdown.clone(),
            tasks: tasks.clone(),
        };
        let rest = RestState {
            service: service.clone(),
            auth,
            streams,
            max_body_bytes: config.max_body_bytes,
        };
        Ok(Self {
            state: AppState {
                service,
                config: Arc::new(config),
                shutdown,
                auth: graphql.auth.clone(),
            },
            graphql,
            rest,
            tasks,
        })
    }

    /// The service (for inspection in tests and tools).
    pub fn service(&self) -> &Service {
        &self.state.service
    }

    /// Serves on `listener` until `shutdown` resolves, then stops accepting, finishes
    /// in-flight requests, closes WebSockets with 1001, ends event streams and stops
    /// background work.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            state,
            graphql,
            rest,
            tasks,
        } = self;
        tasks.spawn(prune_loop(state.clone()));
        if state.config.background_checkpoints() {
            tasks.spawn(checkpoint_loop(state.clone()));
        }
        let store = state.service.store();
        if store.backend() == sea_orm::DbBackend::Postgres {
            let config = &state.config;
            let follower = service::follower::FollowerConfig {
                url: config.database_url.clone(),
                poll_interval: config.follow_poll_interval,
                backoff_min: config.listen_backoff_min,
                backoff_max: config.listen_backoff_max,
            };
            tasks.spawn(service::follower::run(
                store.clone(),
                follower,
                state.shutdown.clone(),
            ));
        }
        let token = state.shutdown.clone();
        let grace = state.config.shutdown_grace;
        let limits = ConnectionLimits {
            max_connections: state.config.http_max_connections,
            header_read_timeout: state.config.http_header_read_timeout,
            idle_timeout: state.config.http_idle_timeout,
        };
        let app = router(state, graphql, rest);
        let shutdown = async move {
            shutdown.await;
            tracing::info!("shutting down");
            token.cancel();
        };
        crate::http::serve::serve(listener, app, limits, shutdown, grace).await;
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

/// The HTTP routes: `/graphql`, `/api`, health, readiness and metrics. Request bodies
/// are read within `--max-body-bytes` by the handlers that take one (see
/// [`crate::http::request::read_body`]), so that a body over the limit is refused in each
/// API's own error shape.
fn router(state: AppState, graphql: GraphqlState, rest: RestState) -> Router {
    let cors = cors::layer(
        &state.config.cors_origins,
        state.config.cors_allow_credentials,
        !graphql.auth.enabled(),
    );
    let demo = !graphql.auth.enabled();
    let routes = Router::new()
        .route("/", get(|| async { Redirect::temporary("/graphql") }))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_page))
        .with_state(state)
        .merge(graphql::router(graphql))
        .merge(crate::web::router(demo))
        .nest("/api", rest::router(rest));
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
}

/// Ready when the database answers, its migrations are current, the writer runs and
/// what it published matches the log, and (PostgreSQL) the change-log follower holds
/// its LISTEN connection. The body says which check failed.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let store = state.service.store();
    let database = store.ping().await;
    let migrations = match &database {
        Ok(()) => match migration::Migrator::get_pending_migrations(store.db()).await {
            Ok(pending) if pending.is_empty() => "current",
            Ok(_) => "pending",
            Err(err) => {
                tracing::warn!(error = %err, "cannot check the database's migrations");
                "check failed"
            }
        },
        Err(_) => "unknown",
    };
    let follower = if store.backend() == sea_orm::DbBackend::Postgres {
        if state.service.broker().follower_listening() {
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
    let writer = if !store.writer_running() {
        "stopped"
    } else if !state.service.broker().in_sync() {
        "resyncing"
    } else {
        "running"
    };
    let ready =
        database.is_ok() && migrations == "current" && follower != "down" && writer == "running";
    let body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "database": if database.is_ok() { "reachable" } else { "unreachable" },
        "migrations": migrations,
        "follower": follower,
        "writer": writer,
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// `/metrics`: with authentication on, only for a token with the `metrics` scope (the
/// log head and the request counts show activity in every collection).
async fn metrics_page(access: auth::Access) -> axum::response::Response {
    if !access.metrics {
        return crate::error::Error::Forbidden("reading /metrics needs the `metrics` scope".into())
            .into_response();
    }
    metrics::render().await.into_response()
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
        if let Err(err) = state.service.store().checkpoint().await {
            tracing::warn!(error = %err, "checkpointing the write-ahead log failed");
        }
    })
    .await;
}

/// Prunes the change log and expired idempotency keys every `prune_interval` until
/// shutdown.
async fn prune_loop(state: AppState) {
    every(&state, state.config.prune_interval, || async {
        match state.service.prune(state.config.change_retention).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "pruned the change log"),
            Err(err) => tracing::warn!(error = %err, "pruning the change log failed"),
        }
        let keys = state
            .service
            .prune_keys(state.config.idempotency_retention)
            .await;
        match keys {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "pruned idempotency keys"),
            Err(err) => tracing::warn!(error = %err, "pruning idempotency keys failed"),
        }
    })
    .await;
}
