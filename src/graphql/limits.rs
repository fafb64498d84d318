//! Checks async-graphql does not have: aliased fields per document, and queries only
//! over `GET` even when the document comes from the persisted-query cache.

use std::{collections::HashMap, sync::Arc};

use async_graphql::{
    ErrorExtensions, Request, Response, ServerError, ServerResult, ValidationResult, Variables,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery,
        NextPrepareRequest, NextValidation,
    },
    parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet},
};

use super::documents::Documents;
use crate::model::ResponseBudget;

/// Refuses documents with more than `aliases` aliased fields or more than `fields`
/// fields once fragments are expanded (`LIMIT_EXCEEDED`: fragments spreading each other
/// twice grow exponentially), and subscriptions with more than one root field; gives
/// every query a [`ResponseBudget`] of `response_bytes`.
#[derive(Clone)]
pub struct DocumentLimits {
    /// Most aliased fields.
    pub aliases: usize,
    /// Most fields once fragments are expanded.
    pub fields: usize,
    /// Most complexity (see [`page_complexity`]); more is `LIMIT_EXCEEDED`.
    pub complexity: usize,
    /// Most bytes of record data in one answer.
    pub response_bytes: usize,
    /// Documents parsed before, by their text.
    pub documents: Arc<Documents>,
}

impl ExtensionFactory for DocumentLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AliasLimitExtension(self.clone()))
    }
}

struct AliasLimitExtension(DocumentLimits);

fn limit_exceeded(message: String) -> ServerError {
    async_graphql::Error::new(message)
        .extend_with(|_, e| e.set("code", "LIMIT_EXCEEDED"))
        .into_server_error(Default::default())
}

#[async_trait::async_trait]
impl Extension for AliasLimitExtension {
    /// Parses the document here, before async-graphql's own checks (its recursion-depth
    /// walk expands fragment spreads and takes exponential time on a document whose
    /// fragments spread each other twice), and hands the parsed document on.
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        // Later extensions (persisted queries) may turn a hash into the document.
        let mut request = next.run(ctx, request).await?;
        // Parses once (or takes the document parsed for an earlier request with the
        // same text); async-graphql reuses it.
        let name = request.operation_name.clone();
        // A persisted query comes parsed, with no text. A document parsed here is kept
        // once it has passed the checks below.
        let mut parsed_text = None;
        if !request.query.is_empty() {
            let doc = match self.0.documents.get(&request.query) {
                Some(doc) => doc,
                None => {
                    parsed_text = Some(request.query.clone());
                    async_graphql::parser::parse_query(&request.query)?
                }
            };
            request.set_parsed_query(doc);
        }
        let doc = request.parsed_query()?;
        let expanded = expanded_fields(doc);
        if expanded > self.0.fields as u64 {
            return Err(limit_exceeded(format!(
                "the document is too complex: it selects {expanded} fields once its fragments are expanded; at most {} are allowed",
                self.0.fields
            )));
        }
        if let Some(message) = several_subscription_roots(doc) {
            let err = async_graphql::Error::new(message)
                .extend_with(|_, e| e.set("code", "GRAPHQL_VALIDATION_FAILED"));
            return Err(err.into_server_error(Default::default()));
        }
        if let Some(text) = parsed_text {
            self.0.documents.put(&text, doc);
        }
        // A query's answer is bounded as a whole. A subscription's events carry one
        // record each, and a mutation's answer the records it wrote (charging those
        // after the commit would refuse a write that happened).
        let ty = operation_type(doc, name.as_deref());
        if ty == Some(OperationType::Query) {
            request = request.data(Arc::new(ResponseBudget::new(self.0.response_bytes)));
        }
        Ok(request)
    }

    /// async-graphql computes the complexity while it validates; a document over the
    /// limit is refused here with a code (its own check has none).
    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        if result.complexity > self.0.complexity {
            return Err(vec![limit_exceeded(format!(
                "the document is too complex: it costs {} (pages count what they select once per record), at most {} is allowed",
                result.complexity, self.0.complexity
            ))]);
        }
        Ok(result)
    }

    /// Errors async-graphql raises itself while executing (a variable that is missing or
    /// does not parse as its type) carry no code; they are the caller's input.
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let mut response = next.run(ctx, operation_name).await;
        for err in &mut response.errors {
            let coded = err
                .extensions
                .as_ref()
                .is_some_and(|e| e.get("code").is_some());
            if !coded {
                err.extensions
                    .get_or_insert_with(Default::default)
                    .set("code", "BAD_USER_INPUT");
            }
        }
        response
    }

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
        let name = ctx.data_opt::<OperationName>().map(|n| n.0.as_str());
        if ctx.data_opt::<QueriesOnly>().is_some() && selects_mutation(&doc, name) {
            let err = async_graphql::Error::new("mutations must be sent with POST")
                .extend_with(|_, e| e.set("code", "METHOD_NOT_ALLOWED"));
            return Err(err.into_server_error(Default::default()));
        }
        if aliases > self.0.aliases {
            return Err(limit_exceeded(format!(
                "the document has {aliases} aliased fields; at most {} are allowed",
                self.0.aliases
            )));
        }
        Ok(doc)
    }
}

/// Request data marking a request that may only run queries (one sent with `GET`).
pub struct QueriesOnly;

/// Whether the operation a request named `operation_name` runs in `doc` is a
/// mutation: the named one, or the document's only one. The one detector for both the
/// `GET` handler (which answers 405 before anything runs) and the check on documents
/// from the persisted-query cache.
pub fn selects_mutation(doc: &ExecutableDocument, operation_name: Option<&str>) -> bool {
    operation_type(doc, operation_name) == Some(OperationType::Mutation)
}

/// The type of the operation a request named `operation_name` runs in `doc`, if it
/// names one the document has (or the document has only one).
pub(super) fn operation_type(
    doc: &ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<OperationType> {
    use async_graphql::parser::types::DocumentOperations;
    let op = match (&doc.operations, operation_name) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        (DocumentOperations::Multiple(_), None) => None,
    };
    op.map(|op| op.node.ty)
}

/// What a page field costs: one, plus what it selects once per record it may hold
/// (`first` or `last`; without either, 50, the default page size). A size past 1,000 is
/// counted as 1,000: it is over any sane `--max-page-size`, and the resolver refuses it
/// with a clearer `BAD_USER_INPUT`.
pub fn page_complexity(first: Option<i32>, last: Option<i32>, child_complexity: usize) -> usize {
    let size = first.or(last).unwrap_or(50).clamp(1, 1_000) as usize;
    size.saturating_mul(child_complexity).saturating_add(1)
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

/// Fields the document's operations select with every fragment spread expanded,
/// saturating; each fragment is counted once (memoized), so this is cheap even when the
/// expansion is not.
fn expanded_fields(doc: &ExecutableDocument) -> u64 {
    let mut memo: HashMap<String, u64> = HashMap::new();
    doc.operations
        .iter()
        .map(|(_, op)| expand(&op.node.selection_set.node, doc, &mut memo, &mut Vec::new()))
        .fold(0u64, u64::saturating_add)
}

fn expand(
    set: &SelectionSet,
    doc: &ExecutableDocument,
    memo: &mut HashMap<String, u64>,
    visiting: &mut Vec<String>,
) -> u64 {
    let mut total = 0u64;
    for item in &set.items {
        let n = match &item.node {
            Selection::Field(f) => {
                1u64.saturating_add(expand(&f.node.selection_set.node, doc, memo, visiting))
            }
            Selection::InlineFragment(f) => expand(&f.node.selection_set.node, doc, memo, visiting),
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.to_string();
                if let Some(n) = memo.get(&name) {
                    *n
                } else if visiting.contains(&name) {
                    // A cycle: validation refuses it later.
                    0
                } else if let Some(fragment) = doc.fragments.get(&spread.node.fragment_name.node) {
                    visiting.push(name.clone());
                    let n = expand(&fragment.node.selection_set.node, doc, memo, visiting);
                    visiting.pop();
                    memo.insert(name, n);
                    n
                } else {
                    0
                }
            }
        };
        total = total.saturating_add(n);
    }
    total
}

/// A subscription must select exactly one root field (GraphQL, "Single root field").
fn several_subscription_roots(doc: &ExecutableDocument) -> Option<String> {
    for (_, op) in doc.operations.iter() {
        if op.node.ty != OperationType::Subscription {
            continue;
        }
        let mut roots = 0usize;
        count_roots(&op.node.selection_set.node, doc, &mut roots, 0);
        if roots > 1 {
            return Some("a subscription must select exactly one root field".into());
        }
    }
    None
}

fn count_roots(set: &SelectionSet, doc: &ExecutableDocument, roots: &mut usize, depth: usize) {
    for item in &set.items {
        match &item.node {
            Selection::Field(_) => *roots += 1,
            Selection::InlineFragment(f) if depth < 8 => {
                count_roots(&f.node.selection_set.node, doc, roots, depth + 1)
            }
            Selection::FragmentSpread(s) if depth < 8 => {
                if let Some(fragment) = doc.fragments.get(&s.node.fragment_name.node) {
                    count_roots(&fragment.node.selection_set.node, doc, roots, depth + 1);
                }
            }
            _ => {}
        }
    }
}
