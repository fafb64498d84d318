//! Hundreds of malformed or hostile requests against the running server, on every
//! transport: GraphQL over `POST` and `GET`, server-sent events, both WebSocket
//! subprotocols, REST, and raw sockets underneath them (deep nesting, huge strings,
//! invalid UTF-8, wrong JSON types, truncated frames, garbage and forged cursors,
//! SQL-looking strings, mutations that must be refused).
//!
//! Each request must be refused cleanly: an HTTP 4xx with a JSON error body, a GraphQL
//! error (with its `extensions.code` once a resolver ran), a WebSocket close code or
//! the protocol's `error` message. Never a 5xx, never silence. Hostile-looking input
//! that is valid (SQL in a filter value, a forged but well-formed cursor) is answered
//! normally and matches only what it should. Afterwards the records and the change log
//! are exactly as before, no subscription is left behind, and the server still serves.
//!
//! The corpus runs on the suite's backend (SQLite, or PostgreSQL with
//! `RECORDSYNC_TEST_BACKEND=postgres`). Its cases live in one module per transport;
//! [`runner`] sends them and judges the answers.

mod graphql;
mod graphql_http;
mod rest;
mod round_trip;
mod runner;
mod tcp;
mod ws;

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::Arc,
    time::{Duration, Instant},
};

use super::helpers::{ARRIVE, SseStream, TestApp, TestDb, WsClient, spawn_on};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use futures_util::{SinkExt, StreamExt, stream};
use reqwest::{Method, header::HeaderValue};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{
        Message,
        client::IntoClientRequest,
        http::HeaderValue as WsHeaderValue,
        protocol::{
            CloseFrame,
            frame::{
                Frame,
                coding::{Data, OpCode},
            },
        },
    },
};

/// How long one request may take before it counts as a hang.
const PROBE_TIMEOUT: Duration = Duration::from_secs(8);
/// Requests in flight at once.
const CONCURRENCY: usize = 16;
/// The WebSocket init timeout of the server under test, short so that a client that
/// never sends `connection_init` is part of the corpus.
const INIT_TIMEOUT: Duration = Duration::from_secs(2);
/// `GET` requests are built only for documents that fit in a plausible URL.
const MAX_GET_URL: usize = 16 * 1024;
/// The subprotocols.
const TRANSPORT_WS: &str = "graphql-transport-ws";
const LEGACY_WS: &str = "graphql-ws";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_are_refused_and_change_nothing() {
    let db = TestDb::fresh().await;
    let mut limits = Limits::default();
    let app = spawn_on(db, |c| {
        c.ws_init_timeout = INIT_TIMEOUT;
        limits = Limits {
            body: c.max_body_bytes,
            ws_message: c.ws_max_message_bytes,
            data: c.max_data_bytes,
            page: c.max_page_size as usize,
        };
    })
    .await;
    let seed = seed(&app).await;
    let records = app.all_records().await;
    let changes = app.all_changes().await;

    let cases = corpus(&seed, &limits);
    let started = Instant::now();
    let ctx = Ctx {
        app: &app,
        limits: &limits,
    };
    let results: Vec<(&'static str, String, Result<(), String>)> = stream::iter(cases)
        .map(|case| {
            let ctx = &ctx;
            async move {
                let outcome = tokio::time::timeout(PROBE_TIMEOUT, ctx.run(&case.probe))
                    .await
                    .unwrap_or_else(|_| Err(format!("no answer within {PROBE_TIMEOUT:?}")));
                (case.probe.transport(), case.name, outcome)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;

    let mut per_transport: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failures = String::new();
    for (transport, name, outcome) in &results {
        *per_transport.entry(transport).or_default() += 1;
        if let Err(why) = outcome {
            let _ = writeln!(failures, "[{transport}] {name}\n    -> {why}");
        }
    }
    eprintln!(
        "{} hostile requests in {:.1?}: {per_transport:?}",
        results.len(),
        started.elapsed()
    );
    assert!(results.len() >= 500, "the corpus shrank: {}", results.len());
    assert!(
        failures.is_empty(),
        "requests not refused cleanly:\n{failures}"
    );

    // Nothing changed, nothing was published, nothing is left running.
    assert_eq!(app.all_records().await, records, "records changed");
    assert_eq!(app.all_changes().await, changes, "change log changed");
    let deadline = tokio::time::Instant::now() + ARRIVE;
    while app.service.broker().receivers() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} subscriptions left running",
            app.service.broker().receivers()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // And the server still serves: a query, a mutation, and its live event.
    let d = app
        .data(
            "{ records(collection: \"todos\") { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(d["records"]["totalCount"], seed.todos);
    let mut ws = WsClient::connect(&app).await;
    ws.subscribe_changes("after", "(collection: \"todos\")")
        .await;
    app.wait_for_receivers(1).await;
    let created = app.create("todos", json!({"title": "still here"})).await;
    let event = ws.next_change("after").await;
    assert_eq!(event["record"]["id"], created["id"]);
    assert_eq!(app.all_changes().await.len(), changes.len() + 1);
}

/// The server's limits, which decide some expected answers.
#[derive(Default)]
struct Limits {
    body: usize,
    ws_message: usize,
    data: usize,
    page: usize,
}

/// What the corpus aims at.
struct Seed {
    /// Every record, for the `dataContains` oracle.
    records: Vec<Value>,
    /// Records in `todos`.
    todos: usize,
    /// A record that exists, and its version.
    live: String,
    live_version: i64,
    /// A record that was deleted.
    deleted: String,
    /// An id that never existed.
    missing: String,
    /// A real `records` cursor under the default ordering (`CREATED_AT`).
    created_cursor: String,
    /// A real `records` cursor under `ID` ordering.
    id_cursor: String,
    /// A real change cursor (the first change) and the log's head.
    change_cursor: String,
    head: String,
}

/// A few records, one updated, one patched over REST, one deleted, some with data that
/// looks like SQL.
async fn seed(app: &TestApp) -> Seed {
    let milk = app
        .create("todos", json!({"title": "Buy milk", "done": false}))
        .await;
    app.create(
        "todos",
        json!({"title": "Robert'); DROP TABLE record;--", "done": true}),
    )
    .await;
    app.create("todos", json!({"title": "' OR '1'='1", "tags": ["a", "b"]}))
        .await;
    let note = app
        .create(
            "notes",
            json!({"' OR 1=1 --": "x", "body": "<script>alert(1)</script>"}),
        )
        .await;
    app.create(
        "notes.v2-x_y",
        json!({"nested": {"deep": [1, {"k": "v"}]}, "title": "x"}),
    )
    .await;
    let gone = app.create("notes", json!({"title": "gone"})).await;
    let id = |r: &Value| r["id"].as_str().expect("id").to_owned();
    app.delete(&id(&gone)).await;
    let live = app
        .update(&id(&milk), json!({"title": "Buy oat milk", "done": false}))
        .await;
    let patched = app
        .http
        .patch(app.api(&format!("/records/{}", id(&note))))
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"body": "1; DELETE FROM record"}"#)
        .send()
        .await
        .expect("PATCH");
    assert_eq!(patched.status(), 200);

    let d = app
        .data(
            "{ a: records(first: 1) { edges { cursor } changeCursor } b: records(first: 1, orderBy: {field: ID}) { edges { cursor } } changes(first: 1) { edges { cursor } } }",
            json!({}),
        )
        .await;
    let text = |v: &Value| v.as_str().expect("cursor").to_owned();
    let records = app.all_records().await;
    Seed {
        todos: records
            .iter()
            .filter(|r| r["collection"] == "todos")
            .count(),
        records,
        live: id(&live),
        live_version: live["version"].as_i64().expect("version"),
        deleted: id(&gone),
        missing: uuid::Uuid::new_v4().to_string(),
        created_cursor: text(&d["a"]["edges"][0]["cursor"]),
        id_cursor: text(&d["b"]["edges"][0]["cursor"]),
        change_cursor: text(&d["changes"]["edges"][0]["cursor"]),
        head: text(&d["a"]["changeCursor"]),
    }
}

// ---------------------------------------------------------------------------------
// The corpus.
// ---------------------------------------------------------------------------------

/// One hostile request and the answer it must get.
struct Case {
    /// The exact input, for the failure report.
    name: String,
    probe: Probe,
}

/// How a request is sent, and what answers it.
enum Probe {
    /// A GraphQL request over one transport; the transport decides how each outcome
    /// looks.
    Graphql { via: Via, gql: Arc<Gql> },
    /// An HTTP request that is not a GraphQL document (or not well-formed).
    Http {
        method: Method,
        path: String,
        headers: Vec<(&'static str, Vec<u8>)>,
        body: Option<Vec<u8>>,
        expect: HttpExpect,
    },
    /// A WebSocket connection sending these messages (after `connection_init` when
    /// `init`).
    Ws {
        protocol: Option<&'static str>,
        init: bool,
        messages: Vec<Message>,
        expect: WsExpect,
    },
    /// Bytes written to a fresh TCP connection: HTTP a client library would not send.
    Tcp { bytes: Vec<u8>, expect: TcpExpect },
    /// A hand-made WebSocket handshake, then bytes no WebSocket library would write;
    /// then the client half-closes. The server must end the connection.
    TcpWs {
        protocol: &'static str,
        bytes: Vec<u8>,
        /// Close codes the server may send; when `must_close`, it must send one.
        codes: &'static [u16],
        must_close: bool,
    },
}

impl Probe {
    /// The transport, for the per-transport counts.
    fn transport(&self) -> &'static str {
        match self {
            Probe::Graphql { via, .. } => match via {
                Via::Post { .. } => "POST /graphql",
                Via::Get => "GET /graphql",
                Via::SsePost | Via::SseGet => "SSE /graphql",
                Via::Ws(TRANSPORT_WS) => "WS graphql-transport-ws",
                Via::Ws(_) => "WS graphql-ws",
            },
            Probe::Http { path, .. } if path.starts_with("/api/changes/stream") => {
                "SSE /api/changes/stream"
            }
            Probe::Http { path, .. } if path.starts_with("/api") => "REST /api",
            Probe::Http { headers, .. } if headers.iter().any(|(h, _)| *h == "upgrade") => {
                "WS handshake"
            }
            Probe::Http { method, .. } if *method == Method::GET => "GET /graphql",
            Probe::Http { method, .. } if *method == Method::POST => "POST /graphql",
            Probe::Http { .. } => "other methods /graphql",
            Probe::Ws {
                protocol: Some(LEGACY_WS),
                ..
            } => "WS graphql-ws",
            Probe::Ws { .. } => "WS graphql-transport-ws",
            Probe::Tcp { .. } => "raw HTTP",
            Probe::TcpWs { .. } => "raw WS frames",
        }
    }
}

/// A GraphQL transport.
#[derive(Clone, Copy)]
enum Via {
    /// `POST /graphql`, asking for `application/graphql-response+json` or not.
    Post { graphql_response: bool },
    /// `GET /graphql`.
    Get,
    /// `POST /graphql` with `Accept: text/event-stream`.
    SsePost,
    /// `GET /graphql` with `Accept: text/event-stream`.
    SseGet,
    /// A WebSocket speaking this subprotocol.
    Ws(&'static str),
}

/// A GraphQL request of the corpus.
struct Gql {
    query: String,
    variables: Value,
    operation_name: Option<String>,
    extensions: Option<Value>,
    op: Op,
    outcome: Outcome,
    /// Which transports carry it.
    spread: Spread,
}

/// Which transports carry a GraphQL request of the corpus.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Spread {
    /// All of them.
    Every,
    /// `POST` and one other, in turn: for large families of similar requests.
    PostAndOne,
}

/// The operation type the document selects (when it parses).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Query,
    Mutation,
    Subscription,
}

/// What GraphQL makes of a request.
#[derive(Clone)]
enum Outcome {
    /// Refused before execution (parse, validation, variable coercion): errors, no
    /// `data`.
    Refused,
    /// Executed, and a field failed with this code.
    Failed(&'static str),
    /// An argument value that does not parse as its scalar (UUID, DateTime, an Int
    /// out of range) or a missing required variable. async-graphql reports it as an
    /// error of the field: `data` null, no `extensions.code`, and HTTP 200 even under
    /// `application/graphql-response+json`, where the README promises a refusal
    /// before execution (no `data`, 400). The resolver never runs.
    BadValue,
    /// Answered without errors; the data must pass the check.
    Answers(Check),
}

type Check = Arc<dyn Fn(&Value) -> Result<(), String> + Send + Sync>;

/// The answer to a non-GraphQL HTTP request.
enum HttpExpect {
    /// `/graphql`: this status and `{"errors": [{"extensions": {"code"}}]}`.
    Graphql(u16, &'static str),
    /// REST: this status and `{"error": {"code", "message"}}`.
    Rest(u16, &'static str),
    /// REST: 200 with a JSON body that passes the check.
    RestAnswers(Check),
    /// Known deviation, to be fixed in the server: refused with this status, but the
    /// body is not the JSON error the README promises (the framework's plain text or
    /// nothing). Only the status is checked.
    NotJson(u16),
}

/// The answer to a WebSocket probe.
enum WsExpect {
    /// The server closes with one of these codes.
    Close(&'static [u16]),
    /// The legacy protocol's `error`, after which the connection still runs a query.
    ErrorThenUsable,
    /// A message the protocol ignores: the connection goes on (a `ping` still gets
    /// its `pong`, a legacy query still runs).
    Ignored,
}

/// The answer to raw HTTP bytes.
enum TcpExpect {
    /// The HTTP layer refuses: a 4xx status line (any body), or the connection closed
    /// without an answer.
    Refused,
    /// The application answers in the GraphQL shape with this status and code.
    Graphql(u16, &'static str),
}

/// The operation a document selects, as the server decides whether a `GET` runs a
/// mutation: by its first keyword, when the document parses at all.
fn op_of(query: &str) -> Op {
    let parses = async_graphql::parser::parse_query(query).is_ok();
    let starts = |kw: &str| {
        query
            .trim_start()
            .strip_prefix(kw)
            .is_some_and(|rest| rest.starts_with([' ', '{', '(']))
    };
    if parses && starts("mutation") {
        Op::Mutation
    } else if parses && starts("subscription") {
        Op::Subscription
    } else {
        Op::Query
    }
}

/// `n` fragments, each spreading the next one twice: 2^n spreads in a document of
/// about 45·n bytes.
fn fragment_fanout(n: usize) -> String {
    let spreads: String = (0..n)
        .map(|i| format!("fragment F{i} on Query {{ ...F{} ...F{} }} ", i + 1, i + 1))
        .collect();
    format!("query {{ ...F0 }} {spreads}fragment F{n} on Query {{ __typename }}")
}

/// Strings that must be data, never SQL, markup or a path.
fn hostile_strings() -> Vec<String> {
    let mut out: Vec<String> = [
        "",
        " ",
        "'",
        "\"",
        "`",
        "\\",
        ";",
        "--",
        "/*",
        "' OR '1'='1",
        "' OR 1=1 --",
        "\" OR \"\"=\"",
        "1; DROP TABLE record; --",
        "todos'; DELETE FROM record_change; --",
        "Robert'); DROP TABLE record;--",
        "x' UNION SELECT id, data FROM record --",
        "%' OR collection LIKE '%",
        "todos%",
        "todos_",
        "$1",
        "?",
        ":name",
        "\0",
        "todos\0",
        "a\u{202e}b",
        "💣",
        "ｔｏｄｏｓ",
        "../../etc/passwd",
        "${jndi:ldap://x/a}",
        "{{7*7}}",
        "<script>alert(1)</script>",
        "\r\n\r\nHTTP/1.1 200 OK",
        "json_extract(data, '$')",
        "data->>'title'",
        "'; SELECT pg_sleep(10); --",
        "randomblob(1000000000)",
        "\u{feff}todos",
        "\u{ffff}",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    out.push("x".repeat(65));
    out.push("y".repeat(10_000));
    out
}

/// Whether `s` is a collection name the README allows.
fn valid_collection(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn b64(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

/// Microseconds since 1970 of a time in year -258,000, which chrono accepts and
/// PostgreSQL's timestamps (from 4713 BC) cannot hold.
const BEFORE_POSTGRES_TIME: i64 = -8_210_298_412_800_000_000;

/// A well-formed `CREATED_AT` cursor at `micros`, on an id that never existed.
fn far_cursor(seed: &Seed, micros: i64) -> String {
    b64(&format!("rec:c:{micros}:{}", seed.missing))
}

/// Cursors that must be refused wherever a cursor goes.
fn garbage_cursors(seed: &Seed) -> Vec<String> {
    let id = &seed.missing;
    let mut out: Vec<String> = vec![
        String::new(),
        "garbage".into(),
        "null".into(),
        "-1".into(),
        "0".into(),
        "!!!!".into(),
        "' OR 1=1 --".into(),
        "Y2hnOjE=".into(), // padded base64 of "chg:1"
        "Y2hn\0OjE".into(),
        "%59%32%68%6E".into(),
        "a".repeat(129),
        "Y".repeat(100_000),
        b64("chg:-1"),
        b64("chg:"),
        b64("chg:1e3"),
        b64("chg: 1"),
        b64("chg:0x10"),
        b64("chg:99999999999999999999"),
        b64("chg:1 OR 1=1"),
        b64("chg:1; DROP TABLE record"),
        b64("rec:c::"),
        b64("rec:x:1:2:3"),
        b64(&format!("rec:c:notanumber:{id}")),
        b64(&format!("rec:c:1:{id}' OR '1'='1")),
        b64(&format!("rec:c:{}:{id}", i64::MIN)),
        b64(&format!("rec:c:{}:{id}", i64::MAX)),
        b64(&format!("rec:i:5:{id}")),
        b64("rec:i::' OR 1=1 --"),
        URL_SAFE_NO_PAD.encode([0xff, 0xfe, 0x00, 0x80]),
    ];
    // A cursor of the wrong kind.
    out.push(seed.change_cursor.clone());
    out
}

/// The whole corpus.
fn corpus(seed: &Seed, limits: &Limits) -> Vec<Case> {
    let mut cases = Vec::new();
    for (i, (name, gql)) in graphql_cases(seed, limits).into_iter().enumerate() {
        let gql = Arc::new(gql);
        let small = gql.query.len()
            + gql.variables.to_string().len()
            + gql.operation_name.as_ref().map_or(0, String::len)
            + gql.extensions.as_ref().map_or(0, |e| e.to_string().len())
            < MAX_GET_URL;
        let get = if small { Via::Get } else { Via::SsePost };
        let sse = if small && i % 2 == 0 {
            Via::SseGet
        } else {
            Via::SsePost
        };
        let post = Via::Post {
            graphql_response: i % 2 == 1,
        };
        let vias = match gql.spread {
            Spread::Every => vec![post, Via::Ws(TRANSPORT_WS), Via::Ws(LEGACY_WS), get, sse],
            Spread::PostAndOne => {
                let other = [Via::Ws(TRANSPORT_WS), Via::Ws(LEGACY_WS), get, sse];
                vec![post, other[i % other.len()]]
            }
        };
        for via in vias {
            cases.push(Case {
                name: name.clone(),
                probe: Probe::Graphql {
                    via,
                    gql: Arc::clone(&gql),
                },
            });
        }
    }
    cases.extend(graphql_http_cases(limits));
    cases.extend(rest_cases(seed, limits));
    cases.extend(ws_cases(limits));
    cases.extend(tcp_cases(limits));
    cases
}

/// Shortens an input for the report.
fn shown(s: &str) -> String {
    if s.len() <= 160 {
        format!("{s:?}")
    } else {
        let mut end = 120;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{:?}… ({} bytes)", &s[..end], s.len())
    }
}

fn total(n: usize) -> Check {
    Arc::new(move |d: &Value| {
        if d["records"]["totalCount"] == json!(n) {
            Ok(())
        } else {
            Err(format!("expected totalCount {n}"))
        }
    })
}

fn no_changes() -> Check {
    Arc::new(|d: &Value| {
        if d["changes"]["nodes"] == json!([]) {
            Ok(())
        } else {
            Err("expected no changes".into())
        }
    })
}

fn some_page() -> Check {
    Arc::new(|d: &Value| {
        let n = d["records"]["nodes"]
            .as_array()
            .map_or(usize::MAX, Vec::len);
        if n <= 500 && d["records"]["totalCount"].is_u64() {
            Ok(())
        } else {
            Err("expected a page".into())
        }
    })
}

use graphql::graphql_cases;
use graphql_http::graphql_http_cases;
use rest::rest_cases;
use runner::*;
use tcp::tcp_cases;
use ws::ws_cases;
