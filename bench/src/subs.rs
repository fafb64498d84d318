//! Subscribers: many WebSocket connections, each running some `recordChanged`
//! subscriptions on one collection, tracking every event and timing its delivery.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::{
    sync::{Semaphore, watch},
    task::JoinHandle,
    time::Instant,
};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    Ctx,
    http::HttpClient,
    now_us,
    report::{histogram, record},
    verify::Tracker,
    ws::{self, Incoming},
};

/// Longest wait for a connection to open and acknowledge `connection_init`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Most rate steps whose deliveries are timed separately.
pub const MAX_STEPS: usize = 64;

/// Delivery timing of one step (events whose data carries `s`).
pub struct StepTiming {
    /// Server commit (`changedAt`) to receipt, µs.
    pub commit_to_receipt: Mutex<Histogram<u64>>,
    /// Writer's send time (`t` in the data) to receipt, µs.
    pub send_to_receipt: Mutex<Histogram<u64>>,
    /// Events received.
    pub count: AtomicU64,
    /// Receipt time of the latest one, µs since the epoch.
    pub last_receipt_us: AtomicI64,
}

/// What all subscriber connections share.
pub struct Shared {
    /// Events received over all subscriptions.
    pub delivered: AtomicU64,
    /// Timing per step.
    pub steps: Vec<StepTiming>,
}

impl Shared {
    /// Nothing received yet.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            delivered: AtomicU64::new(0),
            steps: (0..MAX_STEPS)
                .map(|_| StepTiming {
                    commit_to_receipt: Mutex::new(histogram()),
                    send_to_receipt: Mutex::new(histogram()),
                    count: AtomicU64::new(0),
                    last_receipt_us: AtomicI64::new(0),
                })
                .collect(),
        })
    }

    /// The timing of step `s`.
    pub fn step(&self, s: usize) -> &StepTiming {
        &self.steps[s.min(MAX_STEPS - 1)]
    }
}

/// Running subscriber connections.
pub struct Subscribers {
    tasks: Vec<JoinHandle<Vec<Tracker>>>,
    stop: watch::Sender<bool>,
    /// What they share.
    pub shared: Arc<Shared>,
    /// Connections that opened and subscribed.
    pub connected: usize,
    /// Subscriptions running on them.
    pub subscriptions: usize,
}

impl Subscribers {
    /// Opens `connections` connections (numbered from `first_index`, which picks their
    /// source addresses) running `subscriptions` subscriptions in all on `collection`,
    /// each resuming after `after`, with at most `concurrency` handshakes at once.
    /// Returns when every connection has subscribed or failed; failures are counted as
    /// errors and leave fewer connections.
    pub async fn open(
        ctx: &Arc<Ctx>,
        connections: usize,
        subscriptions: usize,
        collection: &str,
        after: &str,
        concurrency: usize,
    ) -> Self {
        let connections = connections.clamp(1, subscriptions.max(1));
        let shared = Shared::new();
        let (stop, stop_rx) = watch::channel(false);
        let gate = Arc::new(Semaphore::new(concurrency.max(1)));
        let done = Arc::new(AtomicUsize::new(0));
        let ok = Arc::new(AtomicUsize::new(0));
        let subscribed = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::with_capacity(connections);
        for i in 0..connections {
            let n = subscriptions / connections + usize::from(i < subscriptions % connections);
            let ctx = Arc::clone(ctx);
            let shared = Arc::clone(&shared);
            let gate = Arc::clone(&gate);
            let (done, ok, subscribed) =
                (Arc::clone(&done), Arc::clone(&ok), Arc::clone(&subscribed));
            let mut stop_rx = stop_rx.clone();
            let collection = collection.to_owned();
            let after = after.to_owned();
            tasks.push(tokio::spawn(async move {
                let opened = {
                    let _permit = gate.acquire().await;
                    // A server out of file descriptors leaves connections in its
                    // backlog; give up on those instead of waiting for TCP to.
                    tokio::time::timeout(CONNECT_TIMEOUT, open_one(&ctx, i, n, &collection, &after))
                        .await
                        .unwrap_or_else(|_| {
                            Err(anyhow::anyhow!(
                                "no connection_ack within {CONNECT_TIMEOUT:?}"
                            ))
                        })
                };
                done.fetch_add(1, Ordering::Relaxed);
                let ws = match opened {
                    Ok(ws) => ws,
                    Err(e) => {
                        ctx.error(format!("connection {i}: {e:#}"));
                        return Vec::new();
                    }
                };
                ok.fetch_add(1, Ordering::Relaxed);
                subscribed.fetch_add(n, Ordering::Relaxed);
                ctx.progress.connections.fetch_add(1, Ordering::Relaxed);
                let trackers = listen(&ctx, ws, n, &shared, &mut stop_rx).await;
                ctx.progress.connections.fetch_sub(1, Ordering::Relaxed);
                trackers
            }));
        }
        while done.load(Ordering::Relaxed) < connections {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Self {
            tasks,
            stop,
            shared,
            connected: ok.load(Ordering::Relaxed),
            subscriptions: subscribed.load(Ordering::Relaxed),
        }
    }

    /// Events received so far over all subscriptions.
    pub fn delivered(&self) -> u64 {
        self.shared.delivered.load(Ordering::Relaxed)
    }

    /// Waits until `target` events have been received in all, or `timeout` passes;
    /// returns whether the target was reached.
    pub async fn wait_delivered(&self, target: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.delivered() >= target {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Writes one unmarked record into `collection` and waits until every subscription
    /// has received it: from then on every subscription is live. Returns how long it
    /// took.
    pub async fn barrier(
        &self,
        http: &mut HttpClient,
        collection: &str,
        timeout: Duration,
    ) -> anyhow::Result<Duration> {
        let start = Instant::now();
        let target = self.delivered() + self.subscriptions as u64;
        http.data(
            "mutation($c: String!) { createRecord(input: {collection: $c, data: {barrier: true}}) { id } }",
            serde_json::json!({"c": collection}),
        )
        .await?;
        if !self.wait_delivered(target, timeout).await {
            anyhow::bail!(
                "only {} of {} subscriptions received the first change within {timeout:?}",
                self.delivered() + self.subscriptions as u64 - target,
                self.subscriptions
            );
        }
        Ok(start.elapsed())
    }

    /// Closes every connection and returns each subscription's tracker.
    pub async fn close(self) -> Vec<Tracker> {
        let _ = self.stop.send(true);
        let mut all = Vec::with_capacity(self.subscriptions);
        for t in self.tasks {
            if let Ok(trackers) = t.await {
                all.extend(trackers);
            }
        }
        all
    }
}

async fn open_one(
    ctx: &Ctx,
    index: usize,
    subscriptions: usize,
    collection: &str,
    after: &str,
) -> anyhow::Result<ws::Ws> {
    let mut ws = ws::connect(&ctx.endpoint, index).await?;
    for op in 1..=subscriptions {
        ws.feed(ws::subscribe_message(op, collection, after))
            .await?;
    }
    ws.flush().await?;
    Ok(ws)
}

/// Reads events until told to stop; returns one tracker per operation.
async fn listen(
    ctx: &Ctx,
    mut ws: ws::Ws,
    subscriptions: usize,
    shared: &Shared,
    stop: &mut watch::Receiver<bool>,
) -> Vec<Tracker> {
    let mut trackers = vec![Tracker::new(); subscriptions];
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(text))) => match ws::parse(&text) {
                    Incoming::Event(e) => {
                        let received = now_us();
                        match trackers.get_mut(e.op.wrapping_sub(1)) {
                            Some(t) => t.observe(&e.cursor, &e.mark),
                            None => ctx.error(format!("event for unknown operation {}", e.op)),
                        }
                        shared.delivered.fetch_add(1, Ordering::Relaxed);
                        ctx.progress.deliveries.fetch_add(1, Ordering::Relaxed);
                        if let Some(sent) = e.mark.t {
                            let step = shared.step(e.mark.s.unwrap_or(0) as usize);
                            if let Some(committed) = e.changed_at_us {
                                record(&mut step.commit_to_receipt.lock().unwrap_or_else(|e| e.into_inner()), received - committed);
                            }
                            record(&mut step.send_to_receipt.lock().unwrap_or_else(|e| e.into_inner()), received - sent);
                            step.count.fetch_add(1, Ordering::Relaxed);
                            step.last_receipt_us.fetch_max(received, Ordering::Relaxed);
                        }
                    }
                    Incoming::Problem(p) => ctx.error(format!("subscription: {p}")),
                    Incoming::Other => {}
                },
                Some(Ok(Message::Close(frame))) => {
                    ctx.error(format!("server closed a subscriber connection: {frame:?}"));
                    return trackers;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    ctx.error(format!("subscriber connection: {e}"));
                    return trackers;
                }
                None => {
                    ctx.error("subscriber connection ended");
                    return trackers;
                }
            },
        }
    }
    let _ = ws.close(None).await;
    trackers
}
