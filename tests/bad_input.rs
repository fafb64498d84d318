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
//! The corpus runs on SQLite and on PostgreSQL.

#[path = "api/helpers.rs"]
mod helpers;

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::Arc,
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use futures_util::{SinkExt, StreamExt, stream};
use helpers::{ARRIVE, SseStream, TestApp, TestDb, WsClient, spawn_on};
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
async fn hostile_requests_are_refused_and_change_nothing_on_sqlite() {
    hostile_requests_are_refused_and_change_nothing(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_are_refused_and_change_nothing_on_postgres() {
    hostile_requests_are_refused_and_change_nothing(TestDb::postgres().await).await;
}

async fn hostile_requests_are_refused_and_change_nothing(db: Arc<TestDb>) {
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

/// GraphQL documents and variables, each sent over every GraphQL transport.
fn graphql_cases(seed: &Seed, limits: &Limits) -> Vec<(String, Gql)> {
    use Op::Query;
    use Outcome::{Answers, BadValue, Failed, Refused};
    let mut out: Vec<(String, Gql)> = Vec::new();
    let spread = std::cell::Cell::new(Spread::Every);
    let mut add = |query: String, variables: Value, outcome: Outcome| {
        let name = format!(
            "{} variables={}",
            shown(&query),
            shown(&variables.to_string())
        );
        out.push((
            name,
            Gql {
                op: op_of(&query),
                query,
                variables,
                operation_name: None,
                extensions: None,
                outcome,
                spread: spread.get(),
            },
        ));
    };
    const BAD: &str = "BAD_USER_INPUT";
    let (live, deleted, missing) = (&seed.live, &seed.deleted, &seed.missing);
    let v = seed.live_version;

    // Documents that do not parse.
    for doc in [
        "",
        " ",
        "{",
        "}",
        "{ records ",
        "query",
        "query {",
        "mutation",
        "subscription",
        "fragment",
        "\u{0}\u{1}\u{2}",
        "{ records(first: ) { totalCount } }",
        "{ records(first: 1 { totalCount } }",
        "{ records(collection: \"unterminated) { totalCount } }",
        "{ records(collection: \"\\uD800\") { totalCount } }",
        "{ records(collection: \"\\u{110000}\") { totalCount } }",
        "{ records(collection: \"\\x\") { totalCount } }",
        "{ records(collection: \"\"\"never closed) { totalCount } }",
        "{ records(first: 99999999999999999999999999) { totalCount } }",
        "{ records(first: 0x10) { totalCount } }",
        "{ records(first: 1e) { totalCount } }",
        "{ records(first: 00) { totalCount } }",
        "{ records(first: 1_000) { totalCount } }",
        "{ records { totalCount } } garbage",
        "SELECT * FROM record",
        "'; DROP TABLE record; --",
        "{ records(collection: \"todos\" OR 1=1) { totalCount } }",
        "<script>alert(1)</script>",
    ] {
        add(doc.into(), json!({}), Refused);
    }

    // Documents that parse and fail validation.
    for doc in [
        "{ nope }",
        "{ records(nope: 1) { totalCount } }",
        "{ records { nope } }",
        "{ records }",
        "{ records { totalCount { x } } }",
        "{ records(first: \"1\") { totalCount } }",
        "{ records(first: 1.5) { totalCount } }",
        "{ records(first: true) { totalCount } }",
        "{ records(first: [1]) { totalCount } }",
        "{ records(first: {a: 1}) { totalCount } }",
        "{ records(orderBy: {field: NOPE}) { totalCount } }",
        "{ records(orderBy: {direction: DESC}) { totalCount } }",
        "{ records(filter: {nope: 1}) { totalCount } }",
        "{ record { id } }",
        "{ changes(first: \"10\") { nodes { cursor } } }",
        "{ changes(after: 5) { nodes { cursor } } }",
        "query($x: Int) { records(first: $y) { totalCount } }",
        "query($x: Nope) { __typename }",
        "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
        "query { ...Nope }",
        "query { ...F } fragment F on Nope { id }",
        "query { __typename } fragment Unused on Query { __typename }",
        "query A { __typename } query A { __typename }",
        "{ __typename } query B { __typename }",
        "query { createRecord(input: {collection: \"todos\", data: {}}) { id } }",
        "subscription { records { totalCount } }",
        "subscription { recordChanged(kinds: [NOPE]) { cursor } }",
        "subscription { recordChanged(after: 5) { cursor } }",
        "mutation { createRecord(input: {collection: \"todos\"}) { id } }",
        "mutation { createRecord(input: {collection: \"todos\", data: {}, nope: 1}) { id } }",
        "mutation { createRecord(input: {collection: \"todos\", data: null}) { id } }",
        "mutation { updateRecord(id: \"00000000-0000-0000-0000-000000000000\") { id } }",
    ] {
        add(doc.into(), json!({}), Refused);
    }
    // A BOM is whitespace to GraphQL.
    add(
        "\u{feff}{ __typename }".into(),
        json!({}),
        Answers(Arc::new(|_| Ok(()))),
    );
    // Argument values that do not parse as their scalar.
    for doc in [
        "{ records(first: 2147483648) { totalCount } }",
        "{ records(first: -2147483649) { totalCount } }",
        "{ records(filter: {ids: [1]}) { totalCount } }",
        "{ records(filter: {ids: [\"not-a-uuid\"]}) { totalCount } }",
        "{ records(filter: {ids: [\"' OR 1=1 --\"]}) { totalCount } }",
        "{ records(filter: {createdAfter: \"yesterday\"}) { totalCount } }",
        "{ records(filter: {createdAfter: 5}) { totalCount } }",
        "{ records(filter: {createdAfter: \"2024-13-45T99:99:99Z\"}) { totalCount } }",
        "{ records(filter: {updatedBefore: \"'; DROP TABLE record; --\"}) { totalCount } }",
        "{ record(id: \"nope\") { id } }",
        "{ record(id: 5) { id } }",
        "{ record(id: \"00000000-0000-0000-0000-00000000000g\") { id } }",
        "subscription { recordChanged(id: \"x\") { cursor } }",
        "subscription { recordChanged(id: \"1 OR 1=1\", after: \"x\") { cursor } }",
        "mutation { createRecord(input: {id: \"not-a-uuid\", collection: \"todos\", data: {}}) { id } }",
        "mutation { deleteRecord(id: \"' OR 1=1 --\") { id } }",
        "mutation { deleteRecord(id: \"00000000-0000-0000-0000-000000000000\", expectedVersion: 2147483648) { id } }",
    ] {
        add(doc.into(), json!({}), BadValue);
    }
    // Times at the edges of what the server accepts (years 0000 to 9999) are answered;
    // times beyond them, which one backend or the other cannot compare, are refused.
    let all = seed.records.len();
    let edges = vec![
        ("createdAfter", "0000-01-01T00:00:00Z", all),
        ("createdBefore", "0000-01-01T00:00:00Z", 0),
        ("updatedBefore", "9999-12-31T23:59:59.999999Z", all),
        ("updatedAfter", "9999-12-31T23:59:59Z", 0),
    ];
    for (field, at) in [
        ("createdBefore", "-0001-01-01T00:00:00-23:59"),
        ("createdAfter", "-100000-01-01T00:00:00Z"),
        ("createdBefore", "-4800-01-01T00:00:00+00:00"),
        ("createdAfter", "+100000-01-01T00:00:00Z"),
        ("updatedBefore", "+100000-01-01T00:00:00Z"),
    ] {
        add(
            format!("query($t: DateTime) {{ records(filter: {{{field}: $t}}) {{ totalCount }} }}"),
            json!({"t": at}),
            Failed("BAD_USER_INPUT"),
        );
    }
    for (field, at, n) in edges {
        add(
            format!("query($t: DateTime) {{ records(filter: {{{field}: $t}}) {{ totalCount }} }}"),
            json!({"t": at}),
            Answers(total(n)),
        );
    }
    for at in [
        "10000-01-01T00:00:00Z",
        "+262143-12-31T23:59:59Z",
        "2024-02-30T00:00:00Z",
        "2024-01-01T24:00:01Z",
        "2024-01-01T00:00:00+24:00",
        "2024-01-01",
        "1700000000",
        "now()",
    ] {
        add(
            "query($t: DateTime) { records(filter: {createdAfter: $t}) { totalCount } }".into(),
            json!({"t": at}),
            BadValue,
        );
    }
    // Variables of the wrong type.
    let q = "query($first: Int) { records(first: $first) { totalCount } }";
    for bad in [
        json!("ten"),
        json!(1.5),
        json!([1]),
        json!({"$gt": 1}),
        json!(true),
    ] {
        add(q.into(), json!({"first": bad}), Refused);
    }
    add(q.into(), json!({"first": 2_147_483_648_i64}), BadValue);
    let q = "query($ids: [UUID!]) { records(filter: {ids: $ids}) { totalCount } }";
    add(q.into(), json!({"ids": [null]}), Refused);
    for bad in [json!(["' OR 1=1 --"]), json!([1, 2]), json!({"0": live})] {
        add(q.into(), json!({"ids": bad}), BadValue);
    }
    let q = "mutation($d: JSON!) { createRecord(input: {collection: \"todos\", data: $d}) { id } }";
    add(q.into(), json!({"d": null}), Refused);
    add(q.into(), json!({}), BadValue);
    let q = "query($id: UUID!) { record(id: $id) { id } }";
    add(q.into(), json!({"id": null}), Refused);
    for bad in [json!(123), json!("1' OR '1'='1"), json!({})] {
        add(q.into(), json!({"id": bad}), BadValue);
    }
    add(q.into(), json!({}), BadValue);

    // Deep nesting and sheer size, refused by the parser and the limits.
    let deep = 5_000;
    add("{".repeat(deep), json!({}), Refused);
    add(
        format!("{}{}", "{ records { nodes ".repeat(deep), "}".repeat(deep)),
        json!({}),
        Refused,
    );
    add(
        format!(
            "{{ records(filter: {{ids: {}{}}}) {{ totalCount }} }}",
            "[".repeat(deep),
            "]".repeat(deep)
        ),
        json!({}),
        Refused,
    );
    add(
        format!(
            "{{ records(filter: {{dataContains: {}1{}}}) {{ totalCount }} }}",
            "{a: ".repeat(deep),
            "}".repeat(deep)
        ),
        json!({}),
        Refused,
    );
    add(
        format!(
            "{{ __schema {{ types {{ {}name{} }} }} }}",
            "fields { type { ofType { ".repeat(8),
            " } } }".repeat(8)
        ),
        json!({}),
        Refused,
    );
    add(
        format!(
            "{{ {} }}",
            (0..2_000)
                .map(|i| format!("a{i}: __typename"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        json!({}),
        Refused,
    );
    // Fields async-graphql's complexity count skips still count toward the size of the
    // expanded document.
    add(
        format!("{{ {} }}", "__typename ".repeat(6_000)),
        json!({}),
        Refused,
    );
    add(
        format!(
            "query {{ ...F0 }} {}",
            (0..300)
                .map(|i| format!("fragment F{i} on Query {{ ...F{} }}", i + 1))
                .collect::<String>()
        ),
        json!({}),
        Refused,
    );
    // Fragments that spread the next one twice double the work with every level; the
    // server counts the expanded fields first (cheaply) and refuses such a document.
    add(fragment_fanout(8), json!({}), Answers(Arc::new(|_| Ok(()))));
    add(fragment_fanout(25), json!({}), Refused);
    add(
        format!("{{ __typename }} # {}", "x".repeat(limits.body)),
        json!({}),
        Answers(Arc::new(|_| Ok(()))),
    );

    // Page sizes.
    for (args, outcome) in [
        ("first: -1", Failed(BAD)),
        ("first: -2147483648", Failed(BAD)),
        ("first: 2147483647", Failed(BAD)),
        ("first: 501", Failed(BAD)),
        ("last: -1", Failed(BAD)),
        ("last: 501", Failed(BAD)),
        ("first: 1, last: 1", Failed(BAD)),
        ("first: 0, last: 0", Failed(BAD)),
        ("first: null", Answers(total(seed.records.len()))),
        ("first: 0", Answers(total(seed.records.len()))),
    ] {
        add(
            format!("{{ records({args}) {{ totalCount }} }}"),
            json!({}),
            outcome,
        );
    }
    for first in [-1, i32::MIN, 501, i32::MAX] {
        add(
            "query($n: Int) { changes(first: $n) { nodes { cursor } } }".into(),
            json!({"n": first}),
            Failed(BAD),
        );
    }

    // A subscription must have exactly one root field (GraphQL, "Single root field"):
    // refused on every transport, before any feed starts.
    spread.set(Spread::Every);
    add(
        "subscription { a: recordChanged { cursor } b: recordChanged { cursor } }".into(),
        json!({}),
        Refused,
    );

    // From here on, families of similar requests: each goes over POST and one other
    // transport in turn.
    spread.set(Spread::PostAndOne);

    // Garbage and forged cursors, wherever a cursor goes.
    for cursor in garbage_cursors(seed) {
        let vars = json!({"c": cursor});
        add(
            "query($c: String) { records(after: $c) { totalCount } }".into(),
            vars.clone(),
            Failed(BAD),
        );
        add(
            "query($c: String) { records(last: 1, before: $c) { totalCount } }".into(),
            vars.clone(),
            Failed(BAD),
        );
        add(
            "query($c: String) { records(orderBy: {field: ID}, after: $c) { totalCount } }".into(),
            vars.clone(),
            Failed(BAD),
        );
        if cursor != seed.change_cursor {
            add(
                "query($c: String) { changes(after: $c) { nodes { cursor } } }".into(),
                vars.clone(),
                Failed(BAD),
            );
            add(
                "subscription($c: String) { recordChanged(after: $c) { cursor } }".into(),
                vars,
                Failed(BAD),
            );
        }
    }
    // A records cursor of another ordering, or a records cursor as a change cursor.
    for (query, cursor) in [
        (
            "query($c: String) { records(orderBy: {field: ID}, after: $c) { totalCount } }",
            &seed.created_cursor,
        ),
        (
            "query($c: String) { records(orderBy: {field: UPDATED_AT}, before: $c) { totalCount } }",
            &seed.created_cursor,
        ),
        (
            "query($c: String) { records(after: $c) { totalCount } }",
            &seed.id_cursor,
        ),
        (
            "query($c: String) { changes(after: $c) { nodes { cursor } } }",
            &seed.created_cursor,
        ),
        (
            "subscription($c: String) { recordChanged(after: $c) { cursor } }",
            &seed.id_cursor,
        ),
    ] {
        add(query.into(), json!({"c": cursor}), Failed(BAD));
    }
    // Forged cursors that decode: answered while their time is within years 0000 to
    // 9999, refused with BAD_USER_INPUT beyond.
    let forged = [
        far_cursor(seed, 0),
        far_cursor(seed, -62_135_596_800_000_000),
        far_cursor(seed, 253_402_300_799_999_999),
    ];
    for cursor in forged {
        add(
            "query($c: String) { records(first: 5, after: $c) { totalCount nodes { id } } }".into(),
            json!({"c": cursor}),
            Answers(some_page()),
        );
        add(
            "query($c: String) { records(last: 5, before: $c, orderBy: {field: CREATED_AT, direction: DESC}) { totalCount nodes { id } } }"
                .into(),
            json!({"c": cursor}),
            Answers(some_page()),
        );
    }
    for cursor in [
        far_cursor(seed, 8_210_266_876_799_999_999),
        far_cursor(seed, BEFORE_POSTGRES_TIME),
    ] {
        add(
            "query($c: String) { records(first: 5, after: $c) { totalCount nodes { id } } }".into(),
            json!({"c": cursor}),
            Failed(BAD),
        );
    }
    add(
        "query($c: String) { records(orderBy: {field: ID}, after: $c) { totalCount nodes { id } } }".into(),
        json!({"c": b64(&format!("rec:i::{}", uuid::Uuid::max()))}),
        Answers(some_page()),
    );
    for seq in [i64::MAX, 1 << 53] {
        let c = b64(&format!("chg:{seq}"));
        add(
            "query($c: String) { changes(after: $c) { nodes { cursor } } }".into(),
            json!({"c": c}),
            Failed(BAD),
        );
        add(
            "subscription($c: String) { recordChanged(after: $c) { cursor } }".into(),
            json!({"c": c}),
            Failed(BAD),
        );
    }
    add(
        "subscription($c: String) { recordChanged(collection: \"todos\", after: $c) { cursor } }"
            .into(),
        json!({"c": b64("chg:-5")}),
        Failed(BAD),
    );

    // SQL-looking (and otherwise hostile) strings as collection names, filter keys and
    // values: refused when invalid, otherwise plain data that matches nothing it
    // should not.
    let matching = |key: &str, value: &str| {
        seed.records
            .iter()
            .filter(|r| r["data"].get(key) == Some(&json!(value)))
            .count()
    };
    for s in hostile_strings() {
        let vars = json!({"s": s});
        if valid_collection(&s) {
            add(
                "query($s: String) { records(collection: $s) { totalCount } }".into(),
                vars.clone(),
                Answers(total(0)),
            );
            add(
                "query($s: String) { changes(collection: $s) { nodes { cursor } } }".into(),
                vars.clone(),
                Answers(no_changes()),
            );
        } else {
            add(
                "query($s: String) { records(collection: $s) { totalCount } }".into(),
                vars.clone(),
                Failed(BAD),
            );
            add(
                "query($s: String) { changes(collection: $s) { nodes { cursor } } }".into(),
                vars.clone(),
                Failed(BAD),
            );
            add(
                "subscription($s: String) { recordChanged(collection: $s) { cursor } }".into(),
                vars.clone(),
                Failed(BAD),
            );
            add(
                "mutation($s: String!) { createRecord(input: {collection: $s, data: {title: \"x\"}}) { id } }".into(),
                vars.clone(),
                Failed(BAD),
            );
        }
        // A NUL character (`\u0000`), which PostgreSQL's `jsonb` cannot hold, is refused
        // on every backend; other strings are plain data.
        let nul = s.contains('\0');
        for f in [json!({s.clone(): "x"}), json!({"title": s.clone()})] {
            let expect = if nul {
                Failed(BAD)
            } else if f.get("title").is_some() {
                Answers(total(matching("title", &s)))
            } else {
                Answers(total(matching(&s, "x")))
            };
            add(
                "query($f: JSON) { records(filter: {dataContains: $f}) { totalCount } }".into(),
                json!({"f": f}),
                expect,
            );
        }
        add(
            "query($ids: [UUID!]) { records(filter: {ids: $ids}) { totalCount } }".into(),
            json!({"ids": [s]}),
            BadValue,
        );
    }
    // Matches exactly the records that hold these SQL-looking values.
    for (key, value) in [
        ("title", "' OR '1'='1"),
        ("title", "Robert'); DROP TABLE record;--"),
        ("' OR 1=1 --", "x"),
    ] {
        add(
            "query($f: JSON) { records(filter: {dataContains: $f}) { totalCount } }".into(),
            json!({"f": {key: value}}),
            Answers(total(1)),
        );
    }
    // `dataContains` of the wrong shape, too many keys, deep and huge values.
    for f in [
        json!("title"),
        json!(1),
        json!([{"title": "x"}]),
        json!(true),
    ] {
        add(
            "query($f: JSON) { records(filter: {dataContains: $f}) { totalCount } }".into(),
            json!({"f": f}),
            Failed(BAD),
        );
    }
    let many: serde_json::Map<String, Value> =
        (0..33).map(|i| (format!("k{i}"), json!(i))).collect();
    let mut nested = json!("x");
    for _ in 0..60 {
        nested = json!({"a": [nested]});
    }
    for (f, outcome) in [
        (Value::Object(many), Failed(BAD)),
        (json!({"title": nested}), Answers(total(0))),
        (json!({"title": "z".repeat(700_000)}), Answers(total(0))),
        (json!({"title": 1e308, "done": -0.0}), Answers(total(0))),
        (json!({"title": u64::MAX}), Answers(total(0))),
        (json!({"": null}), Answers(total(0))),
    ] {
        add(
            "query($f: JSON) { records(filter: {dataContains: $f}) { totalCount } }".into(),
            json!({"f": f}),
            outcome,
        );
    }
    let ids: Vec<String> = (0..=limits.page)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    add(
        "query($ids: [UUID!]) { records(filter: {ids: $ids}) { totalCount } }".into(),
        json!({"ids": ids}),
        Failed(BAD),
    );
    let ids: Vec<String> = (0..20_000)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    add(
        "query($ids: [UUID!]) { records(filter: {ids: $ids}) { totalCount } }".into(),
        json!({"ids": ids}),
        Failed(BAD),
    );
    add(
        "query($s: String) { records(collection: $s) { totalCount } }".into(),
        json!({"s": "c".repeat(limits.body - 200)}),
        Failed(BAD),
    );
    add(
        "query($s: String) { records(collection: $s) { totalCount } }".into(),
        json!({"s": "c".repeat(2 * limits.body)}),
        Failed(BAD),
    );

    // Mutations that must be refused.
    let big = "b".repeat(limits.data + 1);
    let create =
        "mutation($d: JSON!) { createRecord(input: {collection: \"todos\", data: $d}) { id } }";
    for (d, code) in [
        (json!("a string"), BAD),
        (json!(1), BAD),
        (json!([{"title": "x"}]), BAD),
        (json!(true), BAD),
        (json!({"big": big}), BAD),
    ] {
        add(create.into(), json!({"d": d}), Failed(code));
    }
    add(
        format!(
            "mutation {{ createRecord(input: {{id: \"{live}\", collection: \"todos\", data: {{}}}}) {{ id }} }}"
        ),
        json!({}),
        Failed("ALREADY_EXISTS"),
    );
    let update = "mutation($id: UUID!, $d: JSON!, $v: Int) { updateRecord(id: $id, data: $d, expectedVersion: $v) { id } }";
    let patch = "mutation($id: UUID!, $d: JSON!, $v: Int) { patchRecord(id: $id, patch: $d, expectedVersion: $v) { id } }";
    let delete =
        "mutation($id: UUID!, $v: Int) { deleteRecord(id: $id, expectedVersion: $v) { id } }";
    for doc in [update, patch] {
        for (id, d, ver, code) in [
            (missing, json!({}), json!(null), "NOT_FOUND"),
            (deleted, json!({}), json!(null), "NOT_FOUND"),
            (live, json!({}), json!(v - 1), "VERSION_CONFLICT"),
            (live, json!({}), json!(0), "VERSION_CONFLICT"),
            (live, json!({}), json!(-1), "VERSION_CONFLICT"),
            (live, json!({}), json!(i32::MAX), "VERSION_CONFLICT"),
            (live, json!([1]), json!(null), BAD),
            (live, json!({"big": big}), json!(null), BAD),
        ] {
            add(
                doc.into(),
                json!({"id": id, "d": d, "v": ver}),
                Failed(code),
            );
        }
        add(
            doc.into(),
            json!({"id": live, "d": {}, "v": 2_147_483_648_i64}),
            BadValue,
        );
    }
    for d in [json!("a string"), json!(1), json!(false)] {
        add(update.into(), json!({"id": live, "d": d}), Failed(BAD));
    }
    // A merge patch that is not an object replaces the whole document.
    for d in [json!("a string"), json!(1), json!([])] {
        add(patch.into(), json!({"id": live, "d": d}), Failed(BAD));
    }
    for (id, ver, code) in [
        (missing, json!(null), "NOT_FOUND"),
        (deleted, json!(null), "NOT_FOUND"),
        (live, json!(v + 1), "VERSION_CONFLICT"),
        (live, json!(i32::MIN), "VERSION_CONFLICT"),
    ] {
        add(delete.into(), json!({"id": id, "v": ver}), Failed(code));
    }
    add(
        format!(
            "mutation {{ a: deleteRecord(id: \"{missing}\") {{ id }} b: updateRecord(id: \"{deleted}\", data: {{}}) {{ id }} c: patchRecord(id: \"{live}\", patch: {{}}, expectedVersion: 99) {{ id }} }}"
        ),
        json!({}),
        Failed("*"),
    );
    // Operation names that select nothing, and persisted-query extensions that are
    // wrong, unknown or of the wrong shape.
    let two_ops = "query A { __typename } mutation B { deleteRecord(id: \"00000000-0000-0000-0000-000000000000\") { id } }";
    let apq = |hash: Value, version: Value| json!({"persistedQuery": {"version": version, "sha256Hash": hash}});
    let a_hash = json!("ecf4edb46db40b5132295c0291d62fb65d6759a9eedfa4d5d612dd5ec54a6b38");
    for (query, operation_name, extensions) in [
        (two_ops, Some("Nope".to_owned()), None),
        (two_ops, Some(String::new()), None),
        (
            "query A { __typename }",
            Some("' OR 1=1 --".to_owned()),
            None,
        ),
        (
            "query A { __typename }",
            Some("N".repeat(limits.data)),
            None,
        ),
        ("", None, Some(apq(json!("garbage"), json!(1)))),
        ("", None, Some(apq(json!("' OR 1=1 --"), json!(1)))),
        ("", None, Some(apq(a_hash.clone(), json!(1)))),
        ("{ __typename }", None, Some(apq(a_hash.clone(), json!(1)))),
        ("{ __typename }", None, Some(apq(a_hash.clone(), json!(2)))),
        ("{ __typename }", None, Some(apq(json!(5), json!(1)))),
        (
            "{ __typename }",
            None,
            Some(apq(json!("a".repeat(10_000)), json!(-1))),
        ),
        ("{ __typename }", None, Some(json!({"persistedQuery": "x"}))),
        (
            "{ __typename }",
            None,
            Some(json!({"persistedQuery": null})),
        ),
        ("", None, Some(json!({"persistedQuery": {}}))),
    ] {
        out.push((
            format!(
                "{} operationName={} extensions={}",
                shown(query),
                shown(operation_name.as_deref().unwrap_or("none")),
                shown(&extensions.as_ref().map_or("none".into(), Value::to_string))
            ),
            Gql {
                query: query.into(),
                variables: json!({}),
                operation_name,
                extensions,
                op: Query,
                outcome: Refused,
                spread: Spread::Every,
            },
        ));
    }
    out
}

/// `/graphql` requests that are not GraphQL at all, or not acceptable.
fn graphql_http_cases(limits: &Limits) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut post = |content_type: Option<&[u8]>, body: Vec<u8>, status: u16, code: &'static str| {
        let mut headers = Vec::new();
        if let Some(ct) = content_type {
            headers.push(("content-type", ct.to_vec()));
        }
        cases.push(Case {
            name: format!(
                "POST /graphql content-type={} body={}",
                content_type.map_or("none".into(), |c| shown(&String::from_utf8_lossy(c))),
                shown(&String::from_utf8_lossy(&body))
            ),
            probe: Probe::Http {
                method: Method::POST,
                path: "/graphql".into(),
                headers,
                body: Some(body),
                expect: HttpExpect::Graphql(status, code),
            },
        });
    };
    let valid = br#"{"query": "{ __typename }"}"#.to_vec();
    for ct in [
        &b"text/plain"[..],
        b"application/x-www-form-urlencoded",
        b"multipart/form-data; boundary=x",
        b"application/graphql",
        b"application/json-patch+json",
        b"application/jsonx",
        b"json",
        b";;;",
        b"application/json\xff",
        b"\xc3\x28/json",
    ] {
        post(Some(ct), valid.clone(), 415, "UNSUPPORTED_MEDIA_TYPE");
    }
    post(None, valid.clone(), 415, "UNSUPPORTED_MEDIA_TYPE");
    post(
        Some(b"application/x-www-form-urlencoded"),
        b"query=mutation%7BdeleteRecord(id%3A%2200000000-0000-0000-0000-000000000000%22)%7Bid%7D%7D"
            .to_vec(),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    );
    let json_ct = Some(&b"application/json"[..]);
    let mut bodies: Vec<Vec<u8>> = [
        "",
        " ",
        "null",
        "true",
        "1",
        "\"{ __typename }\"",
        "[]",
        "[{\"query\": \"{ __typename }\"}]",
        "{",
        "{\"query\":",
        "{\"query\": \"{ __typename }\"",
        "{\"query\": \"{ __typename }\"} trailing",
        "{\"query\": \"{ __typename }\"}{\"query\": \"{ __typename }\"}",
        "{}",
        "{\"variables\": {}}",
        "{\"query\": null}",
        "{\"query\": 1}",
        "{\"query\": [\"{ __typename }\"]}",
        "{\"query\": {\"$ne\": null}}",
        "{\"query\": \"{ __typename }\", \"variables\": \"{}\"}",
        "{\"query\": \"{ __typename }\", \"variables\": []}",
        "{\"query\": \"{ __typename }\", \"variables\": 1}",
        "{\"query\": \"{ __typename }\", \"operationName\": 1}",
        "{\"query\": \"{ __typename }\", \"operationName\": []}",
        "{\"query\": \"{ __typename }\", \"operationName\": {}}",
        "{\"query\": \"{ __typename }\", \"operationName\": true}",
        "{\"query\": \"{ __typename }\", \"extensions\": \"x\"}",
        "{\"query\": \"{ __typename }\", \"extensions\": [1]}",
        "{\"query\": \"{ __typename }\", \"variables\": {\"n\": 1e400}}",
        "{\"query\": \"{ records(collection: \\\"\\ud800\\\") { totalCount } }\"}",
        "{\"query\": \"{ __typename }\", \"variables\": {\"\\udfff\": 1}}",
        "{'query': '{ __typename }'}",
        "{query: \"{ __typename }\"}",
        "{\"query\": \"{ __typename }\",}",
        "/* */ {\"query\": \"{ __typename }\"}",
        "\u{feff}{\"query\": \"{ __typename }\"}",
    ]
    .into_iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    bodies.push(b"{\"query\": \"\xff\xfe{ __typename }\"}".to_vec());
    bodies.push(b"\xff\xfe{\0\"\0q\0".to_vec());
    bodies.push(b"\0\0\0\0".to_vec());
    bodies.push(b"{\"query\": \"{ __typename }\", \"operationName\": \"\xc0\xaf\"}".to_vec());
    bodies.push(format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes());
    bodies.push(
        format!(
            "{{\"query\": \"{{ __typename }}\", \"variables\": {{\"v\": {}1{}}}}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        )
        .into_bytes(),
    );
    bodies.push(
        format!(
            "{{\"query\": \"{{ __typename }}\", \"variables\": {}}}",
            "{\"a\": ".repeat(200) + "1" + &"}".repeat(200)
        )
        .into_bytes(),
    );
    for body in bodies {
        post(json_ct, body, 400, "BAD_REQUEST");
    }
    // Near and over the body limit.
    let at_limit = |n: usize| {
        let mut body = br#"{"query": "{ records(collection: \"bad!\") { totalCount } }"}"#.to_vec();
        body.resize(n, b' ');
        body
    };
    post(json_ct, at_limit(limits.body + 1), 413, "PAYLOAD_TOO_LARGE");
    let mut padded = at_limit(limits.body);
    padded.truncate(limits.body - 1);
    padded.push(b'!');
    post(json_ct, padded, 400, "BAD_REQUEST");
    // `GET` parameters that are not GraphQL.
    for query in [
        "",
        "?",
        "?variables={}",
        "?operationName=x",
        "?query={__typename}&variables=not-json",
        "?query={__typename}&variables=[1]",
        "?query={__typename}&variables=%FF%FE",
        "?query={__typename}&variables=%7B%22a%22%3A1e400%7D",
        "?query={__typename}&variables=null%00",
        "?query={__typename}&extensions=5",
        "?query={__typename}&extensions=%22x%22",
        "?query={__typename}&query={__typename}",
        "?query={__typename}&operationName=a&operationName=b",
    ] {
        cases.push(Case {
            name: format!("GET /graphql{query}"),
            probe: Probe::Http {
                method: Method::GET,
                path: format!("/graphql{query}"),
                headers: vec![],
                body: None,
                expect: HttpExpect::Graphql(400, "BAD_REQUEST"),
            },
        });
    }
    cases.push(Case {
        name: "GET /graphql with a deeply nested `variables`".into(),
        probe: Probe::Http {
            method: Method::GET,
            path: format!(
                "/graphql?query=%7B__typename%7D&variables={}{}",
                "%5B".repeat(3_000),
                "%5D".repeat(3_000)
            ),
            headers: vec![],
            body: None,
            expect: HttpExpect::Graphql(400, "BAD_REQUEST"),
        },
    });
    // Accept headers that accept nothing the endpoint answers in.
    for accept in [
        &b"text/html"[..],
        b"image/png",
        b"application/json;q=0",
        b"*/*;q=0",
        b"application/graphql-response+json;q=0, application/json;q=0",
        b"@@@,,;;;q=",
        b"text/*",
    ] {
        for method in [Method::GET, Method::POST] {
            let (path, body) = if method == Method::GET {
                ("/graphql?query=%7B__typename%7D".to_owned(), None)
            } else {
                ("/graphql".to_owned(), Some(valid.clone()))
            };
            cases.push(Case {
                name: format!(
                    "{method} /graphql accept={}",
                    String::from_utf8_lossy(accept)
                ),
                probe: Probe::Http {
                    method,
                    path,
                    headers: vec![
                        ("accept", accept.to_vec()),
                        ("content-type", b"application/json".to_vec()),
                    ],
                    body,
                    expect: HttpExpect::Graphql(406, "NOT_ACCEPTABLE"),
                },
            });
        }
    }
    // Methods `/graphql` does not serve.
    for method in ["PUT", "DELETE", "PATCH", "TRACE", "BREW", "CONNECTX"] {
        cases.push(Case {
            name: format!("{method} /graphql"),
            probe: Probe::Http {
                method: Method::from_bytes(method.as_bytes()).expect("method"),
                path: "/graphql".into(),
                headers: vec![("content-type", b"application/json".to_vec())],
                body: Some(
                    br#"{"query": "mutation { deleteRecord(id: \"00000000-0000-0000-0000-000000000000\") { id } }"}"#
                        .to_vec(),
                ),
                expect: HttpExpect::Graphql(405, "METHOD_NOT_ALLOWED"),
            },
        });
    }
    // A mutation selected by name over GET.
    cases.push(Case {
        name: "GET /graphql selecting a mutation by operationName".into(),
        probe: Probe::Http {
            method: Method::GET,
            path: "/graphql?query=query%20A%20%7B__typename%7D%20mutation%20B%20%7BdeleteRecord(id%3A%2200000000-0000-0000-0000-000000000000%22)%7Bid%7D%7D&operationName=B".into(),
            headers: vec![("accept", b"text/event-stream".to_vec())],
            body: None,
            expect: HttpExpect::Graphql(405, "METHOD_NOT_ALLOWED"),
        },
    });
    // Event streams that are refused before they start.
    for body in [&b"[]"[..], b"{", b"{\"query\": 5}", b"\xff"] {
        cases.push(Case {
            name: format!(
                "POST /graphql accept=text/event-stream body={}",
                shown(&String::from_utf8_lossy(body))
            ),
            probe: Probe::Http {
                method: Method::POST,
                path: "/graphql".into(),
                headers: vec![
                    ("accept", b"text/event-stream".to_vec()),
                    ("content-type", b"application/json".to_vec()),
                ],
                body: Some(body.to_vec()),
                expect: HttpExpect::Graphql(400, "BAD_REQUEST"),
            },
        });
    }
    // Broken WebSocket upgrades. Known deviation: the framework's upgrade extractor
    // refuses them with plain text, not the GraphQL-shaped error of other refusals.
    for (name, headers) in [
        (
            "no Sec-WebSocket-Key",
            vec![
                ("upgrade", b"websocket".to_vec()),
                ("connection", b"upgrade".to_vec()),
                ("sec-websocket-version", b"13".to_vec()),
            ],
        ),
        (
            "Sec-WebSocket-Version 8",
            vec![
                ("upgrade", b"websocket".to_vec()),
                ("connection", b"upgrade".to_vec()),
                ("sec-websocket-version", b"8".to_vec()),
                ("sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ==".to_vec()),
            ],
        ),
        (
            "Connection without upgrade",
            vec![
                ("upgrade", b"websocket".to_vec()),
                ("connection", b"keep-alive".to_vec()),
                ("sec-websocket-version", b"13".to_vec()),
                ("sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ==".to_vec()),
            ],
        ),
    ] {
        cases.push(Case {
            name: format!("GET /graphql WebSocket upgrade with {name}"),
            probe: Probe::Http {
                method: Method::GET,
                path: "/graphql".into(),
                headers,
                body: None,
                expect: HttpExpect::NotJson(400),
            },
        });
    }
    cases
}

/// REST requests under `/api`.
fn rest_cases(seed: &Seed, limits: &Limits) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut add = |method: Method,
                   path: String,
                   headers: Vec<(&'static str, Vec<u8>)>,
                   body: Option<Vec<u8>>,
                   expect: HttpExpect| {
        let shown_headers: Vec<String> = headers
            .iter()
            .map(|(h, v)| format!("{h}: {}", shown(&String::from_utf8_lossy(v))))
            .collect();
        cases.push(Case {
            name: format!(
                "{method} {} [{}] body={}",
                shown(&path),
                shown_headers.join(", "),
                body.as_deref()
                    .map_or("none".into(), |b| shown(&String::from_utf8_lossy(b)))
            ),
            probe: Probe::Http {
                method,
                path,
                headers,
                body,
                expect,
            },
        });
    };
    use HttpExpect::{Rest, RestAnswers};
    const BAD: &str = "BAD_USER_INPUT";
    let json_ct = || vec![("content-type", b"application/json".to_vec())];
    let live = format!("/api/records/{}", seed.live);
    let deleted = format!("/api/records/{}", seed.deleted);
    let missing = format!("/api/records/{}", seed.missing);
    let big = "b".repeat(limits.data + 1);

    // Bodies of POST /api/records.
    let mut create_bodies: Vec<(Vec<u8>, u16, &str)> = [
        "",
        "null",
        "[]",
        "\"x\"",
        "{",
        "{\"collection\": \"todos\"",
        "{\"collection\": \"todos\", \"data\": {}} x",
        "{}",
        "{\"collection\": \"todos\"}",
        "{\"data\": {}}",
        "{\"collection\": 5, \"data\": {}}",
        "{\"collection\": null, \"data\": {}}",
        "{\"collection\": [\"todos\"], \"data\": {}}",
        "{\"collection\": \"todos\", \"data\": {}, \"extra\": 1}",
        "{\"collection\": \"todos\", \"data\": {}, \"version\": 7}",
        "{\"collection\": \"todos\", \"collection\": \"notes\", \"data\": {}}",
        "{\"id\": \"not-a-uuid\", \"collection\": \"todos\", \"data\": {}}",
        "{\"id\": 5, \"collection\": \"todos\", \"data\": {}}",
        "{\"id\": \"' OR 1=1 --\", \"collection\": \"todos\", \"data\": {}}",
        "{\"collection\": \"todos\", \"data\": \"x\"}",
        "{\"collection\": \"todos\", \"data\": [1]}",
        "{\"collection\": \"todos\", \"data\": null}",
        "{\"collection\": \"todos\", \"data\": 1}",
        "{\"collection\": \"todos\", \"data\": {\"n\": 1e400}}",
        "{\"collection\": \"todos\", \"data\": {\"s\": \"\\ud800\"}}",
        "{'collection': 'todos', 'data': {}}",
    ]
    .into_iter()
    .map(|s| (s.as_bytes().to_vec(), 400, BAD))
    .collect();
    for s in hostile_strings()
        .into_iter()
        .filter(|s| !valid_collection(s))
    {
        create_bodies.push((
            json!({"collection": s, "data": {}})
                .to_string()
                .into_bytes(),
            400,
            BAD,
        ));
    }
    create_bodies.push((
        json!({"collection": "todos", "data": {"big": big}})
            .to_string()
            .into_bytes(),
        400,
        BAD,
    ));
    create_bodies.push((
        json!({"id": seed.live, "collection": "todos", "data": {}})
            .to_string()
            .into_bytes(),
        409,
        "ALREADY_EXISTS",
    ));
    create_bodies.push((
        b"{\"collection\": \"\xff\", \"data\": {}}".to_vec(),
        400,
        BAD,
    ));
    create_bodies.push((
        format!(
            "{{\"collection\": \"todos\", \"data\": {}1{}}}",
            "{\"a\": ".repeat(1_000),
            "}".repeat(1_000)
        )
        .into_bytes(),
        400,
        BAD,
    ));
    let mut huge = json!({"collection": "todos", "data": {"x": ""}})
        .to_string()
        .into_bytes();
    huge.resize(limits.body + 1, b' ');
    create_bodies.push((huge, 413, "PAYLOAD_TOO_LARGE"));
    for (body, status, code) in create_bodies {
        add(
            Method::POST,
            "/api/records".into(),
            json_ct(),
            Some(body),
            Rest(status, code),
        );
    }
    // Content types a REST write does not read.
    for ct in [
        None,
        Some(&b"text/plain"[..]),
        Some(b"application/x-www-form-urlencoded"),
        Some(b"multipart/form-data; boundary=x"),
        Some(b"application/xml"),
        Some(b"application/merge-patch+json"),
        Some(b"\xff"),
    ] {
        let headers = ct
            .map(|c| vec![("content-type", c.to_vec())])
            .unwrap_or_default();
        add(
            Method::POST,
            "/api/records".into(),
            headers.clone(),
            Some(br#"{"collection": "todos", "data": {}}"#.to_vec()),
            Rest(415, "UNSUPPORTED_MEDIA_TYPE"),
        );
        add(
            Method::PUT,
            live.clone(),
            headers,
            Some(br#"{"data": {}}"#.to_vec()),
            Rest(415, "UNSUPPORTED_MEDIA_TYPE"),
        );
    }
    add(
        Method::PATCH,
        live.clone(),
        vec![("content-type", b"text/plain".to_vec())],
        Some(b"{}".to_vec()),
        Rest(415, "UNSUPPORTED_MEDIA_TYPE"),
    );
    add(
        Method::POST,
        "/api/records".into(),
        vec![(
            "content-type",
            b"application/x-www-form-urlencoded".to_vec(),
        )],
        Some(b"collection=todos&data=%7B%7D".to_vec()),
        Rest(415, "UNSUPPORTED_MEDIA_TYPE"),
    );

    // PUT and PATCH bodies that must be refused.
    for (body, status, code) in [
        ("", 400, BAD),
        ("{", 400, BAD),
        ("[]", 400, BAD),
        ("{\"data\": \"x\"}", 400, BAD),
        ("{\"data\": [1]}", 400, BAD),
        ("{\"data\": null}", 400, BAD),
        ("{}", 400, BAD),
        ("{\"data\": {}, \"version\": 1}", 400, BAD),
        ("{\"data\": {}, \"collection\": \"other\"}", 400, BAD),
    ] {
        add(
            Method::PUT,
            live.clone(),
            json_ct(),
            Some(body.as_bytes().to_vec()),
            Rest(status, code),
        );
    }
    for body in [
        "",
        "{",
        "null",
        "\"x\"",
        "[1]",
        "1",
        "true",
        "{\"a\": 1e400}",
    ] {
        add(
            Method::PATCH,
            live.clone(),
            vec![("content-type", b"application/merge-patch+json".to_vec())],
            Some(body.as_bytes().to_vec()),
            Rest(400, BAD),
        );
    }
    add(
        Method::PATCH,
        live.clone(),
        json_ct(),
        Some(json!({"big": big}).to_string().into_bytes()),
        Rest(400, BAD),
    );
    add(
        Method::PUT,
        live.clone(),
        json_ct(),
        Some(json!({"data": {"big": big}}).to_string().into_bytes()),
        Rest(400, BAD),
    );
    for (path, method) in [
        (&missing, Method::PUT),
        (&deleted, Method::PUT),
        (&missing, Method::PATCH),
        (&deleted, Method::PATCH),
        (&missing, Method::DELETE),
        (&deleted, Method::DELETE),
        (&missing, Method::GET),
    ] {
        let body = (method != Method::DELETE && method != Method::GET)
            .then(|| br#"{"data": {}}"#.to_vec());
        add(
            method,
            path.clone(),
            json_ct(),
            body,
            Rest(404, "NOT_FOUND"),
        );
    }

    // If-Match headers that are stale or not entity tags.
    let v = seed.live_version;
    let stale: Vec<String> = vec![
        format!("\"{}\"", v - 1),
        format!("\"{}\"", v + 1),
        format!("W/\"{v}\""),
        "\"abc\"".into(),
        "\"-1\"".into(),
        "\"99999999999\"".into(),
        "\"\"".into(),
        format!("W/\"{v}\", \"{}\"", v + 5),
        "\"1 OR 1=1\"".into(),
    ];
    let garbage: Vec<Vec<u8>> = vec![
        format!("{v}").into_bytes(),
        b"abc".to_vec(),
        b"\"unterminated".to_vec(),
        b"'1'".to_vec(),
        b"W/1".to_vec(),
        b"\xff\"1\"".to_vec(),
        format!("\"{v}\", {v}").into_bytes(),
        b"* OR 1=1".to_vec(),
    ];
    for method in [Method::PUT, Method::PATCH, Method::DELETE] {
        let body = (method != Method::DELETE).then(|| br#"{"data": {"hacked": true}}"#.to_vec());
        for tag in &stale {
            let mut headers = json_ct();
            headers.push(("if-match", tag.clone().into_bytes()));
            add(
                method.clone(),
                live.clone(),
                headers,
                body.clone(),
                Rest(412, "VERSION_CONFLICT"),
            );
        }
        for tag in &garbage {
            let mut headers = json_ct();
            headers.push(("if-match", tag.clone()));
            add(
                method.clone(),
                live.clone(),
                headers,
                body.clone(),
                Rest(400, BAD),
            );
        }
    }

    // Paths that are not records.
    // Known deviation: an id that percent-decodes to invalid UTF-8 is refused by the
    // framework's path extractor with a plain-text 400, not `{"error": ...}`.
    for method in [Method::GET, Method::DELETE, Method::PUT] {
        add(
            method,
            "/api/records/%FF%FE".into(),
            json_ct(),
            None,
            HttpExpect::NotJson(400),
        );
    }
    for path in [
        "/api/records/not-a-uuid",
        "/api/records/%27%20OR%201%3D1%20--",
        "/api/records/%00",
        "/api/records/00000000-0000-0000-0000-00000000000g",
        "/api/records/1;DROP%20TABLE%20record",
    ] {
        for method in [Method::GET, Method::DELETE] {
            add(method, path.into(), vec![], None, Rest(400, BAD));
        }
        add(
            Method::PUT,
            path.into(),
            json_ct(),
            Some(br#"{"data": {}}"#.to_vec()),
            Rest(400, BAD),
        );
    }
    // Known deviation: `/api/` (with the slash) falls outside the REST router and gets
    // the router's bare 404, without a body.
    add(
        Method::GET,
        "/api/".into(),
        vec![],
        None,
        HttpExpect::NotJson(404),
    );
    for path in [
        "/api",
        "/api/nope",
        "/api/records/x/y",
        &format!("{live}/history"),
        "/api/changes/x",
        "/api/records/..%2F..%2Fetc%2Fpasswd/x",
    ] {
        add(
            Method::GET,
            path.into(),
            vec![],
            None,
            Rest(404, "NOT_FOUND"),
        );
    }
    for (method, path) in [
        ("DELETE", "/api/records"),
        ("PUT", "/api/records"),
        ("POST", live.as_str()),
        ("POST", "/api/changes"),
        ("DELETE", "/api/changes"),
        ("POST", "/api/changes/stream"),
        ("BREW", "/api/records"),
        ("TRACE", live.as_str()),
    ] {
        add(
            Method::from_bytes(method.as_bytes()).expect("method"),
            path.into(),
            json_ct(),
            Some(br#"{"collection": "todos", "data": {}}"#.to_vec()),
            Rest(405, "METHOD_NOT_ALLOWED"),
        );
    }

    // Query parameters.
    let mut params: Vec<String> = vec![
        "limit=-1".into(),
        "limit=abc".into(),
        "limit=1.5".into(),
        "limit=1e3".into(),
        "limit=99999999999".into(),
        "limit=501".into(),
        "limit=%00".into(),
        "limit=%FF".into(),
        "limit=0x10".into(),
        "limit=1%20OR%201=1".into(),
        "limit=2147483648".into(),
    ];
    for c in garbage_cursors(seed)
        .into_iter()
        .filter(|c| !c.is_empty() && c.len() < 10_000)
    {
        params.push(format!("after={}", urlencode(&c)));
    }
    for s in hostile_strings()
        .into_iter()
        .filter(|s| !s.is_empty() && !valid_collection(s))
    {
        params.push(format!("collection={}", urlencode(&s)));
    }
    for p in &params {
        for path in ["/api/records", "/api/changes", "/api/changes/stream"] {
            if path == "/api/changes/stream" && p.starts_with("limit") {
                continue;
            }
            let wrong_kind = path != "/api/records" && p.contains(&urlencode(&seed.change_cursor));
            if wrong_kind {
                continue;
            }
            add(
                Method::GET,
                format!("{path}?{p}"),
                vec![],
                None,
                Rest(400, BAD),
            );
        }
    }
    // Valid-looking collections are data: they match nothing.
    for s in hostile_strings()
        .into_iter()
        .filter(|s| valid_collection(s))
    {
        add(
            Method::GET,
            format!("/api/records?collection={}", urlencode(&s)),
            vec![],
            None,
            RestAnswers(Arc::new(|b: &Value| {
                if b["items"] == json!([]) {
                    Ok(())
                } else {
                    Err("expected no items".into())
                }
            })),
        );
    }
    // Forged but well-formed cursors are positions like any other (within years 0000
    // to 9999; beyond, they are refused).
    add(
        Method::GET,
        format!(
            "/api/records?limit=5&after={}",
            far_cursor(seed, BEFORE_POSTGRES_TIME)
        ),
        vec![],
        None,
        Rest(400, BAD),
    );
    let forged = [
        far_cursor(seed, 0),
        far_cursor(seed, 253_402_300_799_999_999),
    ];
    for cursor in forged {
        add(
            Method::GET,
            format!("/api/records?limit=5&after={cursor}"),
            vec![],
            None,
            RestAnswers(Arc::new(|b: &Value| {
                if b["items"].as_array().is_some_and(|i| i.len() <= 5) {
                    Ok(())
                } else {
                    Err("expected a page".into())
                }
            })),
        );
    }
    // A change cursor and a records cursor are not interchangeable.
    add(
        Method::GET,
        format!("/api/changes?after={}", seed.created_cursor),
        vec![],
        None,
        Rest(400, BAD),
    );
    add(
        Method::GET,
        format!("/api/changes/stream?after={}", seed.id_cursor),
        vec![],
        None,
        Rest(400, BAD),
    );
    // The stream's Last-Event-ID, which wins over `after`.
    for id in [
        b"garbage".to_vec(),
        b64("chg:-1").into_bytes(),
        b64(&format!("chg:{}", i64::MAX)).into_bytes(),
        seed.created_cursor.clone().into_bytes(),
        b"' OR 1=1 --".to_vec(),
        "x".repeat(8_000).into_bytes(),
    ] {
        add(
            Method::GET,
            format!("/api/changes/stream?after={}", seed.head),
            vec![("last-event-id", id)],
            None,
            Rest(400, BAD),
        );
    }
    cases
}

/// Percent-encodes everything but unreserved characters.
fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// WebSocket messages and frames of both subprotocols.
fn ws_cases(limits: &Limits) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut add = |protocol: Option<&'static str>,
                   init: bool,
                   name: String,
                   messages: Vec<Message>,
                   expect: WsExpect| {
        cases.push(Case {
            name: format!(
                "{} {}{name}",
                protocol.unwrap_or("no subprotocol"),
                if init { "after connection_init: " } else { "" }
            ),
            probe: Probe::Ws {
                protocol,
                init,
                messages,
                expect,
            },
        });
    };
    let text = |s: &str| Message::Text(s.to_owned().into());
    let garbage: Vec<String> = [
        "",
        " ",
        "not json",
        "{",
        "}",
        "[]",
        "null",
        "1",
        "\"connection_init\"",
        "{}",
        "{\"type\": 1}",
        "{\"type\": null}",
        "{\"type\": [\"subscribe\"]}",
        "{\"type\": \"nope\"}",
        "{\"type\": \"SUBSCRIBE\", \"id\": \"1\", \"payload\": {\"query\": \"{ __typename }\"}}",
        "{\"type\": \"subscribe\"}",
        "{\"type\": \"subscribe\", \"id\": 1, \"payload\": {\"query\": \"{ __typename }\"}}",
        "{\"type\": \"subscribe\", \"id\": {}, \"payload\": {\"query\": \"{ __typename }\"}}",
        "{\"type\": \"subscribe\", \"id\": \"1\"}",
        "{\"type\": \"subscribe\", \"id\": \"1\", \"payload\": \"{ __typename }\"}",
        "{\"type\": \"subscribe\", \"id\": \"1\", \"payload\": {\"query\": 5}}",
        "{\"type\": \"subscribe\", \"id\": \"1\", \"payload\": {\"query\": \"{ __typename }\", \"variables\": [1]}}",
        "{\"type\": \"subscribe\", \"id\": \"1\", \"payload\": {\"query\": \"{ __typename }\", \"operationName\": 5}}",
        "{\"type\": \"start\", \"id\": 1, \"payload\": {\"query\": \"{ __typename }\"}}",
        "{\"type\": \"start\", \"id\": \"1\", \"payload\": [1]}",
        "{\"type\": \"complete\"}",
        "{\"type\": \"stop\"}",
        "{\"type\": \"next\", \"id\": \"1\", \"payload\": {}}",
        "{\"type\": \"data\", \"id\": \"1\", \"payload\": {}}",
        "{\"type\": \"error\", \"id\": \"1\", \"payload\": []}",
        "{\"type\": \"connection_ack\"}",
        "{\"type\": \"ka\"}",
        "{\"type\": \"connection_init\", \"payload\": {}} trailing",
        "{\"type\": \"subscribe\", \"id\": \"1\", \"payload\": {\"query\": \"{ __typename }\"}, \"type\": 5}",
        "{\"type\": \"subscribe\", \"id\": \"1\", \"payload\": {\"query\": \"\\ud800\"}}",
        "'; DROP TABLE record; --",
        "\u{feff}{\"type\": \"ping\"}",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([
        format!("{}1{}", "[".repeat(50_000), "]".repeat(50_000)),
        format!(
            "{{\"type\": \"subscribe\", \"id\": \"1\", \"payload\": {{\"query\": \"{{ __typename }}\", \"variables\": {{\"v\": {}1{}}}}}}}",
            "[".repeat(5_000),
            "]".repeat(5_000)
        ),
    ])
    .collect();
    // Every prefix of a good message, cut at a few places.
    let good = r#"{"type": "subscribe", "id": "op-1", "payload": {"query": "mutation { deleteRecord(id: \"00000000-0000-0000-0000-000000000000\") { id } }", "variables": {}}}"#;
    let legacy_good = good.replace("subscribe", "start");
    let cuts: Vec<usize> = (1..good.len()).step_by(9).collect();

    for s in &garbage {
        // A transport message that is not one the protocol defines closes 4400; the
        // legacy protocol answers `error` and goes on.
        add(
            Some(TRANSPORT_WS),
            true,
            shown(s),
            vec![text(s)],
            WsExpect::Close(&[4400]),
        );
        add(
            Some(LEGACY_WS),
            true,
            shown(s),
            vec![text(s)],
            WsExpect::ErrorThenUsable,
        );
    }
    for cut in &cuts {
        add(
            Some(TRANSPORT_WS),
            true,
            format!("truncated: {}", shown(&good[..*cut])),
            vec![text(&good[..*cut])],
            WsExpect::Close(&[4400]),
        );
        let cut = (*cut).min(legacy_good.len() - 1);
        add(
            Some(LEGACY_WS),
            true,
            format!("truncated: {}", shown(&legacy_good[..cut])),
            vec![text(&legacy_good[..cut])],
            WsExpect::ErrorThenUsable,
        );
    }
    // Binary frames are read like text; garbage in them is garbage.
    for bytes in [
        &b"\x00\x01\x02\x03"[..],
        b"\xff\xfe\xfd",
        b"{\"type\": \"subscribe\", \"id\": \"\xff\"}",
        b"",
    ] {
        let name = format!("binary {bytes:?}");
        add(
            Some(TRANSPORT_WS),
            true,
            name.clone(),
            vec![Message::Binary(bytes.to_vec().into())],
            WsExpect::Close(&[4400]),
        );
        add(
            Some(LEGACY_WS),
            true,
            name,
            vec![Message::Binary(bytes.to_vec().into())],
            WsExpect::ErrorThenUsable,
        );
    }
    // Protocol state: before init, a second init, init payloads, duplicate ids.
    let subscribe = r#"{"type": "subscribe", "id": "1", "payload": {"query": "{ __typename }"}}"#;
    add(
        Some(TRANSPORT_WS),
        false,
        "subscribe before connection_init".into(),
        vec![text(subscribe)],
        WsExpect::Close(&[4401]),
    );
    add(
        Some(TRANSPORT_WS),
        false,
        "never sends connection_init".into(),
        vec![],
        WsExpect::Close(&[4408]),
    );
    add(
        Some(LEGACY_WS),
        false,
        "never sends connection_init".into(),
        vec![],
        WsExpect::Close(&[4408]),
    );
    add(
        Some(TRANSPORT_WS),
        false,
        "only pings, never connection_init".into(),
        vec![text("{\"type\": \"ping\"}"); 3],
        WsExpect::Close(&[4408]),
    );
    add(
        Some(TRANSPORT_WS),
        true,
        "a second connection_init".into(),
        vec![text("{\"type\": \"connection_init\"}")],
        WsExpect::Close(&[4429]),
    );
    for payload in ["\"token\"", "1", "[]", "true"] {
        add(
            Some(TRANSPORT_WS),
            false,
            format!("connection_init with payload {payload}"),
            vec![text(&format!(
                "{{\"type\": \"connection_init\", \"payload\": {payload}}}"
            ))],
            WsExpect::Close(&[4400]),
        );
    }
    add(
        Some(TRANSPORT_WS),
        true,
        "the same id twice while the first runs".into(),
        vec![
            text(
                r#"{"type": "subscribe", "id": "dup", "payload": {"query": "subscription { recordChanged { cursor } }"}}"#,
            ),
            text(
                r#"{"type": "subscribe", "id": "dup", "payload": {"query": "subscription { recordChanged { cursor } }"}}"#,
            ),
        ],
        WsExpect::Close(&[4409]),
    );
    add(
        Some(LEGACY_WS),
        false,
        "start before connection_init".into(),
        vec![text(&subscribe.replace("subscribe", "start"))],
        WsExpect::ErrorThenUsable,
    );
    // Messages the protocols ignore: the connection must go on.
    for s in [
        r#"{"type": "complete", "id": "never-started"}"#,
        r#"{"type": "pong", "payload": {"' OR 1=1 --": 1}}"#,
        r#"{"type": "pong"}"#,
    ] {
        add(
            Some(TRANSPORT_WS),
            true,
            shown(s),
            vec![text(s)],
            WsExpect::Ignored,
        );
    }
    add(
        Some(LEGACY_WS),
        true,
        "stop of an operation never started".into(),
        vec![text(r#"{"type": "stop", "id": "never-started"}"#)],
        WsExpect::Ignored,
    );
    // Frames that break WebSocket itself: over-long messages, invalid UTF-8, fragments
    // that never finish properly.
    let over = limits.ws_message + 1;
    for protocol in [TRANSPORT_WS, LEGACY_WS] {
        let frames: Vec<(&str, Vec<Message>, &'static [u16])> = vec![
            (
                "a text message one byte over the limit",
                vec![text(&format!(
                    "{{\"type\": \"ping\", \"payload\": \"{}\"}}",
                    "p".repeat(over)
                ))],
                &[1009],
            ),
            (
                "a binary message of four times the limit",
                vec![Message::Binary(vec![b'['; 4 * over].into())],
                &[1009],
            ),
            (
                "a message over the limit in small fragments",
                {
                    let chunk = vec![b' '; 16 * 1024];
                    let n = over / chunk.len() + 2;
                    (0..n)
                        .map(|i| {
                            let opcode = if i == 0 {
                                OpCode::Data(Data::Text)
                            } else {
                                OpCode::Data(Data::Continue)
                            };
                            Message::Frame(Frame::message(chunk.clone(), opcode, i == n - 1))
                        })
                        .collect()
                },
                &[1009],
            ),
            (
                "a text frame of invalid UTF-8",
                vec![Message::Frame(Frame::message(
                    b"{\"type\": \"\xff\xfe\"}".to_vec(),
                    OpCode::Data(Data::Text),
                    true,
                ))],
                &[1002, 1007],
            ),
            (
                "invalid UTF-8 split across fragments",
                vec![
                    Message::Frame(Frame::message(
                        b"{\"type\": \"\xe2\x82".to_vec(),
                        OpCode::Data(Data::Text),
                        false,
                    )),
                    Message::Frame(Frame::message(
                        b"\"}".to_vec(),
                        OpCode::Data(Data::Continue),
                        true,
                    )),
                ],
                &[1002, 1007],
            ),
            (
                "a continuation frame with nothing to continue",
                vec![Message::Frame(Frame::message(
                    b"{}".to_vec(),
                    OpCode::Data(Data::Continue),
                    true,
                ))],
                &[1002],
            ),
            (
                "a new text frame while a fragmented one is open",
                vec![
                    Message::Frame(Frame::message(
                        b"{\"type\":".to_vec(),
                        OpCode::Data(Data::Text),
                        false,
                    )),
                    Message::Frame(Frame::message(
                        b"{\"type\": \"ping\"}".to_vec(),
                        OpCode::Data(Data::Text),
                        true,
                    )),
                ],
                &[1002],
            ),
            (
                "a frame with a reserved opcode",
                vec![Message::Frame(Frame::message(
                    b"{}".to_vec(),
                    OpCode::Data(Data::Reserved(3)),
                    true,
                ))],
                &[1002],
            ),
            (
                "a frame with RSV1 set",
                vec![Message::Frame({
                    let mut f = Frame::message(
                        b"{\"type\": \"ping\"}".to_vec(),
                        OpCode::Data(Data::Text),
                        true,
                    );
                    f.header_mut().rsv1 = true;
                    f
                })],
                &[1002],
            ),
        ];
        for (name, messages, codes) in frames {
            add(
                Some(protocol),
                true,
                name.into(),
                messages,
                WsExpect::Close(codes),
            );
        }
    }
    // Subprotocols the server does not speak: the upgrade succeeds, then 4406.
    add(
        None,
        false,
        "no subprotocol".into(),
        vec![],
        WsExpect::Close(&[4406]),
    );
    for protocol in [
        "graphql-ws-evil",
        "GRAPHQL-TRANSPORT-WS",
        "graphql-transport-ws-v2",
        "' OR 1=1 --",
    ] {
        cases.push(Case {
            name: format!("subprotocol {protocol:?}"),
            probe: Probe::TcpWs {
                protocol,
                bytes: vec![],
                codes: &[4406],
                must_close: true,
            },
        });
    }
    cases
}

/// Bytes no HTTP or WebSocket library would send.
fn tcp_cases(limits: &Limits) -> Vec<Case> {
    let mut cases = Vec::new();
    let http = |s: &str| s.as_bytes().to_vec();
    let refused: Vec<(&str, Vec<u8>)> = vec![
        ("binary garbage", b"\x00\x01\x02\x03\xff\xfe\r\n\r\n".to_vec()),
        ("a TLS ClientHello", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03".to_vec()),
        ("an HTTP/2 preface", http("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")),
        ("a request line only", http("GET /graphql HTTP/1.1\r\n")),
        ("a request cut in the headers", http("POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Ty")),
        ("a bad HTTP version", http("GET /graphql HTTP/9.9\r\nHost: x\r\n\r\n")),
        ("a method with spaces", http("G ET /graphql HTTP/1.1\r\nHost: x\r\n\r\n")),
        ("a header without a colon", http("GET /graphql HTTP/1.1\r\nHost x\r\n\r\n")),
        (
            "a header with invalid bytes in its name",
            b"GET /graphql HTTP/1.1\r\nHo\xffst: x\r\n\r\n".to_vec(),
        ),
        (
            "raw invalid UTF-8 in the path",
            b"GET /api/records/\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        ),
        (
            "a 100 KiB header",
            format!(
                "GET /graphql?query=%7B__typename%7D HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
                "a".repeat(1024 * 1024)
            )
            .into_bytes(),
        ),
        (
            "a 1 MiB URI",
            format!(
                "GET /graphql?query={} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                "a".repeat(1024 * 1024)
            )
            .into_bytes(),
        ),
        (
            "a negative Content-Length",
            http("POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: -1\r\n\r\n{}"),
        ),
        (
            "a Content-Length that is not a number",
            http("POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}"),
        ),
        (
            "two different Content-Lengths",
            http("POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 30\r\n\r\n{}"),
        ),
        (
            "Content-Length and chunked together",
            http("POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ),
        (
            "a chunk size that is not hex",
            http("POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"),
        ),
        (
            "a chunk size of 2^64",
            http("POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n10000000000000000\r\n{}\r\n0\r\n\r\n"),
        ),
        (
            "a body shorter than its Content-Length",
            http("POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"query\": \"mutation"),
        ),
        (
            "a REST body shorter than its Content-Length",
            http("POST /api/records HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"collection\": \"todos\", \"data\": {"),
        ),
        (
            "a chunked body that stops mid-chunk",
            http("POST /api/records HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n100\r\n{\"collection\": \"todos\""),
        ),
        (
            "an unknown Transfer-Encoding",
            http("POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n{}"),
        ),
    ];
    for (name, bytes) in refused {
        cases.push(Case {
            name: name.into(),
            probe: Probe::Tcp {
                bytes,
                expect: TcpExpect::Refused,
            },
        });
    }
    // A chunked body (no Content-Length) over the limit is refused by the application.
    let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
    let mut body = String::from(
        "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    );
    body.push_str("1\r\n{\r\n");
    for _ in 0..(limits.body / (64 * 1024) + 2) {
        body.push_str(&chunk);
    }
    body.push_str("0\r\n\r\n");
    cases.push(Case {
        name: "a chunked body over the limit".into(),
        probe: Probe::Tcp {
            bytes: body.into_bytes(),
            expect: TcpExpect::Graphql(413, "PAYLOAD_TOO_LARGE"),
        },
    });
    // A body far over the limit: the server answers 413 and closes without reading the
    // rest, so the client may see the answer or only the reset.
    let mut huge = format!(
        "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        4 * limits.body
    )
    .into_bytes();
    huge.extend(std::iter::repeat_n(b' ', 4 * limits.body));
    cases.push(Case {
        name: format!("a body of {} bytes", 4 * limits.body),
        probe: Probe::Tcp {
            bytes: huge,
            expect: TcpExpect::Refused,
        },
    });
    cases.push(Case {
        name: "Expect: 100-continue with a Content-Length over the limit".into(),
        probe: Probe::Tcp {
            bytes: format!(
                "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
                limits.body * 64
            )
            .into_bytes(),
            expect: TcpExpect::Refused,
        },
    });

    // WebSocket frames no library writes, each followed by the client going away.
    let masked = |first: u8, payload: &[u8]| ws_frame(first, payload, true);
    let init = masked(0x81, br#"{"type": "connection_init"}"#);
    let mut frames: Vec<Vec<u8>> = vec![
        ws_frame(0x81, br#"{"type": "connection_init"}"#, false),
        vec![0x81],
        vec![0x81, 0x80 | 100, 1, 2, 3, 4, b'{'],
        vec![
            0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4,
        ],
        vec![
            0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4,
        ],
        vec![0x81, 0x85, 1, 2],
        vec![
            0x81, 0xfe, 0x00, 0x05, 1, 2, 3, 4, b'a', b'b', b'c', b'd', b'e',
        ],
        masked(0x88, &[0x03]),
        masked(0x88, &[0x03, 0xe7]),
        masked(0x88, &[0x03, 0xe8, 0xff, 0xfe]),
        masked(0x8a, &[0; 126]),
        masked(0x89, &[b'x'; 200]),
        masked(0x09, b"x"),
        masked(0x0f, b"{}"),
        masked(0x70 | 0x81, b"{}"),
    ];
    let mut subscribe = init.clone();
    subscribe.extend(masked(
        0x81,
        br#"{"type": "subscribe", "id": "1", "payload": {"query": "mutation { createRecord(input: {collection: \"todos\", data: {}}) { id } }"}}"#,
    ));
    subscribe.truncate(subscribe.len() - 20);
    frames.push(subscribe);
    let mut fragmented = init.clone();
    fragmented.extend(masked(0x01, br#"{"type": "subscribe", "id": "1", "#));
    frames.push(fragmented);
    for frame in frames {
        for protocol in [TRANSPORT_WS, LEGACY_WS] {
            cases.push(Case {
                name: format!(
                    "{protocol} frame bytes {:?}",
                    shown(&format!("{frame:02x?}"))
                ),
                probe: Probe::TcpWs {
                    protocol,
                    bytes: frame.clone(),
                    codes: &[1000, 1002, 1007, 1009, 4400],
                    must_close: false,
                },
            });
        }
    }
    cases
}

/// A WebSocket frame with `first` as its first byte (FIN, RSV, opcode).
fn ws_frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![first];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xffff => {
            out.push(mask_bit | 126);
            out.extend((n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend((n as u64).to_be_bytes());
        }
    }
    if masked {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        out.extend(key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend(payload);
    }
    out
}

// ---------------------------------------------------------------------------------
// Running a probe and judging its answer.
// ---------------------------------------------------------------------------------

struct Ctx<'a> {
    app: &'a TestApp,
    limits: &'a Limits,
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What a WebSocket client sees next.
#[derive(Debug)]
enum WsEvent {
    Json(Value),
    Text(#[allow(dead_code)] String),
    Close(u16),
    /// The connection ended without a close frame.
    Ended(#[allow(dead_code)] String),
}

impl Ctx<'_> {
    async fn run(&self, probe: &Probe) -> Result<(), String> {
        match probe {
            Probe::Graphql { via, gql } => self.graphql(*via, gql).await,
            Probe::Http {
                method,
                path,
                headers,
                body,
                expect,
            } => {
                let url = format!("http://{}{path}", self.app.addr);
                let mut req = self.app.http.request(method.clone(), url);
                for (name, value) in headers {
                    let value = HeaderValue::from_bytes(value).map_err(|e| e.to_string())?;
                    req = req.header(*name, value);
                }
                if let Some(body) = body {
                    req = req.body(body.clone());
                }
                let resp = req.send().await.map_err(|e| format!("no answer: {e}"))?;
                check_http(resp, expect).await
            }
            Probe::Ws {
                protocol,
                init,
                messages,
                expect,
            } => self.ws(*protocol, *init, messages, expect).await,
            Probe::Tcp { bytes, expect } => self.tcp(bytes, expect).await,
            Probe::TcpWs {
                protocol,
                bytes,
                codes,
                must_close,
            } => self.tcp_ws(protocol, bytes, codes, *must_close).await,
        }
    }

    /// One GraphQL request over `via`, judged by what that transport shows of the
    /// outcome.
    async fn graphql(&self, via: Via, gql: &Gql) -> Result<(), String> {
        let mut body = json!({"query": gql.query, "variables": gql.variables});
        if let Some(name) = &gql.operation_name {
            body["operationName"] = json!(name);
        }
        if let Some(extensions) = &gql.extensions {
            body["extensions"] = extensions.clone();
        }
        let body = body.to_string();
        let too_big = body.len() > self.limits.body;
        // Plain HTTP runs no subscription.
        let outcome = match (via, gql.op) {
            (Via::Post { .. } | Via::Get, Op::Subscription) => Outcome::Refused,
            _ => gql.outcome.clone(),
        };
        match via {
            Via::Post { graphql_response } => {
                let accept = if graphql_response {
                    "application/graphql-response+json"
                } else {
                    "application/json"
                };
                let resp = self
                    .app
                    .http
                    .post(self.app.url())
                    .header("content-type", "application/json")
                    .header("accept", accept)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| format!("no answer: {e}"))?;
                if too_big {
                    return check_http(resp, &HttpExpect::Graphql(413, "PAYLOAD_TOO_LARGE")).await;
                }
                let refused_status = if graphql_response { 400 } else { 200 };
                check_graphql_http(resp, &outcome, refused_status).await
            }
            Via::Get | Via::SseGet => {
                let mut params = vec![
                    ("query", gql.query.clone()),
                    ("variables", gql.variables.to_string()),
                ];
                if let Some(name) = &gql.operation_name {
                    params.push(("operationName", name.clone()));
                }
                if let Some(extensions) = &gql.extensions {
                    params.push(("extensions", extensions.to_string()));
                }
                let mut req = self.app.http.get(self.app.url()).query(&params);
                if matches!(via, Via::SseGet) {
                    req = req.header("accept", "text/event-stream");
                }
                let resp = req.send().await.map_err(|e| format!("no answer: {e}"))?;
                if gql.op == Op::Mutation {
                    return check_http(resp, &HttpExpect::Graphql(405, "METHOD_NOT_ALLOWED")).await;
                }
                if matches!(via, Via::SseGet) {
                    check_sse(resp, &outcome).await
                } else {
                    check_graphql_http(resp, &outcome, 200).await
                }
            }
            Via::SsePost => {
                let resp = self
                    .app
                    .http
                    .post(self.app.url())
                    .header("content-type", "application/json")
                    .header("accept", "text/event-stream")
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| format!("no answer: {e}"))?;
                if too_big {
                    return check_http(resp, &HttpExpect::Graphql(413, "PAYLOAD_TOO_LARGE")).await;
                }
                check_sse(resp, &outcome).await
            }
            Via::Ws(protocol) => self.graphql_ws(protocol, gql, &outcome).await,
        }
    }

    async fn graphql_ws(
        &self,
        protocol: &'static str,
        gql: &Gql,
        outcome: &Outcome,
    ) -> Result<(), String> {
        let mut ws = self.connect(Some(protocol)).await?;
        init(&mut ws, protocol).await?;
        let legacy = protocol == LEGACY_WS;
        let mut payload = json!({"query": gql.query, "variables": gql.variables});
        if let Some(name) = &gql.operation_name {
            payload["operationName"] = json!(name);
        }
        if let Some(extensions) = &gql.extensions {
            payload["extensions"] = extensions.clone();
        }
        let kind = if legacy { "start" } else { "subscribe" };
        let msg = json!({"type": kind, "id": "1", "payload": payload}).to_string();
        let too_big = msg.len() > self.limits.ws_message;
        // The server may close while a big message is still going out.
        let _ = ws.send(Message::Text(msg.into())).await;
        if too_big {
            return expect_close(&mut ws, &[1009]).await;
        }
        let first = next_json(&mut ws).await?;
        let result = if legacy { "data" } else { "next" };
        match outcome {
            Outcome::Refused => {
                if first["type"] != "error" || first["id"] != "1" {
                    return Err(format!("expected an error message, got {first}"));
                }
                // The legacy protocol's error payload is a list of GraphQL errors here.
                errors_have_messages(&first["payload"])
            }
            // Errors raised while executing are a result, then `complete`.
            _ => {
                if first["type"] != result || first["id"] != "1" {
                    return Err(format!("expected {result}, got {first}"));
                }
                judge(&first["payload"], outcome)?;
                expect_complete(&mut ws).await
            }
        }
    }

    async fn connect(&self, protocol: Option<&str>) -> Result<Socket, String> {
        let mut req = self
            .app
            .ws_url()
            .into_client_request()
            .map_err(|e| e.to_string())?;
        if let Some(p) = protocol {
            req.headers_mut().insert(
                "sec-websocket-protocol",
                WsHeaderValue::from_str(p).map_err(|e| e.to_string())?,
            );
        }
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .map_err(|e| format!("WebSocket handshake failed: {e}"))?;
        Ok(ws)
    }

    async fn ws(
        &self,
        protocol: Option<&'static str>,
        init_first: bool,
        messages: &[Message],
        expect: &WsExpect,
    ) -> Result<(), String> {
        let mut ws = self.connect(protocol).await?;
        if init_first {
            init(&mut ws, protocol.unwrap_or(TRANSPORT_WS)).await?;
        }
        for msg in messages {
            // A server that already closed refuses the rest; the close says why.
            if ws.send(msg.clone()).await.is_err() {
                break;
            }
        }
        match expect {
            WsExpect::Close(codes) => expect_close(&mut ws, codes).await,
            WsExpect::ErrorThenUsable => {
                let msg = next_json(&mut ws).await?;
                let message = &msg["payload"]["message"];
                let errors = &msg["payload"][0]["message"];
                if msg["type"] != "error" || !(message.is_string() || errors.is_string()) {
                    return Err(format!("expected an error message, got {msg}"));
                }
                if !init_first {
                    init(&mut ws, LEGACY_WS).await?;
                }
                usable_legacy(&mut ws).await
            }
            WsExpect::Ignored if protocol == Some(LEGACY_WS) => usable_legacy(&mut ws).await,
            WsExpect::Ignored => {
                let _ = ws
                    .send(Message::Text(
                        r#"{"type": "ping", "payload": {"n": 1}}"#.into(),
                    ))
                    .await;
                let msg = next_json(&mut ws).await?;
                if msg == json!({"type": "pong", "payload": {"n": 1}}) {
                    Ok(())
                } else {
                    Err(format!("expected the pong, got {msg}"))
                }
            }
        }
    }

    async fn tcp(&self, bytes: &[u8], expect: &TcpExpect) -> Result<(), String> {
        let stream = TcpStream::connect(self.app.addr)
            .await
            .map_err(|e| e.to_string())?;
        let (mut reader, mut writer) = stream.into_split();
        let bytes = bytes.to_vec();
        // Write while reading: the server may answer (and stop reading) early.
        let write = tokio::spawn(async move {
            let _ = writer.write_all(&bytes).await;
            let _ = writer.shutdown().await;
            writer
        });
        let mut answer = Vec::new();
        let _ = reader.read_to_end(&mut answer).await;
        drop(write.await);
        let text = String::from_utf8_lossy(&answer);
        let text = text
            .strip_prefix("HTTP/1.1 100 Continue\r\n\r\n")
            .unwrap_or(&text);
        let status: Option<u16> = text
            .strip_prefix("HTTP/1.1 ")
            .and_then(|s| s.get(..3))
            .and_then(|s| s.parse().ok());
        match (expect, status) {
            (_, Some(s)) if s >= 500 => Err(format!("answered {s}: {}", shown(text))),
            (TcpExpect::Refused, None) if answer.is_empty() => Ok(()),
            (TcpExpect::Refused, Some(s)) if (400..500).contains(&s) => Ok(()),
            (TcpExpect::Graphql(want, code), Some(s)) if s == *want => {
                let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
                let body: Value = serde_json::from_str(body)
                    .map_err(|e| format!("body is not JSON ({e}): {}", shown(body)))?;
                coded_errors(&body, code)
            }
            _ => Err(format!("unexpected answer: {}", shown(text))),
        }
    }

    async fn tcp_ws(
        &self,
        protocol: &str,
        bytes: &[u8],
        codes: &[u16],
        must_close: bool,
    ) -> Result<(), String> {
        let mut stream = TcpStream::connect(self.app.addr)
            .await
            .map_err(|e| e.to_string())?;
        let handshake = format!(
            "GET /graphql HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n",
            self.app.addr
        );
        stream
            .write_all(handshake.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            let n = stream.read(&mut byte).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("closed during the handshake".into());
            }
            head.push(byte[0]);
        }
        if !head.starts_with(b"HTTP/1.1 101") {
            return Err(format!("handshake: {}", String::from_utf8_lossy(&head)));
        }
        let _ = stream.write_all(bytes).await;
        let _ = stream.shutdown().await;
        // The server must let go: a close frame (with an allowed code) or the end.
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        let mut closed = false;
        for (opcode, payload) in server_frames(&answer) {
            if opcode == 0x8 && payload.len() >= 2 {
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                if !codes.contains(&code) {
                    return Err(format!("closed with {code}, wanted one of {codes:?}"));
                }
                closed = true;
            }
        }
        if must_close && !closed {
            return Err(format!("no close frame, wanted one of {codes:?}"));
        }
        Ok(())
    }
}

/// The frames a server sent (unmasked), as far as they are complete.
fn server_frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while bytes.len() >= 2 {
        let opcode = bytes[0] & 0x0f;
        let (len, head) = match bytes[1] & 0x7f {
            126 if bytes.len() >= 4 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            127 if bytes.len() >= 10 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&bytes[2..10]);
                (u64::from_be_bytes(n) as usize, 10)
            }
            n if n < 126 => (n as usize, 2),
            _ => break,
        };
        if bytes.len() < head + len {
            break;
        }
        out.push((opcode, bytes[head..head + len].to_vec()));
        bytes = &bytes[head + len..];
    }
    out
}

/// `connection_init`, answered by `connection_ack`.
async fn init(ws: &mut Socket, protocol: &str) -> Result<(), String> {
    let init = if protocol == LEGACY_WS {
        r#"{"type": "connection_init", "payload": {}}"#
    } else {
        r#"{"type": "connection_init"}"#
    };
    ws.send(Message::Text(init.into()))
        .await
        .map_err(|e| e.to_string())?;
    let ack = next_json(ws).await?;
    if ack["type"] == "connection_ack" {
        Ok(())
    } else {
        Err(format!("expected connection_ack, got {ack}"))
    }
}

/// The next message, skipping pings and legacy `ka`.
async fn next_event(ws: &mut Socket) -> WsEvent {
    loop {
        match ws.next().await {
            None => return WsEvent::Ended("end of stream".into()),
            Some(Err(e)) => return WsEvent::Ended(e.to_string()),
            Some(Ok(Message::Close(Some(CloseFrame { code, .. })))) => {
                return WsEvent::Close(code.into());
            }
            Some(Ok(Message::Close(None))) => return WsEvent::Close(1005),
            Some(Ok(Message::Text(t))) => match serde_json::from_str::<Value>(&t) {
                Ok(v) if v["type"] == "ka" => continue,
                Ok(v) => return WsEvent::Json(v),
                Err(_) => return WsEvent::Text(t.to_string()),
            },
            Some(Ok(Message::Binary(b))) => {
                return WsEvent::Text(String::from_utf8_lossy(&b).into_owned());
            }
            Some(Ok(_)) => continue,
        }
    }
}

async fn next_json(ws: &mut Socket) -> Result<Value, String> {
    match next_event(ws).await {
        WsEvent::Json(v) => Ok(v),
        other => Err(format!("expected a message, got {other:?}")),
    }
}

async fn expect_close(ws: &mut Socket, codes: &[u16]) -> Result<(), String> {
    loop {
        match next_event(ws).await {
            WsEvent::Close(code) if codes.contains(&code) => return Ok(()),
            // Messages sent before the refusal (a `next` of an earlier operation, the
            // `pong` to a ping before `connection_init`).
            WsEvent::Json(v) if !matches!(v["type"].as_str(), Some("error" | "next" | "pong")) => {
                return Err(format!("expected close {codes:?}, got {v}"));
            }
            WsEvent::Json(_) => continue,
            other => return Err(format!("expected close {codes:?}, got {other:?}")),
        }
    }
}

async fn expect_complete(ws: &mut Socket) -> Result<(), String> {
    let msg = next_json(ws).await?;
    if msg == json!({"type": "complete", "id": "1"}) {
        Ok(())
    } else {
        Err(format!("expected complete, got {msg}"))
    }
}

/// The legacy connection still runs a query.
async fn usable_legacy(ws: &mut Socket) -> Result<(), String> {
    ws.send(Message::Text(
        r#"{"type": "start", "id": "check", "payload": {"query": "{ __typename }"}}"#.into(),
    ))
    .await
    .map_err(|e| e.to_string())?;
    loop {
        let msg = next_json(ws).await?;
        // An `error` for a refused `start` may precede ours.
        if msg["type"] == "error" && msg["id"] != "check" {
            continue;
        }
        return if msg["type"] == "data" && msg["payload"]["data"]["__typename"] == "Query" {
            Ok(())
        } else {
            Err(format!("connection unusable afterwards: {msg}"))
        };
    }
}

/// A non-GraphQL HTTP answer.
async fn check_http(resp: reqwest::Response, expect: &HttpExpect) -> Result<(), String> {
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = resp.text().await.map_err(|e| format!("body: {e}"))?;
    let body: Result<Value, _> = serde_json::from_str(&text);
    let want = match expect {
        HttpExpect::Graphql(s, _) | HttpExpect::Rest(s, _) | HttpExpect::NotJson(s) => *s,
        HttpExpect::RestAnswers(_) => 200,
    };
    if status != want {
        return Err(format!("status {status} (wanted {want}): {}", shown(&text)));
    }
    if matches!(expect, HttpExpect::NotJson(_)) {
        return Ok(());
    }
    if !content_type.starts_with("application/json") {
        return Err(format!("content-type {content_type:?}: {}", shown(&text)));
    }
    let body = body.map_err(|e| format!("body is not JSON ({e}): {}", shown(&text)))?;
    match expect {
        HttpExpect::Graphql(_, code) => coded_errors(&body, code),
        HttpExpect::Rest(_, code) => {
            if body["error"]["code"] == *code && body["error"]["message"].is_string() {
                Ok(())
            } else {
                Err(format!("expected error code {code}, got {body}"))
            }
        }
        HttpExpect::RestAnswers(check) => check(&body),
        HttpExpect::NotJson(_) => Ok(()),
    }
}

/// `{"errors": [...]}` with this code and no `data`.
fn coded_errors(body: &Value, code: &str) -> Result<(), String> {
    if body.get("data").is_some() {
        return Err(format!("refused request has data: {body}"));
    }
    if body["errors"][0]["extensions"]["code"] == code && body["errors"][0]["message"].is_string() {
        Ok(())
    } else {
        Err(format!("expected code {code}, got {body}"))
    }
}

/// A GraphQL answer over plain HTTP.
async fn check_graphql_http(
    resp: reqwest::Response,
    outcome: &Outcome,
    refused_status: u16,
) -> Result<(), String> {
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(|e| format!("body: {e}"))?;
    let body: Value = serde_json::from_str(&text)
        .map_err(|e| format!("status {status}, body is not JSON ({e}): {}", shown(&text)))?;
    let want = match outcome {
        Outcome::Refused => refused_status,
        _ => 200,
    };
    if status != want {
        return Err(format!("status {status} (wanted {want}): {}", shown(&text)));
    }
    judge(&body, outcome)
}

fn judge(body: &Value, outcome: &Outcome) -> Result<(), String> {
    match outcome {
        Outcome::Refused => {
            if body.get("data").is_some() {
                return Err(format!(
                    "expected a refusal without data, got {}",
                    shown(&body.to_string())
                ));
            }
            errors_have_messages(&body["errors"])
        }
        Outcome::Failed(code) => failed_body(body, code),
        Outcome::BadValue => {
            if body.get("data") != Some(&Value::Null) {
                return Err(format!(
                    "expected data null, got {}",
                    shown(&body.to_string())
                ));
            }
            errors_have_messages(&body["errors"])
        }
        Outcome::Answers(check) => answers_body(body, check),
    }
}

fn errors_have_messages(errors: &Value) -> Result<(), String> {
    let list = errors.as_array().filter(|l| !l.is_empty()).ok_or_else(|| {
        format!(
            "expected a list of errors, got {}",
            shown(&errors.to_string())
        )
    })?;
    for e in list {
        if !e["message"].is_string() {
            return Err(format!("error without a message: {e}"));
        }
        if e["extensions"]["code"] == "INTERNAL_SERVER_ERROR" {
            return Err(format!("internal error: {e}"));
        }
    }
    Ok(())
}

/// Executed, and every error carries `code` (`*`: any code but an internal one).
fn failed_body(body: &Value, code: &str) -> Result<(), String> {
    if body.get("data").is_none() {
        return Err(format!(
            "expected an executed request, got {}",
            shown(&body.to_string())
        ));
    }
    errors_have_messages(&body["errors"])?;
    for e in body["errors"].as_array().into_iter().flatten() {
        let got = e["extensions"]["code"].as_str().unwrap_or("<no code>");
        if got != code && !(code == "*" && got != "<no code>") {
            return Err(format!("expected code {code}, got {e}"));
        }
    }
    Ok(())
}

fn answers_body(body: &Value, check: &Check) -> Result<(), String> {
    if let Some(errors) = body.get("errors") {
        return Err(format!("unexpected errors: {}", shown(&errors.to_string())));
    }
    check(&body["data"]).map_err(|e| format!("{e}: {}", shown(&body.to_string())))
}

/// A GraphQL answer as an event stream: one `next`, then `complete`, then the end.
async fn check_sse(resp: reqwest::Response, outcome: &Outcome) -> Result<(), String> {
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if status != 200 || !content_type.starts_with("text/event-stream") {
        let text = resp.text().await.unwrap_or_default();
        return Err(format!("status {status} {content_type}: {}", shown(&text)));
    }
    let mut stream = SseStream::new(resp);
    let first = stream
        .next()
        .await
        .ok_or("the stream ended without an event")?;
    if first.name != "next" {
        return Err(format!("expected next, got {first:?}"));
    }
    let body: Value =
        serde_json::from_str(&first.data).map_err(|e| format!("next is not JSON: {e}"))?;
    judge(&body, outcome)?;
    let complete = stream.next().await.ok_or("no complete event")?;
    if complete.name != "complete" {
        return Err(format!("expected complete, got {complete:?}"));
    }
    match stream.next().await {
        None => Ok(()),
        Some(e) => Err(format!("the stream goes on after complete: {e:?}")),
    }
}
