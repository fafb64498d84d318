//! A real graphql-ws client implementation (the `graphql-ws-client` crate) against the
//! server, rather than hand-written frames.

use futures_util::StreamExt;
use graphql_ws_client::{Client, graphql::GraphqlOperation};
use serde::Serialize;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};

use super::helpers::{ARRIVE, spawn_app};

#[derive(Serialize)]
struct Operation {
    query: String,
    variables: Value,
}

impl GraphqlOperation for Operation {
    type Response = Value;
    type Error = serde_json::Error;

    fn decode(&self, data: Value) -> Result<Value, serde_json::Error> {
        Ok(data)
    }
}

#[tokio::test]
async fn the_graphql_ws_client_receives_every_change_and_resumes() {
    let app = spawn_app().await;
    let start = app.head_cursor().await;

    let mut request = app.ws_url().into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let (client, actor) = Client::build(socket).await.unwrap();
    tokio::spawn(actor.into_future());

    let op = |after: &str| {
        Operation {
        query: "subscription($after: String) { recordChanged(collection: \"todos\", after: $after) { cursor kind record { data } } }".into(),
        variables: json!({"after": after}),
    }
    };
    let mut sub = client.subscribe(op(&start)).await.unwrap();
    let a = app.create("todos", json!({"title": "a"})).await;
    app.update(a["id"].as_str().unwrap(), json!({"title": "b"}))
        .await;

    let mut events = Vec::new();
    for _ in 0..2 {
        let item = tokio::time::timeout(ARRIVE, sub.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        events.push(item["data"]["recordChanged"].clone());
    }
    assert_eq!(events[0]["kind"], "CREATED");
    assert_eq!(events[1]["kind"], "UPDATED");
    assert_eq!(events[1]["record"]["data"], json!({"title": "b"}));
    sub.stop();

    // A second subscription on the same client resumes after the first event.
    let mut resumed = client
        .subscribe(op(events[0]["cursor"].as_str().unwrap()))
        .await
        .unwrap();
    let item = tokio::time::timeout(ARRIVE, resumed.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(item["data"]["recordChanged"]["cursor"], events[1]["cursor"]);
}
