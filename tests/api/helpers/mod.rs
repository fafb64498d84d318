//! Starting the real server on 127.0.0.1:0 and talking to it as clients do.

pub mod binary;

use std::{
    net::SocketAddr,
    sync::{Arc, Once},
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use recordsync::{App, Config, service::Service};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tokio::{net::TcpStream, sync::oneshot, task::JoinHandle};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue, protocol::CloseFrame},
};

/// How long a test waits for something that must arrive.
pub const ARRIVE: Duration = Duration::from_secs(10);
/// How long a test waits to be sure something does not arrive.
pub const SILENCE: Duration = Duration::from_millis(300);

static TRACING: Once = Once::new();

/// Logs go to the test output only when `TEST_LOG` is set.
fn init_tracing() {
    TRACING.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            recordsync::telemetry::init(recordsync::config::LogFormat::Pretty);
        }
    });
}

/// The database a test runs on: a SQLite file in a temporary folder, or a fresh
/// PostgreSQL database that is dropped when the last app using it is gone.
pub struct TestDb {
    /// The URL the server connects to.
    pub url: String,
    /// The PostgreSQL database's name (to drop it), or `None` for SQLite.
    pg_name: Option<String>,
    _dir: tempfile::TempDir,
}

/// Whether the suite runs on PostgreSQL: `RECORDSYNC_TEST_BACKEND` is `sqlite` (the
/// default) or `postgres`.
pub fn on_postgres() -> bool {
    match std::env::var("RECORDSYNC_TEST_BACKEND").as_deref() {
        Err(std::env::VarError::NotPresent) | Ok("sqlite") => false,
        Ok("postgres") => true,
        other => panic!("RECORDSYNC_TEST_BACKEND must be `sqlite` or `postgres`, not {other:?}"),
    }
}

/// The PostgreSQL server the PostgreSQL suites use (its maintenance database).
pub fn postgres_admin_url() -> String {
    std::env::var("RECORDSYNC_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

impl TestDb {
    /// A fresh, empty database of the suite's backend.
    pub async fn fresh() -> Arc<Self> {
        if on_postgres() {
            Self::postgres().await
        } else {
            Self::sqlite()
        }
    }

    /// A SQLite file in a fresh temporary folder.
    pub fn sqlite() -> Arc<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        Arc::new(Self {
            url,
            pg_name: None,
            _dir: dir,
        })
    }

    /// A fresh database on the PostgreSQL server of [`postgres_admin_url`].
    pub async fn postgres() -> Arc<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let admin = postgres_admin_url();
        let name = format!("recordsync_test_{}", uuid::Uuid::new_v4().simple());
        let conn = sea_orm::Database::connect(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is unreachable at {admin} (set RECORDSYNC_TEST_POSTGRES_URL): {e}"
                )
            });
        conn.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create test database");
        let _ = conn.close().await;
        let (base, _) = admin.rsplit_once('/').expect("database URL with a path");
        let url = format!("{base}/{name}");
        Arc::new(Self {
            url,
            pg_name: Some(name),
            _dir: dir,
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        let admin = postgres_admin_url();
        // Drop runs outside any runtime guarantee: use a short-lived one of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let conn = sea_orm::Database::connect(&admin).await.ok()?;
                conn.execute_unprepared(&format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                ))
                .await
                .ok()?;
                conn.close().await.ok()
            })
        })
        .join();
    }
}

/// A running server with a fresh database.
pub struct TestApp {
    /// Where it listens.
    pub addr: SocketAddr,
    /// An HTTP client.
    pub http: reqwest::Client,
    /// The server's service, to inspect counters.
    pub service: Service,
    /// The database, shared with other apps on it.
    pub db: Arc<TestDb>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

/// A server with the default settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A server whose settings `configure` adjusts.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    spawn_on(TestDb::fresh().await, configure).await
}

/// A server on an existing database (to restart one, or to run several).
pub async fn spawn_on(db: Arc<TestDb>, configure: impl FnOnce(&mut Config)) -> TestApp {
    init_tracing();
    let mut config = Config {
        database_url: db.url.clone(),
        ..Config::default()
    };
    configure(&mut config);
    let app = App::build(config).await.expect("build app");
    let service = app.service().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(app.serve(listener, async move {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        http: reqwest::Client::new(),
        service,
        db,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    /// `http://…/graphql`.
    pub fn url(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }

    /// `http://…/api{path}`.
    pub fn api(&self, path: &str) -> String {
        format!("http://{}/api{path}", self.addr)
    }

    /// Creates a record over REST and returns it.
    pub async fn rest_create(&self, collection: &str, data: Value) -> Value {
        let resp = self
            .http
            .post(self.api("/records"))
            .json(&json!({"collection": collection, "data": data}))
            .send()
            .await
            .expect("POST /api/records");
        assert_eq!(resp.status(), 201);
        resp.json().await.expect("JSON record")
    }

    /// `ws://…/graphql`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/graphql", self.addr)
    }

    /// POSTs a GraphQL request and returns the whole response body.
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        let resp = self
            .http
            .post(self.url())
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .expect("POST /graphql");
        resp.json().await.expect("JSON response")
    }

    /// POSTs any JSON body to `/graphql` and returns the response body.
    pub async fn post_json(&self, body: Value) -> Value {
        let resp = self
            .http
            .post(self.url())
            .json(&body)
            .send()
            .await
            .expect("POST /graphql");
        resp.json().await.expect("JSON response")
    }

    /// GETs `/graphql` with these query parameters and returns the response body.
    pub async fn get_json(&self, params: &[(&str, String)]) -> Value {
        let resp = self
            .http
            .get(self.url())
            .query(params)
            .send()
            .await
            .expect("GET /graphql");
        resp.json().await.expect("JSON response")
    }

    /// Runs a request that must succeed and returns its `data`.
    pub async fn data(&self, query: &str, variables: Value) -> Value {
        let resp = self.gql(query, variables).await;
        assert!(resp.get("errors").is_none(), "unexpected errors: {resp}");
        resp["data"].clone()
    }

    /// Creates a record and returns it.
    pub async fn create(&self, collection: &str, data: Value) -> Value {
        let d = self
            .data(
                "mutation($c: String!, $d: JSON!) { createRecord(input: {collection: $c, data: $d}) { id collection data version createdAt updatedAt } }",
                json!({"c": collection, "d": data}),
            )
            .await;
        d["createRecord"].clone()
    }

    /// Replaces a record's data and returns it.
    pub async fn update(&self, id: &str, data: Value) -> Value {
        let d = self
            .data(
                "mutation($id: UUID!, $d: JSON!) { updateRecord(id: $id, data: $d) { id data version } }",
                json!({"id": id, "d": data}),
            )
            .await;
        d["updateRecord"].clone()
    }

    /// Deletes a record and returns its last state.
    pub async fn delete(&self, id: &str) -> Value {
        let d = self
            .data(
                "mutation($id: UUID!) { deleteRecord(id: $id) { id data version } }",
                json!({"id": id}),
            )
            .await;
        d["deleteRecord"].clone()
    }

    /// The change-log head as a cursor.
    pub async fn head_cursor(&self) -> String {
        let d = self
            .data("{ records(first: 0) { changeCursor } }", json!({}))
            .await;
        d["records"]["changeCursor"]
            .as_str()
            .expect("changeCursor")
            .to_owned()
    }

    /// Waits until `n` subscriptions are listening to the live stream, so that a test
    /// can write knowing a subscription without `after` is in place.
    pub async fn wait_for_receivers(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + ARRIVE;
        while self.service.broker().receivers() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "subscriptions did not start"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Every change in the log, as `changes` returns them.
    pub async fn all_changes(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = Value::Null;
        loop {
            let d = self
                .data(
                    "query($after: String) { changes(after: $after, first: 500) { nodes { cursor kind record { id version data } } changeCursor pageInfo { hasNextPage } } }",
                    json!({"after": after}),
                )
                .await;
            out.extend(
                d["changes"]["nodes"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
            after = d["changes"]["changeCursor"].clone();
            if d["changes"]["pageInfo"]["hasNextPage"] != json!(true) {
                return out;
            }
        }
    }

    /// Every record, ordered by id.
    pub async fn all_records(&self) -> Vec<Value> {
        let d = self
            .data(
                "{ records(first: 500, orderBy: {field: ID}) { nodes { id collection data version } } }",
                json!({}),
            )
            .await;
        d["records"]["nodes"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Stops the server as SIGTERM would, waits until it has finished, and hands back
    /// its database.
    pub async fn stop(mut self) -> Arc<TestDb> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(ARRIVE, server)
                .await
                .expect("server stops in time")
                .expect("server task")
                .expect("server result");
        }
        Arc::clone(&self.db)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The `extensions.code` of the first error.
pub fn error_code(resp: &Value) -> &str {
    resp["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<no code>")
}

/// A hand-driven `graphql-transport-ws` client, for checking the protocol itself.
pub struct WsClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl WsClient {
    /// Connects offering `protocol` (or none), without `connection_init`.
    pub async fn connect_raw(app: &TestApp, protocol: Option<&str>) -> Self {
        Self::connect_raw_url(&app.ws_url(), protocol).await
    }

    /// Connects to `url` offering `protocol` (or none), without `connection_init`.
    pub async fn connect_raw_url(url: &str, protocol: Option<&str>) -> Self {
        let mut req = url.into_client_request().expect("request");
        if let Some(p) = protocol {
            req.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_str(p).expect("header"),
            );
        }
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("websocket connect");
        Self { ws }
    }

    /// Connects with the legacy `graphql-ws` subprotocol and completes
    /// `connection_init` / `connection_ack`; the first `ka` is left unread.
    pub async fn connect_legacy(app: &TestApp) -> Self {
        let mut c = Self::connect_raw(app, Some("graphql-ws")).await;
        c.send(json!({"type": "connection_init", "payload": {}}))
            .await;
        let ack = c.recv().await;
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        c
    }

    /// The next frame of any kind, pings included; `None` when the socket ended.
    pub async fn next_frame(&mut self) -> Option<Message> {
        tokio::time::timeout(ARRIVE, self.ws.next())
            .await
            .expect("a frame in time")
            .and_then(Result::ok)
    }

    /// The next protocol message that is not a legacy `ka`.
    pub async fn recv_skipping_ka(&mut self) -> Value {
        loop {
            let msg = self.recv().await;
            if msg["type"] != "ka" {
                return msg;
            }
        }
    }

    /// Connects and completes `connection_init` / `connection_ack`.
    pub async fn connect(app: &TestApp) -> Self {
        Self::connect_url(&app.ws_url()).await
    }

    /// Connects to `url` and completes `connection_init` / `connection_ack`.
    pub async fn connect_url(url: &str) -> Self {
        let mut c = Self::connect_raw_url(url, Some("graphql-transport-ws")).await;
        c.send(json!({"type": "connection_init"})).await;
        let ack = c.recv().await;
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        c
    }

    /// Sends a JSON message.
    pub async fn send(&mut self, msg: Value) {
        self.ws
            .send(Message::Text(msg.to_string().into()))
            .await
            .expect("send");
    }

    /// Sends a message; whether the socket took it.
    pub async fn try_send(&mut self, msg: Value) -> bool {
        self.ws.send(Message::text(msg.to_string())).await.is_ok()
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.to_owned().into()))
            .await
            .expect("send");
    }

    /// The next protocol message; panics on close or after [`ARRIVE`].
    pub async fn recv(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(ARRIVE, self.ws.next())
                .await
                .expect("a message in time")
                .expect("socket open")
                .expect("socket ok");
            match msg {
                Message::Text(t) => return serde_json::from_str(&t).expect("JSON message"),
                Message::Close(frame) => panic!("closed: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// Waits for the server to close; returns the close code and reason.
    pub async fn expect_close(&mut self) -> (u16, String) {
        loop {
            let msg = tokio::time::timeout(ARRIVE, self.ws.next())
                .await
                .expect("close in time");
            match msg {
                Some(Ok(Message::Close(Some(CloseFrame { code, reason })))) => {
                    return (code.into(), reason.to_string());
                }
                Some(Ok(Message::Close(None))) | None => return (1005, String::new()),
                Some(Ok(Message::Text(t))) => panic!("expected close, got {t}"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("expected close, got error {e}"),
            }
        }
    }

    /// Waits for the server to close, skipping any messages sent before the close frame.
    pub async fn expect_close_after_messages(&mut self) -> (u16, String) {
        loop {
            let msg = tokio::time::timeout(ARRIVE, self.ws.next())
                .await
                .expect("close in time");
            match msg {
                Some(Ok(Message::Close(Some(CloseFrame { code, reason })))) => {
                    return (code.into(), reason.to_string());
                }
                Some(Ok(Message::Close(None))) | None => return (1005, String::new()),
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("expected close, got error {e}"),
            }
        }
    }

    /// Asserts nothing arrives for [`SILENCE`].
    pub async fn expect_silence(&mut self) {
        let until = tokio::time::Instant::now() + SILENCE;
        loop {
            match tokio::time::timeout_at(until, self.ws.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Message::Text(t)))) => panic!("expected silence, got {t}"),
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(other) => panic!("expected silence, got {other:?}"),
            }
        }
    }

    /// Starts operation `id`.
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({"type": "subscribe", "id": id, "payload": {"query": query, "variables": variables}}))
            .await;
    }

    /// Subscribes to `recordChanged` with `args` (GraphQL argument text).
    pub async fn subscribe_changes(&mut self, id: &str, args: &str) {
        let query = format!(
            "subscription {{ recordChanged{args} {{ cursor kind changedAt record {{ id collection data version }} }} }}"
        );
        self.subscribe(id, &query, json!({})).await;
    }

    /// The next `recordChanged` event of operation `id`.
    pub async fn next_change(&mut self, id: &str) -> Value {
        let msg = self.recv().await;
        assert_eq!(msg["type"], "next", "{msg}");
        assert_eq!(msg["id"], id, "{msg}");
        assert!(msg["payload"].get("errors").is_none(), "{msg}");
        msg["payload"]["data"]["recordChanged"].clone()
    }

    /// The code of the error that ends operation `id`: sent as `next` with errors and
    /// then `complete`, as the reference graphql-ws server does for execution errors.
    pub async fn operation_error_code(&mut self, id: &str) -> String {
        let msg = self.recv().await;
        assert_eq!(msg["type"], "next", "{msg}");
        assert_eq!(msg["id"], id, "{msg}");
        assert_eq!(msg["payload"]["data"], Value::Null, "{msg}");
        let code = msg["payload"]["errors"][0]["extensions"]["code"]
            .as_str()
            .expect("code")
            .to_owned();
        assert_eq!(self.recv().await, json!({"type": "complete", "id": id}));
        code
    }

    /// The next `n` events of operation `id`.
    pub async fn next_changes(&mut self, id: &str, n: usize) -> Vec<Value> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.next_change(id).await);
        }
        out
    }
}

/// The cursors of a list of changes.
pub fn cursors(changes: &[Value]) -> Vec<String> {
    changes
        .iter()
        .map(|c| c["cursor"].as_str().expect("cursor").to_owned())
        .collect()
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// `event:`, `message` when absent.
    pub name: String,
    /// `id:`.
    pub id: Option<String>,
    /// `data:` lines joined with newlines.
    pub data: String,
}

impl SseEvent {
    /// The data as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).expect("JSON event data")
    }
}

/// A server-sent event stream read from a streaming HTTP response.
pub struct SseStream {
    resp: reqwest::Response,
    buf: String,
    /// Comment lines seen so far (keep-alives).
    pub comments: usize,
}

impl SseStream {
    /// Reads events from `resp`, which must be a 200 event stream.
    pub fn new(resp: reqwest::Response) -> Self {
        assert_eq!(resp.status(), 200, "event stream status");
        let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        Self {
            resp,
            buf: String::new(),
            comments: 0,
        }
    }

    /// The next event; `None` when the stream ended. Panics after [`ARRIVE`].
    pub async fn next(&mut self) -> Option<SseEvent> {
        tokio::time::timeout(ARRIVE, self.next_inner())
            .await
            .expect("an event in time")
    }

    async fn next_inner(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut event = SseEvent {
                    name: "message".into(),
                    id: None,
                    data: String::new(),
                };
                let mut data = Vec::new();
                for line in block.lines() {
                    if line.starts_with(':') {
                        self.comments += 1;
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event.name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        event.id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
                    }
                }
                if data.is_empty() && event.id.is_none() && event.name == "message" {
                    continue;
                }
                event.data = data.join("\n");
                return Some(event);
            }
            match self.resp.chunk().await {
                Ok(Some(chunk)) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// The next event, which must be a `next` carrying a GraphQL response.
    pub async fn next_result(&mut self) -> Value {
        let event = self.next().await.expect("a next event");
        assert_eq!(event.name, "next", "{event:?}");
        event.json()
    }

    /// Asserts that no event arrives for [`SILENCE`] (comments may).
    pub async fn expect_silence(&mut self) {
        if let Ok(event) = tokio::time::timeout(SILENCE, self.next_inner()).await {
            panic!("expected silence, got {event:?}");
        }
    }
}
