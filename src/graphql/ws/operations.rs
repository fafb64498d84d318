//! The operations one WebSocket connection runs: a table by id, each operation in a
//! task of its own that sends its results in the connection's protocol.

use std::{collections::HashMap, panic::AssertUnwindSafe, sync::Arc};

use async_graphql::Response;
use futures_util::{FutureExt, Stream, StreamExt};
use serde_json::{Value, json};
use tokio::task::{AbortHandle, JoinSet};

use super::{
    outbox::Outbox,
    protocol::{Protocol, text},
    shared::{Found, SharedOp},
};
use crate::graphql::response::is_request_error;

/// Running operations by id, with a generation so a finished task cannot remove a newer
/// operation that reused its id.
pub(super) struct Operations {
    running: HashMap<String, (u64, AbortHandle)>,
    generation: u64,
    tasks: JoinSet<(String, u64)>,
    /// Most operations at once.
    max: usize,
}

impl Operations {
    /// A table of at most `max` operations.
    pub fn new(max: usize) -> Self {
        Self {
            running: HashMap::new(),
            generation: 0,
            tasks: JoinSet::new(),
            max,
        }
    }

    /// Whether operation `id` is running. An operation that has just finished is gone,
    /// even if its task has not been reaped yet: its id may be reused at once.
    pub fn contains(&mut self, id: &str) -> bool {
        self.forget_finished();
        self.running.contains_key(id)
    }

    /// Drops operations whose task has ended.
    fn forget_finished(&mut self) {
        self.running.retain(|_, (_, handle)| !handle.is_finished());
    }

    /// Whether no operation is running.
    pub fn is_idle(&mut self) -> bool {
        self.forget_finished();
        self.running.is_empty()
    }

    /// Whether another operation may start.
    pub fn has_room(&mut self) -> bool {
        self.forget_finished();
        self.running.len() < self.max
    }

    /// The limit, for the refusal's message.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Stops operation `id`; whether it was running.
    pub fn stop(&mut self, id: &str) -> bool {
        match self.running.remove(id) {
            Some((_, handle)) => {
                handle.abort();
                true
            }
            None => false,
        }
    }

    /// Runs operation `id`, whose results are `results`, sending them to `out`; with
    /// `shared`, results its shape already has are sent without executing them.
    pub fn start(
        &mut self,
        id: String,
        protocol: Protocol,
        out: Outbox,
        results: impl Stream<Item = Response> + Send + 'static,
        shared: Option<Arc<SharedOp>>,
    ) {
        self.generation += 1;
        let generation = self.generation;
        let task_id = id.clone();
        let handle = self.tasks.spawn(async move {
            run(&task_id, protocol, &out, results, shared.as_deref()).await;
            (task_id, generation)
        });
        self.running.insert(id, (generation, handle));
    }

    /// Whether any task is left to reap.
    pub fn has_tasks(&self) -> bool {
        !self.tasks.is_empty()
    }

    /// Waits for one task to end and forgets its operation (cancel safe).
    pub async fn reap(&mut self) {
        if let Some(Ok((id, generation))) = self.tasks.join_next().await
            && self.running.get(&id).is_some_and(|(g, _)| *g == generation)
        {
            self.running.remove(&id);
        }
    }

    /// Stops every operation.
    pub fn abort_all(&mut self) {
        self.tasks.abort_all();
    }
}

/// Sends the results of operation `id` in the protocol's messages: each result, then
/// `complete`; or `error` alone when the request was refused before it ran. An
/// operation that panics gets an `error` too, so its client is not left waiting.
pub(super) async fn run(
    id: &str,
    protocol: Protocol,
    out: &Outbox,
    results: impl Stream<Item = Response> + Send,
    shared: Option<&SharedOp>,
) {
    let sent = AssertUnwindSafe(send_results(id, protocol, out, results, shared))
        .catch_unwind()
        .await;
    if sent.is_err() {
        tracing::error!(operation = id, "a WebSocket operation panicked");
        let errors = json!([{"message": "internal server error",
                             "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]);
        let _ = out.send(text(protocol.error(id, errors))).await;
    }
}

async fn send_results(
    id: &str,
    protocol: Protocol,
    out: &Outbox,
    results: impl Stream<Item = Response> + Send,
    shared: Option<&SharedOp>,
) {
    let mut results = std::pin::pin!(results);
    let mut first = true;
    while let Some(response) = results.next().await {
        let found = shared.and_then(SharedOp::take);
        let msg = if first && is_request_error(&response) {
            let errors = serde_json::to_value(&response.errors).unwrap_or(Value::Null);
            let _ = out.send(text(protocol.error(id, errors))).await;
            return;
        } else {
            match (found, shared) {
                (Some(Found::Result(seq, result)), _) => {
                    if !stands_for(&response, seq) {
                        // A bug, not an input: end the operation with an error rather
                        // than deliver a result for another change.
                        tracing::error!(
                            operation = id,
                            seq,
                            "a shared result does not match its change"
                        );
                        let errors = json!([{"message": "internal server error",
                                             "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]);
                        let _ = out.send(text(protocol.error(id, errors))).await;
                        return;
                    }
                    protocol.next_serialized(id, &result)
                }
                (Some(Found::Execute(seq)), Some(shared)) if response.errors.is_empty() => {
                    match serde_json::to_string(&response) {
                        Ok(payload) => {
                            let msg = protocol.next_serialized(id, &payload);
                            shared.keep(seq, Arc::from(payload));
                            msg
                        }
                        Err(_) => protocol.next(id, &response),
                    }
                }
                _ => protocol.next(id, &response),
            }
        };
        first = false;
        if out.send(msg).await.is_err() {
            return;
        }
    }
    let _ = out.send(text(protocol.complete(id))).await;
}

/// Whether `response` is the stand-in the resolver yields for the change at `seq`
/// when its result is shared: its one field holds that position.
fn stands_for(response: &Response, seq: i64) -> bool {
    match &response.data {
        async_graphql::Value::Object(fields) if response.errors.is_empty() => {
            let mut values = fields.values();
            matches!((values.next(), values.next()),
                (Some(async_graphql::Value::Number(n)), None) if n.as_i64() == Some(seq))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use axum::extract::ws::Message;

    use super::*;

    fn json_of(msg: Message) -> Value {
        match msg {
            Message::Text(t) => serde_json::from_str(t.as_str()).unwrap(),
            other => panic!("not a text message: {other:?}"),
        }
    }

    #[tokio::test]
    async fn an_operation_that_panics_gets_an_error_for_its_id() {
        for protocol in [Protocol::Transport, Protocol::Legacy] {
            let (out, mut sent) = super::super::outbox::outbox(8, 1 << 20);
            let results =
                futures_util::stream::once(async { Response::new(async_graphql::Value::Null) })
                    .chain(futures_util::stream::poll_fn(
                        |_| -> std::task::Poll<Option<Response>> { panic!("a resolver bug") },
                    ));
            run("op-1", protocol, &out, results, None).await;
            drop(out);
            let first = json_of(sent.recv().await.unwrap().msg);
            assert_eq!(first["id"], "op-1");
            let last = json_of(sent.recv().await.unwrap().msg);
            assert_eq!(last["type"], "error", "{last}");
            assert_eq!(last["id"], "op-1");
            assert_eq!(
                last["payload"][0]["extensions"]["code"],
                "INTERNAL_SERVER_ERROR"
            );
            assert!(sent.recv().await.is_none());
        }
    }
}
