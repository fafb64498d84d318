//! An async-graphql extension counting operations by type and outcome.

use std::sync::{Arc, Mutex};

use futures_util::{StreamExt, stream::BoxStream};

use async_graphql::{
    Response, ServerResult, Variables,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextSubscribe,
    },
    parser::types::{ExecutableDocument, OperationType},
};

use crate::metrics::GRAPHQL_OPERATIONS;

/// Counts operations (`recordsync_graphql_operations_total`).
pub struct OperationMetrics;

impl ExtensionFactory for OperationMetrics {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PerRequest {
            kind: Mutex::new("unknown"),
        })
    }
}

/// One request's operation type, learnt while parsing.
struct PerRequest {
    kind: Mutex<&'static str>,
}

#[async_trait::async_trait]
impl Extension for PerRequest {
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
                let kind = match doc.operations.iter().next().map(|(_, op)| op.node.ty) {
                    Some(OperationType::Query) => "query",
                    Some(OperationType::Mutation) => "mutation",
                    Some(OperationType::Subscription) => "subscription",
                    None => "unknown",
                };
                *self.kind.lock().unwrap_or_else(|e| e.into_inner()) = kind;
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
        let kind = *self.kind.lock().unwrap_or_else(|e| e.into_inner());
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
        // subscription's only result is its error.
        let mut first = true;
        next.run(ctx, stream)
            .map(move |response| {
                if std::mem::take(&mut first) {
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
    fn a_subscription_counts_once_however_many_events_it_delivers() {
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
            });
        });
        let text = handle.render();
        let count = |kind: &str| {
            let prefix = format!("{GRAPHQL_OPERATIONS}{{type=\"{kind}\",outcome=\"ok\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(prefix.as_str()).map(str::to_owned))
        };
        assert_eq!(count("subscription").as_deref(), Some("1"), "{text}");
        assert_eq!(count("query").as_deref(), Some("1"), "{text}");
    }
}
