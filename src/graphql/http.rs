//! `/graphql` over HTTP, following the GraphQL-over-HTTP specification, plus GraphiQL
//! for browsers, the WebSocket upgrade, and event streams for clients that ask for
//! `text/event-stream`.
//!
//! The specification is a living draft; this follows its text of 2025-05-08 (the one
//! the graphql-http conformance audits check), as the README explains:
//! - `POST` bodies must be `application/json` (else 415) and a JSON object (else 400)
//!   with a string `query`; `operationName` a string or null, `variables` and
//!   `extensions` objects or null (else 400); other keys are ignored. A body over
//!   `--max-body-bytes` is 413.
//! - `GET` reads `query`, `operationName` (empty means none), and JSON-encoded
//!   `variables` and `extensions` from the query string, and runs queries only: a
//!   mutation is 405 with `Allow: POST`. Other methods are 405 with `Allow: GET, POST`.
//! - The response is `application/graphql-response+json` when the `Accept` header
//!   prefers it, else `application/json` (also for `*/*` and a missing `Accept`). An
//!   `Accept` naming neither (nor `text/event-stream`) is 406.
//! - A request refused before execution (parse or validation errors, variables that do
//!   not coerce) has no `data` entry. With `application/graphql-response+json` it is
//!   400; with `application/json` it is 200. A request that executed is 200 either way,
//!   even when a field failed.

use axum::{
    body::Body,
    extract::{FromRequestParts, Request, State, ws::WebSocketUpgrade},
    http::{HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value};

use super::{
    GraphqlState, limits,
    response::{first_error_code, response_json},
    sse, ws,
};
use crate::{
    error::{Error, Result},
    http::{
        authorization,
        request::{has_media_type, negotiate, read_body},
        sse::EVENT_STREAM,
    },
};

/// The response media type the specification defines.
pub const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
/// The legacy response media type every client understands.
pub const JSON: &str = "application/json";

/// `POST /graphql`. The body must be JSON: refusing other media types also keeps a
/// cross-site form or `text/plain` request from running a mutation.
pub async fn post(State(state): State<GraphqlState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    match read_post(&state, &parts, body).await {
        Ok(request) => respond(&state, &parts, request).await,
        Err(err) => err.into_graphql_response(),
    }
}

async fn read_post(
    state: &GraphqlState,
    parts: &Parts,
    body: Body,
) -> Result<async_graphql::Request> {
    if !has_media_type(&parts.headers, &[JSON]) {
        return Err(Error::UnsupportedMediaType(
            "send the request as Content-Type: application/json".into(),
        ));
    }
    let bytes = read_body(body, state.max_body_bytes).await?;
    let body: Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::bad_request(format!("the body is not JSON: {e}")))?;
    let Value::Object(mut params) = body else {
        return Err(Error::bad_request(
            "the body must be a JSON object with a `query`",
        ));
    };
    let persisted = params
        .get("extensions")
        .is_some_and(|e| e.get("persistedQuery").is_some());
    let query = match params.remove("query") {
        Some(Value::String(q)) => q,
        // Apollo's persisted queries send only the hash once the server knows it.
        None | Some(Value::Null) if persisted => String::new(),
        None | Some(Value::Null) => return Err(Error::bad_request("`query` is required")),
        Some(_) => return Err(Error::bad_request("`query` must be a string")),
    };
    let operation_name = match params.remove("operationName") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(name),
        Some(_) => {
            return Err(Error::bad_request(
                "`operationName` must be a string or null",
            ));
        }
    };
    let variables = object_param("variables", params.remove("variables"))?;
    let extensions = object_param("extensions", params.remove("extensions"))?;
    build(query, operation_name, variables, extensions)
}

/// A parameter that must be a JSON object or null.
fn object_param(name: &str, value: Option<Value>) -> Result<Option<Map<String, Value>>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(Error::bad_request(format!(
            "`{name}` must be a JSON object or null"
        ))),
    }
}

/// The request async-graphql runs.
fn build(
    query: String,
    operation_name: Option<String>,
    variables: Option<Map<String, Value>>,
    extensions: Option<Map<String, Value>>,
) -> Result<async_graphql::Request> {
    let mut req = async_graphql::Request::new(query);
    // "Setting the value of the {operationName} parameter to the empty string is
    // equivalent to omitting the {operationName} parameter."
    if let Some(name) = operation_name.filter(|n| !n.is_empty()) {
        req = req.operation_name(name);
    }
    if let Some(variables) = variables {
        req = req.variables(async_graphql::Variables::from_json(Value::Object(
            variables,
        )));
    }
    if let Some(extensions) = extensions {
        req.extensions = serde_json::from_value(Value::Object(extensions))
            .map_err(|e| Error::bad_request(format!("`extensions` is not valid: {e}")))?;
    }
    Ok(req)
}

/// `GET /graphql`: the WebSocket upgrade, GraphiQL for a browser, or a query.
pub async fn get(State(state): State<GraphqlState>, req: Request) -> Response {
    let (mut parts, _body) = req.into_parts();
    let wants_upgrade = parts
        .headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if wants_upgrade {
        return match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
            Ok(upgrade) => ws::upgrade(state, upgrade, &parts),
            Err(rejection) => rejection.into_response(),
        };
    }
    let wants_html = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    let has_query = parts
        .uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("query=")));
    if wants_html && !has_query {
        return crate::web::graphiql().into_response();
    }
    let request = match parse_get(&parts.uri) {
        Ok(request) => request,
        Err(err) => return err.into_graphql_response(),
    };
    if is_mutation(&request) {
        return Error::MethodNotAllowed {
            message: "mutations must be sent with POST".into(),
            allow: "POST",
        }
        .into_graphql_response();
    }
    // A persisted query's document is only known after the cache lookup, so the schema
    // checks again.
    let mut request = request.data(super::limits::QueriesOnly);
    if let Some(name) = request.operation_name.clone() {
        request = request.data(super::limits::OperationName(name));
    }
    respond(&state, &parts, request).await
}

/// Any other method on `/graphql`.
pub async fn other_method() -> Response {
    Error::MethodNotAllowed {
        message: "/graphql accepts GET and POST".into(),
        allow: "GET, POST",
    }
    .into_graphql_response()
}

/// The parameters of a GraphQL `GET` request, named as GraphQL over HTTP names them.
#[derive(serde::Deserialize)]
struct GetParams {
    query: Option<String>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
}

/// Reads a GraphQL request from a `GET` query string.
fn parse_get(uri: &axum::http::Uri) -> Result<async_graphql::Request> {
    let params = axum::extract::Query::<GetParams>::try_from_uri(uri)
        .map_err(|e| Error::bad_request(format!("invalid query string: {e}")))?
        .0;
    let persisted = params
        .extensions
        .as_deref()
        .is_some_and(|e| e.contains("persistedQuery"));
    let query = match params.query {
        Some(q) => q,
        // Apollo's persisted queries send only the hash once the server knows it.
        None if persisted => String::new(),
        None => return Err(Error::bad_request("the `query` parameter is required")),
    };
    let json = |name: &str, text: Option<String>| -> Result<Option<Value>> {
        text.map(|t| {
            serde_json::from_str(&t)
                .map_err(|e| Error::bad_request(format!("`{name}` is not JSON: {e}")))
        })
        .transpose()
    };
    let variables = object_param("variables", json("variables", params.variables)?)?;
    let extensions = object_param("extensions", json("extensions", params.extensions)?)?;
    build(query, params.operation_name, variables, extensions)
}

/// Runs a well-formed request and answers in the media type the client prefers: an
/// event stream, or one JSON response.
async fn respond(state: &GraphqlState, parts: &Parts, request: async_graphql::Request) -> Response {
    let headers = &parts.headers;
    let access = match state.auth.authenticate(authorization(headers)) {
        Ok(access) => access,
        Err(err) => return err.into_graphql_response(),
    };
    let media = match negotiate(headers, JSON, &[GRAPHQL_RESPONSE, JSON, EVENT_STREAM]) {
        Some(EVENT_STREAM) => {
            let (caller, expires_at) = (crate::http::caller(&access, parts), access.expires_at);
            return sse::serve(state, request.data(access), caller, expires_at);
        }
        Some(media) => media,
        None => {
            return Error::NotAcceptable(format!(
                "answers are {GRAPHQL_RESPONSE}, {JSON} or {EVENT_STREAM}"
            ))
            .into_graphql_response();
        }
    };
    let response = state.schema.execute(request.data(access)).await;
    let method_not_allowed = first_error_code(&response) == Some("METHOD_NOT_ALLOWED");
    let (refused, body) = response_json(response);
    if refused && method_not_allowed {
        // A persisted document turned out to be a mutation sent with GET: the same 405
        // as a mutation sent in full.
        return Error::MethodNotAllowed {
            message: "mutations must be sent with POST".into(),
            allow: "POST",
        }
        .into_graphql_response();
    }
    let status = if refused && media == GRAPHQL_RESPONSE {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let content_type = if media == GRAPHQL_RESPONSE {
        "application/graphql-response+json; charset=utf-8"
    } else {
        "application/json; charset=utf-8"
    };
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}

/// Whether `req` selects a mutation (see [`limits::selects_mutation`]).
fn is_mutation(req: &async_graphql::Request) -> bool {
    match async_graphql::parser::parse_query(&req.query) {
        Ok(doc) => limits::selects_mutation(&doc, req.operation_name.as_deref()),
        // Unparseable: execution reports the syntax error.
        Err(_) => false,
    }
}
