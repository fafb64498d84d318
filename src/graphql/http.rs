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
            ParseRequestError::PayloadTooLarge => {
                (StatusCode::PAYLOAD_TOO_LARGE, "request body too large".to_owned())
            }
            ParseRequestError::Io(e) if e.to_string().contains("length limit") => {
                (StatusCode::PAYLOAD_TOO_LARGE, "request body too large".to_owned())
            }
            ParseRequestError::InvalidRequest(e) => {
                (StatusCode::BAD_REQUEST, format!("invalid GraphQL request: {e}"))
            }
            other => (StatusCode::BAD_REQUEST, format!("invalid GraphQL request: {other}")),
        };
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE { "PAYLOAD_TOO_LARGE" } else { "BAD_REQUEST" };
        let body = json!({"errors": [{"message": message, "extensions": {"code": code}}]});
        (status, axum::Json(body)).into_response()
    }
}

/// `POST /graphql`.
pub async fn post(
    State(state): State<AppState>,
    req: GraphQLRequest<GraphQLRejection>,
) -> GraphQLResponse {
    state.schema.execute(req.into_inner()).await.into()
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
    let req = Request::from_parts(parts, body);
    match GraphQLRequest::<GraphQLRejection>::from_request(req, &state).await {
        Ok(req) => GraphQLResponse::from(state.schema.execute(req.into_inner()).await).into_response(),
        Err(rejection) => rejection.into_response(),
    }
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
