//! GraphQL responses as every transport writes them.

use async_graphql::Response;
use serde_json::Value;

/// A response refused before execution (parse or validation errors, which have no
/// path). As in the reference graphql-ws server, only these are sent as `error` on a
/// WebSocket; errors raised while executing arrive as results.
pub fn is_request_error(response: &Response) -> bool {
    response.is_err()
        && matches!(response.data, async_graphql::Value::Null)
        && response.errors.iter().all(|e| e.path.is_empty())
}

/// A GraphQL response as JSON, and whether it was refused before execution. A refused
/// request has no `data` entry, as the GraphQL specification requires.
pub fn response_json(response: Response) -> (bool, Value) {
    let refused = is_request_error(&response);
    let mut body = serde_json::to_value(&response).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot serialize a response");
        serde_json::json!({"errors": [{"message": "internal server error"}]})
    });
    if refused && let Value::Object(map) = &mut body {
        map.remove("data");
    }
    (refused, body)
}
