//! Several server instances on one PostgreSQL database, and what happens when
//! connections, instances or the database go away.
//!
//! Needs PostgreSQL at `RECORDSYNC_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), whatever `RECORDSYNC_TEST_BACKEND`
//! says, and fails without it; every test makes its own database. The SQLite run of the
//! suite leaves these tests to the PostgreSQL run (`--skip cluster::`).

use std::time::Duration;

use super::helpers::{TestApp, TestDb, WsClient, cursors, spawn_on};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

/// `n` creates on `app`'s collection `c`, each tagged with the writer's name and a
/// counter. Retries a write the server reports as unavailable.
fn spawn_writer(url: String, writer: &'static str, n: usize) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        for i in 0..n {
            loop {
                let body = json!({
                    "query": "mutation($d: JSON!) { createRecord(input: {collection: \"c\", data: $d}) { id } }",
                    "variables": {"d": {"writer": writer, "i": i}},
                });
                let resp: Value = match http.post(&url).json(&body).send().await {
                    Ok(r) => r.json().await.unwrap_or(Value::Null),
                    Err(_) => Value::Null,
                };
                if resp["data"]["createRecord"]["id"].is_string() {
                    break;
                }
                let code = resp["errors"][0]["extensions"]["code"].clone();
                assert!(
                    code == "SERVICE_UNAVAILABLE" || resp.is_null(),
                    "only unavailability may fail a write: {resp}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    })
}

/// Runs SQL on the test database through its own connection.
async fn sql(db: &TestDb, statement: &str) {
    let conn = sea_orm::Database::connect(&db.url).await.expect("connect");
    conn.execute_unprepared(statement).await.expect("statement");
    let _ = conn.close().await;
}

/// Asserts every writer's changes appear in `events` in the order it wrote them.
fn assert_writer_order(events: &[Value]) {
    let mut last: std::collections::HashMap<String, i64> = Default::default();
    for e in events {
        let w = e["record"]["data"]["writer"].as_str().unwrap().to_owned();
        let i = e["record"]["data"]["i"].as_i64().unwrap();
        let prev = last.insert(w.clone(), i);
        assert!(prev.is_none_or(|p| p < i), "writer {w}: {i} after {prev:?}");
    }
}

async fn two_instances(configure: impl Fn(&mut recordsync::Config) + Copy) -> (TestApp, TestApp) {
    let db = TestDb::postgres().await;
    let a = spawn_on(db.clone(), configure).await;
    let b = spawn_on(db, configure).await;
    (a, b)
}

#[tokio::test]
async fn subscribers_on_one_instance_receive_every_change_from_writers_on_both_in_order() {
    let (a, b) = two_instances(|_| {}).await;
    let start = b.head_cursor().await;
    let mut subs = Vec::new();
    for app in [&b, &b, &a] {
        let mut ws = WsClient::connect(app).await;
        ws.subscribe_changes("s", &format!("(collection: \"c\", after: \"{start}\")"))
            .await;
        subs.push(ws);
    }
    let writers = [
        spawn_writer(a.url(), "a1", 50),
        spawn_writer(a.url(), "a2", 50),
        spawn_writer(b.url(), "b1", 50),
        spawn_writer(b.url(), "b2", 50),
    ];
    for w in writers {
        w.await.unwrap();
    }
    let log = a.all_changes().await;
    assert_eq!(log.len(), 200);
    for ws in &mut subs {
        let events = ws.next_changes("s", 200).await;
        assert_eq!(
            cursors(&events),
            cursors(&log),
            "commit order, exactly once"
        );
        assert_writer_order(&events);
        ws.expect_silence().await;
    }
}

#[tokio::test]
async fn sequence_numbers_follow_commit_order_under_concurrent_transactions() {
    // Many small concurrent transactions on both instances; every subscriber, wherever it
    // is connected, sees exactly the committed log: strictly increasing, no gaps.
    let (a, b) = two_instances(|c| c.db_pool_size = 16).await;
    let start = a.head_cursor().await;
    let mut subs = Vec::new();
    for app in [&a, &b] {
        let mut ws = WsClient::connect(app).await;
        ws.subscribe_changes("s", &format!("(after: \"{start}\")"))
            .await;
        subs.push(ws);
    }
    let names = ["w0", "w1", "w2", "w3", "w4", "w5", "w6", "w7"];
    let writers: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, name)| spawn_writer(if i % 2 == 0 { a.url() } else { b.url() }, name, 40))
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let log = b.all_changes().await;
    assert_eq!(log.len(), 320);
    for ws in &mut subs {
        let events = ws.next_changes("s", 320).await;
        assert_eq!(cursors(&events), cursors(&log));
        assert_writer_order(&events);
    }
}

#[tokio::test]
async fn a_terminated_listen_connection_loses_no_change() {
    // Polling is off in effect: B learns of A's writes only through LISTEN.
    let (a, b) = two_instances(|c| c.follow_poll_interval = Duration::from_secs(3600)).await;
    let start = b.head_cursor().await;
    let mut ws = WsClient::connect(&b).await;
    ws.subscribe_changes("s", &format!("(after: \"{start}\")"))
        .await;

    let writer = spawn_writer(a.url(), "a", 150);
    let first = ws.next_changes("s", 20).await;
    let terminate = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = '{}' AND datname = current_database()",
        recordsync::service::follower::APPLICATION_NAME
    );
    sql(&b.db, &terminate).await;
    let rest = ws.next_changes("s", 130).await;
    writer.await.unwrap();
    sql(&b.db, &terminate).await;
    // A write after the second termination still arrives.
    a.create("c", json!({"writer": "a", "i": 150})).await;
    let last = ws.next_change("s").await;

    let mut events = first;
    events.extend(rest);
    events.push(last);
    assert_eq!(cursors(&events), cursors(&a.all_changes().await));
    assert_writer_order(&events);
}

#[tokio::test]
async fn subscribers_of_a_stopped_instance_resume_on_the_other_with_after() {
    let (a, b) = two_instances(|_| {}).await;
    let start = a.head_cursor().await;
    let mut ws = WsClient::connect(&a).await;
    ws.subscribe_changes("s", &format!("(after: \"{start}\")"))
        .await;
    let writer = spawn_writer(b.url(), "b", 200);

    let mut events = ws.next_changes("s", 50).await;
    let last = events.last().unwrap()["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    a.stop().await;
    // Whatever A still sent before closing is dropped: the client resumes from `last`.
    assert_eq!(ws.expect_close_after_messages().await.0, 1001);

    let mut ws = WsClient::connect(&b).await;
    ws.subscribe_changes("s", &format!("(after: \"{last}\")"))
        .await;
    events.extend(ws.next_changes("s", 150).await);
    writer.await.unwrap();
    ws.expect_silence().await;
    assert_eq!(cursors(&events), cursors(&b.all_changes().await));
}

#[tokio::test]
async fn dropped_database_connections_fail_writes_clearly_and_subscriptions_resume() {
    let (a, b) = two_instances(|_| {}).await;
    let start = a.head_cursor().await;
    let mut ws = WsClient::connect(&b).await;
    ws.subscribe_changes("s", &format!("(after: \"{start}\")"))
        .await;
    let writer = spawn_writer(a.url(), "a", 150);
    let mut events = ws.next_changes("s", 10).await;
    // Every connection of both instances, pools and listeners alike.
    sql(
        &a.db,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .await;
    writer.await.unwrap();
    let log = a.all_changes().await;
    events.extend(ws.next_changes("s", log.len() - 10).await);
    ws.expect_silence().await;
    assert_eq!(cursors(&events), cursors(&log));
    assert_writer_order(&events);
}

#[tokio::test]
async fn readiness_follows_the_database_and_writes_fail_with_service_unavailable() {
    let db = TestDb::postgres().await;
    let app = spawn_on(db.clone(), |c| c.db_pool_size = 2).await;
    let ready = format!("http://{}/readyz", app.addr);
    let health = format!("http://{}/healthz", app.addr);
    // Ready once the follower holds its LISTEN connection.
    let deadline = tokio::time::Instant::now() + super::helpers::ARRIVE;
    while app.http.get(&ready).send().await.unwrap().status() != 200 {
        assert!(tokio::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The database disappears under the running server.
    let admin = sea_orm::Database::connect(super::helpers::postgres_admin_url())
        .await
        .unwrap();
    let name = db.url.rsplit('/').next().unwrap().to_owned();
    admin
        .execute_unprepared(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .await
        .unwrap();
    assert_eq!(app.http.get(&ready).send().await.unwrap().status(), 503);
    assert_eq!(app.http.get(&health).send().await.unwrap().status(), 200);
    let resp = app
        .gql(
            "mutation { createRecord(input: {collection: \"c\", data: {}}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        super::helpers::error_code(&resp),
        "SERVICE_UNAVAILABLE",
        "{resp}"
    );

    // It comes back (empty): the server is ready again without a restart.
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap();
    let _ = admin.close().await;
    recordsync::store::migrate(&sea_orm::Database::connect(&db.url).await.unwrap())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + super::helpers::ARRIVE;
    while app.http.get(&ready).send().await.unwrap().status() != 200 {
        assert!(tokio::time::Instant::now() < deadline, "never ready again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn instances_started_together_on_a_new_database_all_come_up_and_share_it() {
    // Each instance migrates at start-up; started at once on an empty database they
    // must not race to create the same tables.
    let db = TestDb::postgres().await;
    let (a, b, c) = tokio::join!(
        spawn_on(db.clone(), |_| {}),
        spawn_on(db.clone(), |_| {}),
        spawn_on(db, |_| {}),
    );
    let created = a.create("c", json!({"n": 1})).await;
    for app in [&b, &c] {
        let got = app
            .data(
                "query($id: UUID!) { record(id: $id) { data } }",
                json!({"id": created["id"]}),
            )
            .await;
        assert_eq!(got["record"]["data"], json!({"n": 1}));
    }
    assert_eq!(c.all_changes().await.len(), 1);
}

#[tokio::test]
async fn one_key_sent_to_both_instances_at_once_writes_once() {
    let (a, b) = two_instances(|_| {}).await;
    let doc = "mutation($k: String) { createRecord(input: {collection: \"k\", data: {n: 1}}, idempotencyKey: $k) { id version changeCursor } }";
    for round in 0..10 {
        let vars = json!({"k": format!("both-{round}")});
        let answers = futures_util::future::join_all((0..6).map(|i| {
            if i % 2 == 0 {
                a.gql(doc, vars.clone())
            } else {
                b.gql(doc, vars.clone())
            }
        }))
        .await;
        for answer in &answers {
            assert!(answer.get("errors").is_none(), "{answer}");
            assert_eq!(answer["data"], answers[0]["data"], "one outcome for all");
        }
    }
    assert_eq!(a.all_changes().await.len(), 10);
    assert_eq!(b.all_records().await.len(), 10);
}

/// What [`CommitCutter`] does to the next COMMIT it sees.
#[derive(Clone, Copy, PartialEq)]
enum Cut {
    /// Passes it on, then closes both sides before the answer comes back.
    AfterCommit,
    /// Closes both sides without passing it on.
    BeforeCommit,
}

/// A TCP proxy in front of PostgreSQL that cuts the connection carrying the next COMMIT,
/// so that the server cannot read COMMIT's answer: the network failing at the worst time.
struct CommitCutter {
    addr: std::net::SocketAddr,
    next: std::sync::Arc<std::sync::Mutex<Option<Cut>>>,
}

impl CommitCutter {
    async fn start(upstream: std::net::SocketAddr) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let next: std::sync::Arc<std::sync::Mutex<Option<Cut>>> = Default::default();
        let armed = next.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let armed = armed.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (mut up, mut down) = ([0u8; 16384], [0u8; 16384]);
                    loop {
                        tokio::select! {
                            n = client.read(&mut up) => {
                                let Ok(n @ 1..) = n else { return };
                                let chunk = &up[..n];
                                // A simple-protocol query message holding COMMIT.
                                let commit = chunk.windows(7).any(|w| w == b"COMMIT\0");
                                let cut = if commit { armed.lock().unwrap().take() } else { None };
                                match cut {
                                    None => {
                                        if server.write_all(chunk).await.is_err() {
                                            return;
                                        }
                                    }
                                    Some(Cut::BeforeCommit) => return,
                                    Some(Cut::AfterCommit) => {
                                        let _ = server.write_all(chunk).await;
                                        drop(client);
                                        // PostgreSQL reads the COMMIT before it sees the end.
                                        tokio::time::sleep(Duration::from_millis(100)).await;
                                        return;
                                    }
                                }
                            }
                            n = server.read(&mut down) => {
                                let Ok(n @ 1..) = n else { return };
                                if client.write_all(&down[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        Self { addr, next }
    }

    fn arm(&self, cut: Cut) {
        *self.next.lock().unwrap() = Some(cut);
    }
}

#[tokio::test]
async fn a_write_whose_commit_answer_is_lost_is_answered_with_what_happened() {
    let db = TestDb::postgres().await;
    let host_port = url_host_port(&db.url);
    let upstream = std::net::ToSocketAddrs::to_socket_addrs(host_port)
        .unwrap()
        .next()
        .unwrap();
    let cutter = CommitCutter::start(upstream).await;
    // The same URL through the proxy, in plain text so that it can see COMMIT.
    let via_proxy = format!(
        "{}?sslmode=disable",
        db.url.replacen(host_port, &cutter.addr.to_string(), 1)
    );
    let app = spawn_on(db, |c| c.database_url = via_proxy).await;
    let create =
        "mutation($d: JSON!) { createRecord(input: {collection: \"c\", data: $d}) { id } }";
    let warm = app.gql(create, json!({"d": {"n": 0}})).await;
    assert!(warm["data"]["createRecord"]["id"].is_string(), "{warm}");

    // The COMMIT reached the database; only its answer was lost.
    cutter.arm(Cut::AfterCommit);
    let committed = app.gql(create, json!({"d": {"n": 1}})).await;
    assert!(cutter.next.lock().unwrap().is_none(), "no COMMIT was cut");
    let id = committed["data"]["createRecord"]["id"].as_str();
    assert!(
        id.is_some(),
        "a committed write is answered as such: {committed}"
    );

    // The COMMIT never reached it: nothing was written, and a retry is safe.
    cutter.arm(Cut::BeforeCommit);
    let lost = app.gql(create, json!({"d": {"n": 2}})).await;
    assert!(cutter.next.lock().unwrap().is_none(), "no COMMIT was cut");
    assert_eq!(
        lost["errors"][0]["extensions"]["code"], "SERVICE_UNAVAILABLE",
        "a write that did not commit is reported unavailable: {lost}"
    );

    let logged: Vec<i64> = app
        .all_changes()
        .await
        .iter()
        .map(|c| c["record"]["data"]["n"].as_i64().unwrap())
        .collect();
    assert_eq!(logged, [0, 1]);
    let got = app
        .gql(
            "query($id: ID!) { record(id: $id) { data } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(got["data"]["record"]["data"], json!({"n": 1}));
}

/// The `host:port` of a PostgreSQL URL such as `postgres://user@host:port/db`.
fn url_host_port(url: &str) -> &str {
    let rest = url.split_once("://").unwrap().1;
    let authority = rest.split('/').next().unwrap();
    authority.rsplit('@').next().unwrap()
}
