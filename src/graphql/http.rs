//! `/graphql` over HTTP: `POST` and `GET` queries, GraphiQL for browsers, and the
//! WebSocket upgrade.

use async_graphql::{ParseRequestError, http::GraphiQLSource};
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::{
    extract::{FromRequest, FromRequestParts, Request, State, ws::WebSocketUpgrade},
    http::{StatusCode, header},
    response::{Html, IntoResponse, Response},
};
use serde_json::json;

use super::ws;
use crate::AppState;

/// A request that is not GraphQL at all: 400 (or 413) with a GraphQL-shaped body.
pub struct GraphQLRejection(ParseRequestError);

impl From<ParseRequestError> for GraphQLRejection {
    fn from(err: ParseRequestError) -> Self {
        Self(err)
    }
}

impl IntoResponse for GraphQLRejection {
    fn into_response(self) -> Response {
        let (status, message) = match &self.0 {
            ParseRequestError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large".to_owned(),
            ),
            ParseRequestError::Io(e) if e.to_string().contains("length limit") => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large".to_owned(),
            ),
            ParseRequestError::InvalidRequest(e) => (
                StatusCode::BAD_REQUEST,
                format!("invalid GraphQL request: {e}"),
            ),
            other => (
                StatusCode::BAD_REQUEST,
                format!("invalid GraphQL request: {other}"),
            ),
        };
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "PAYLOAD_TOO_LARGE"
        } else {
            "BAD_REQUEST"
        };
        refuse(status, code, &message)
    }
}

/// An error response in GraphQL shape with a status and a code.
fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"errors": [{"message": message, "extensions": {"code": code}}]});
    (status, axum::Json(body)).into_response()
}

/// `POST /graphql`. The body must be JSON: refusing other media types also keeps a
/// cross-site form or `text/plain` request from running a mutation.
pub async fn post(State(state): State<AppState>, req: Request) -> Response {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "send the request as Content-Type: application/json",
        );
    }
    execute(&state, req).await
}

/// `GET /graphql`: the WebSocket upgrade, GraphiQL for a browser, or a query.
pub async fn get(State(state): State<AppState>, req: Request) -> Response {
    let (mut parts, body) = req.into_parts();
    let wants_upgrade = parts
        .headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if wants_upgrade {
        return match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
            Ok(upgrade) => websocket(state, upgrade),
            Err(rejection) => rejection.into_response(),
        };
    }
    let wants_html = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if wants_html && parts.uri.query().is_none_or(|q| !q.contains("query=")) {
        return graphiql().into_response();
    }
    drop(body);
    match parse_get(&parts.uri) {
        Ok(req) if is_mutation(&req) => {
            let mut resp = refuse(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "mutations must be sent with POST",
            );
            resp.headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
            resp
        }
        Ok(req) => GraphQLResponse::from(state.schema.execute(req).await).into_response(),
        Err(message) => refuse(StatusCode::BAD_REQUEST, "BAD_REQUEST", &message),
    }
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
fn parse_get(uri: &axum::http::Uri) -> Result<async_graphql::Request, String> {
    let params = axum::extract::Query::<GetParams>::try_from_uri(uri)
        .map_err(|e| format!("invalid query string: {e}"))?
        .0;
    let query = params.query.ok_or("the `query` parameter is required")?;
    let json = |name: &str, text: Option<String>| -> Result<Option<serde_json::Value>, String> {
        text.map(|t| serde_json::from_str(&t).map_err(|e| format!("`{name}` is not JSON: {e}")))
            .transpose()
    };
    let mut req = async_graphql::Request::new(query);
    if let Some(variables) = json("variables", params.variables)? {
        if !variables.is_object() && !variables.is_null() {
            return Err("`variables` must be a JSON object".into());
        }
        req = req.variables(async_graphql::Variables::from_json(variables));
    }
    if let Some(extensions) = json("extensions", params.extensions)? {
        req.extensions = serde_json::from_value(extensions)
            .map_err(|_| "`extensions` must be a JSON object".to_owned())?;
    }
    if let Some(name) = params.operation_name {
        req = req.operation_name(name);
    }
    Ok(req)
}

/// Parses and executes a GraphQL request sent with `POST`.
async fn execute(state: &AppState, req: Request) -> Response {
    match GraphQLRequest::<GraphQLRejection>::from_request(req, state).await {
        Ok(req) => {
            GraphQLResponse::from(state.schema.execute(req.into_inner()).await).into_response()
        }
        Err(rejection) => rejection.into_response(),
    }
}

/// Whether `req` selects a mutation.
fn is_mutation(req: &async_graphql::Request) -> bool {
    use async_graphql::parser::types::{DocumentOperations, OperationType};
    let Ok(doc) = async_graphql::parser::parse_query(&req.query) else {
        // Unparseable: execution reports the syntax error.
        return false;
    };
    let selected = match (&doc.operations, req.operation_name.as_deref()) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(_), None) => None,
    };
    selected.is_some_and(|op| op.node.ty == OperationType::Mutation)
}

/// GraphiQL, with subscriptions over the same endpoint.
fn graphiql() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql")
            .title("recordsync")
            .finish(),
    )
}

fn websocket(state: AppState, upgrade: WebSocketUpgrade) -> Response {
    let config = &state.config;
    let limits = ws::WsLimits {
        init_timeout: config.ws_init_timeout,
        max_subscriptions: config.ws_max_subscriptions,
        send_queue: config.ws_send_queue,
    };
    let upgrade = upgrade
        .protocols([ws::PROTOCOL])
        .max_message_size(config.ws_max_message_bytes)
        .max_frame_size(config.ws_max_message_bytes);
    let supported = upgrade.selected_protocol().is_some();
    let tasks = state.tasks.clone();
    upgrade.on_upgrade(move |socket| {
        tasks.track_future(async move {
            if supported {
                ws::serve(socket, state.schema.clone(), limits, state.shutdown.clone()).await;
            } else {
                ws::reject_subprotocol(socket).await;
            }
        })
    })
}
