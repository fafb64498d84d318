//! Prometheus metrics: names, the recorder, and the `/metrics` and HTTP middleware.
//!
//! The `metrics` facade has one process-wide recorder; every server in the process
//! (normally one) reports to it. Metric names live here so they are spelled once.

use std::{sync::OnceLock, time::Instant};

use axum::{
    extract::{MatchedPath, Request},
    middleware::Next,
    response::{IntoResponse, Response},
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// HTTP requests, by `route` and `status`.
pub const HTTP_REQUESTS: &str = "recordsync_http_requests_total";
/// GraphQL operations, by `type` (query, mutation, subscription) and `outcome` (ok, error).
pub const GRAPHQL_OPERATIONS: &str = "recordsync_graphql_operations_total";
/// Open WebSocket connections.
pub const WEBSOCKETS_OPEN: &str = "recordsync_websockets_open";
/// Active subscriptions on any transport.
pub const SUBSCRIPTIONS_ACTIVE: &str = "recordsync_subscriptions_active";
/// Subscriptions currently reading the change log instead of the live stream.
pub const SUBSCRIPTIONS_CATCHING_UP: &str = "recordsync_subscriptions_catching_up";
/// The newest change-log position this instance has published.
pub const CHANGE_LOG_HEAD: &str = "recordsync_change_log_head";
/// Changes published to this instance's subscribers.
pub const EVENTS_PUBLISHED: &str = "recordsync_events_published_total";
/// Events delivered to subscriptions (one per matching subscription).
pub const EVENTS_DELIVERED: &str = "recordsync_events_delivered_total";
/// Seconds from a mutation's start to its commit, by `kind`.
pub const MUTATION_SECONDS: &str = "recordsync_mutation_duration_seconds";
/// Database rows left out of a read because they could not be decoded, by `table`.
pub const UNDECODABLE_ROWS: &str = "recordsync_undecodable_rows_total";
/// Seconds from a change's commit to its delivery to a subscription.
pub const DELIVERY_SECONDS: &str = "recordsync_delivery_latency_seconds";

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process-wide recorder's handle, installed on first use.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (an embedding program's); then ours
        // only renders what it was given, which is nothing, and says so once.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
        }
        handle
    })
}

/// `GET /metrics`, in the Prometheus text format.
pub async fn render() -> impl IntoResponse {
    let handle = handle();
    handle.run_upkeep();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        handle.render(),
    )
}

/// Counts every HTTP request by its route (not its raw path, which clients control).
pub async fn track_http(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    metrics::counter!(HTTP_REQUESTS, "route" => route, "status" => response.status().as_u16().to_string())
        .increment(1);
    response
}

/// Records the duration of a mutation since `start`.
pub fn mutation_finished(kind: &'static str, start: Instant) {
    metrics::histogram!(MUTATION_SECONDS, "kind" => kind).record(start.elapsed().as_secs_f64());
}
