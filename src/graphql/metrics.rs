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
