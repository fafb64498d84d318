//! Checks async-graphql does not have: aliased fields per document, and queries only
//! over `GET` even when the document comes from the persisted-query cache.

use std::sync::Arc;

use async_graphql::{
    ErrorExtensions, ServerResult, Variables,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery},
    parser::types::{ExecutableDocument, Selection, SelectionSet},
};

/// Refuses documents with more than `max` aliased fields (`LIMIT_EXCEEDED`).
pub struct AliasLimit(pub usize);

impl ExtensionFactory for AliasLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AliasLimitExtension(self.0))
    }
}

struct AliasLimitExtension(usize);

#[async_trait::async_trait]
impl Extension for AliasLimitExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        let aliases = doc
            .operations
            .iter()
            .map(|(_, op)| count(&op.node.selection_set.node))
            .sum::<usize>()
            + doc
                .fragments
                .values()
                .map(|f| count(&f.node.selection_set.node))
                .sum::<usize>();
        if ctx.data_opt::<QueriesOnly>().is_some() && selects_mutation(&doc, ctx) {
            let err = async_graphql::Error::new("mutations must be sent with POST")
                .extend_with(|_, e| e.set("code", "METHOD_NOT_ALLOWED"));
            return Err(err.into_server_error(Default::default()));
        }
        if aliases > self.0 {
            let err = async_graphql::Error::new(format!(
                "the document has {aliases} aliased fields; at most {} are allowed",
                self.0
            ))
            .extend_with(|_, e| e.set("code", "LIMIT_EXCEEDED"));
            return Err(err.into_server_error(Default::default()));
        }
        Ok(doc)
    }
}

/// Request data marking a request that may only run queries (one sent with `GET`).
pub struct QueriesOnly;

/// Whether the operation the request selects (or the only one) is a mutation.
fn selects_mutation(doc: &ExecutableDocument, ctx: &ExtensionContext<'_>) -> bool {
    use async_graphql::parser::types::{DocumentOperations, OperationType};
    let name = ctx.data_opt::<OperationName>().map(|n| n.0.as_str());
    let op = match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        (DocumentOperations::Multiple(_), None) => None,
    };
    op.is_some_and(|op| op.node.ty == OperationType::Mutation)
}

/// The operation name of a `GET` request, for [`QueriesOnly`].
pub struct OperationName(pub String);

/// Aliased fields in a selection set, nested ones included.
fn count(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(f) => {
                usize::from(f.node.alias.is_some()) + count(&f.node.selection_set.node)
            }
            Selection::InlineFragment(f) => count(&f.node.selection_set.node),
            Selection::FragmentSpread(_) => 0,
        })
        .sum()
}
