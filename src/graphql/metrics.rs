//! An async-graphql extension counting operations by type and outcome.

use std::sync::{Arc, Mutex};

use futures_util::{StreamExt, stream::BoxStream};

use async_graphql::{
    Request, Response, ServerResult, Variables,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery,
        NextPrepareRequest, NextSubscribe,
    },
    parser::types::{ExecutableDocument, OperationType},
};

use super::limits::operation_type;
use crate::metrics::GRAPHQL_OPERATIONS;

/// Counts operations (`recordsync_graphql_operations_total`).
pub struct OperationMetrics;

impl ExtensionFactory for OperationMetrics {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PerRequest {
            seen: Arc::new(Mutex::new(Seen::default())),
        })
    }
}

/// One request's operation name and the type of the operation it runs, learnt while
/// preparing and parsing it.
struct PerRequest {
    seen: Arc<Mutex<Seen>>,
}

#[derive(Default)]
struct Seen {
    operation_name: Option<String>,
    /// The type of the operation the request runs (`None` until parsed, or when the
    /// document has no such operation).
    kind: Option<OperationType>,
}

impl Seen {
    /// The type of the operation the request runs, as the metric's label.
    fn kind(seen: &Mutex<Self>) -> &'static str {
        match seen.lock().unwrap_or_else(|e| e.into_inner()).kind {
            Some(OperationType::Query) => "query",
            Some(OperationType::Mutation) => "mutation",
            Some(OperationType::Subscription) => "subscription",
            None => "unknown",
        }
    }
}

#[async_trait::async_trait]
impl Extension for PerRequest {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let request = next.run(ctx, request).await?;
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .operation_name = request.operation_name.clone();
        Ok(request)
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await;
        match &doc {
            Ok(doc) => {
                let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
                seen.kind = operation_type(doc, seen.operation_name.as_deref());
            }
            Err(_) => {
                metrics::counter!(GRAPHQL_OPERATIONS, "type" => "unknown", "outcome" => "parse_error")
                    .increment(1);
            }
        }
        doc
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let response = next.run(ctx, operation_name).await;
        let kind = Seen::kind(&self.seen);
        // A subscription runs this for every event; `subscribe` counts it once.
        if kind == "subscription" {
            return response;
        }
        let outcome = if response.is_ok() { "ok" } else { "error" };
        metrics::counter!(GRAPHQL_OPERATIONS, "type" => kind, "outcome" => outcome).increment(1);
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        // One count per subscription, by how its first result looks: a refused
        // subscription's only result is its error. Queries and mutations sent over a
        // WebSocket or event stream arrive here too; `execute` counts those.
        let mut first = true;
        let seen = Arc::clone(&self.seen);
        next.run(ctx, stream)
            .map(move |response| {
                if std::mem::take(&mut first) && Seen::kind(&seen) == "subscription" {
                    let outcome = if response.is_ok() { "ok" } else { "error" };
                    metrics::counter!(GRAPHQL_OPERATIONS, "type" => "subscription", "outcome" => outcome)
                        .increment(1);
                }
                response
            })
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{EmptyMutation, Object, Schema, Subscription};
    use futures_util::Stream;

    use super::*;

    struct Query;
    #[Object]
    impl Query {
        async fn one(&self) -> i32 {
            1
        }
    }

    struct Subscription;
    #[Subscription]
    impl Subscription {
        async fn three(&self) -> impl Stream<Item = i32> {
            futures_util::stream::iter([1, 2, 3])
        }
    }

    #[test]
    fn each_operation_counts_once_by_the_type_of_the_operation_it_runs() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            runtime.block_on(async {
                let schema = Schema::build(Query, EmptyMutation, Subscription)
                    .extension(OperationMetrics)
                    .finish();
                let events: Vec<_> = schema
                    .execute_stream("subscription { three }")
                    .collect()
                    .await;
                assert_eq!(events.len(), 3);
                assert!(schema.execute("{ one }").await.is_ok());
                // The operation it runs, not the document's first.
                let named = async_graphql::Request::new("subscription S { three } query Q { one }")
                    .operation_name("Q");
                assert!(schema.execute(named).await.is_ok());
                // A query sent as a stream (over a WebSocket) is a query.
                let over_ws: Vec<_> = schema.execute_stream("{ one }").collect().await;
                assert_eq!(over_ws.len(), 1);
            });
        });
        let text = handle.render();
        let count = |kind: &str| {
            let prefix = format!("{GRAPHQL_OPERATIONS}{{type=\"{kind}\",outcome=\"ok\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(prefix.as_str()).map(str::to_owned))
        };
        assert_eq!(count("subscription").as_deref(), Some("1"), "{text}");
        assert_eq!(count("query").as_deref(), Some("3"), "{text}");
    }
}
