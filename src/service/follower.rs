//! With PostgreSQL: learning, on every instance, about changes committed by any
//! instance, and publishing them to the local broker in commit order.
//!
//! Writers `NOTIFY` [`NOTIFY_CHANNEL`] with the new sequence number (a few bytes, never the
//! record: payloads are limited to 8000 bytes). The follower treats a notification only
//! as a hint to read the change log after its last published position; it also reads
//! after a local commit, after every reconnection and every `poll_interval`. The log is
//! the truth: a lost notification or a dropped LISTEN connection delays an event, it
//! never loses one.

use std::time::Duration;

use sea_orm::sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio_util::sync::CancellationToken;

use crate::store::{NOTIFY_CHANNEL, Store};

/// The `application_name` of the LISTEN connection, so operators can find it.
pub const APPLICATION_NAME: &str = "recordsync-listener";

/// How the follower behaves.
#[derive(Debug, Clone)]
pub struct FollowerConfig {
    /// The PostgreSQL URL.
    pub url: String,
    /// Read the log at least this often, notifications or not.
    pub poll_interval: Duration,
    /// First wait after a failure; doubles up to `backoff_max`.
    pub backoff_min: Duration,
    /// Longest wait between attempts to reach the database.
    pub backoff_max: Duration,
}

/// Follows the change log until `shutdown`.
pub async fn run(store: Store, config: FollowerConfig, shutdown: CancellationToken) {
    let mut listener: Option<PgListener> = None;
    let mut backoff = config.backoff_min;
    loop {
        if listener.is_none() {
            match listen(&config.url).await {
                Ok(l) => {
                    listener = Some(l);
                    store.broker().set_follower_listening(true);
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cannot LISTEN for changes; polling until it can")
                }
            }
        }
        // Read after (re)connecting too: notifications sent meanwhile are gone.
        if let Err(err) = store.publish_from_log().await {
            tracing::warn!(error = %err, retry_in = ?backoff, "cannot read the change log");
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(config.backoff_max);
            continue;
        }
        backoff = config.backoff_min;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = store.broker().poked() => {}
            _ = tokio::time::sleep(config.poll_interval) => {}
            received = next_notification(listener.as_mut()) => match received {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!("LISTEN connection lost; reconnecting and catching up");
                    store.broker().set_follower_listening(false);
                    listener = None;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "LISTEN connection failed");
                    store.broker().set_follower_listening(false);
                    listener = None;
                }
            },
        }
    }
}

/// Opens a dedicated LISTEN connection.
async fn listen(url: &str) -> Result<PgListener, sea_orm::sqlx::Error> {
    let options: PgConnectOptions = url
        .parse::<PgConnectOptions>()?
        .application_name(APPLICATION_NAME);
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with(options);
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(NOTIFY_CHANNEL).await?;
    Ok(listener)
}

/// `Ok(true)` for a notification, `Ok(false)` when the connection was lost; pending
/// forever without a listener.
async fn next_notification(
    listener: Option<&mut PgListener>,
) -> Result<bool, sea_orm::sqlx::Error> {
    match listener {
        Some(l) => Ok(l.try_recv().await?.is_some()),
        None => std::future::pending().await,
    }
}
