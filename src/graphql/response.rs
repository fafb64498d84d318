//! GraphQL responses as every transport writes them.

use async_graphql::Response;
use std::collections::BTreeMap;

/// A response refused before execution (parse or validation errors, which have no
/// path). As in the reference graphql-ws server, only these are sent as `error` on a
/// WebSocket; errors raised while executing arrive as results.
pub fn is_request_error(response: &Response) -> bool {
    response.is_err()
        && matches!(response.data, async_graphql::Value::Null)
        && response.errors.iter().all(|e| e.path.is_empty())
}

/// A GraphQL response as JSON text, and whether it was refused before execution. A
/// refused request has no `data` entry, as the GraphQL specification requires. The text
/// is written straight from the response: no second JSON tree of a large answer.
pub fn response_json(response: Response) -> (bool, String) {
    #[derive(serde::Serialize)]
    struct Refused<'a> {
        errors: &'a [async_graphql::ServerError],
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        extensions: &'a BTreeMap<String, async_graphql::Value>,
    }
    let refused = is_request_error(&response);
    let text = if refused {
        serde_json::to_string(&Refused {
            errors: &response.errors,
            extensions: &response.extensions,
        })
    } else {
        serde_json::to_string(&response)
    };
    let text = text.unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot serialize a response");
        r#"{"errors":[{"message":"internal server error"}]}"#.to_owned()
    });
    (refused, text)
}

/// The `extensions.code` of a response's first error.
pub fn first_error_code(response: &Response) -> Option<&str> {
    match response.errors.first()?.extensions.as_ref()?.get("code")? {
        async_graphql::Value::String(code) => Some(code),
        _ => None,
    }
}
