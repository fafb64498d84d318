//! The real binary is killed with SIGKILL while clients write. After a restart, every
//! mutation that was answered with success is in the data and in the change log, and a
//! subscriber resuming from its cursor receives each of them exactly once.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use super::helpers::binary::Server;
use super::helpers::{ARRIVE, TestDb, WsClient};
use serde_json::{Value, json};

#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    let db = TestDb::fresh().await;
    let server = Server::start(&db.url).await;
    let start = server
        .gql("{ records(first: 0) { changeCursor } }", json!({}))
        .await["data"]["records"]["changeCursor"]
        .as_str()
        .expect("cursor")
        .to_owned();

    // Writers keep going until the server dies under them.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let url = server.graphql();
            let acked = Arc::clone(&acked);
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                for i in 0.. {
                    let body = json!({
                        "query": "mutation($d: JSON!) { createRecord(input: {collection: \"c\", data: $d}) { id } }",
                        "variables": {"d": {"w": w, "i": i}},
                    });
                    let Ok(resp) = http.post(&url).json(&body).send().await else { return };
                    let Ok(resp) = resp.json::<Value>().await else { return };
                    match resp["data"]["createRecord"]["id"].as_str() {
                        Some(id) => acked.lock().unwrap().push(id.to_owned()),
                        None => return,
                    }
                }
            })
        })
        .collect();
    let deadline = tokio::time::Instant::now() + ARRIVE;
    while acked.lock().unwrap().len() < 200 {
        assert!(tokio::time::Instant::now() < deadline, "writers too slow");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut server = server;
    server.child.kill().await.expect("SIGKILL");
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    let server = Server::start(&db.url).await;
    // Every acknowledged record is there.
    for chunk in acked.chunks(200) {
        let found = server
            .gql(
                "query($ids: [UUID!]) { records(filter: {ids: $ids}, first: 500) { totalCount } }",
                json!({"ids": chunk}),
            )
            .await;
        assert_eq!(
            found["data"]["records"]["totalCount"],
            chunk.len(),
            "{found}"
        );
    }
    // A subscriber resuming from before the crash gets each change exactly once.
    let mut ws = WsClient::connect_url(&format!("ws://{}/graphql", server.addr)).await;
    ws.subscribe_changes("s", &format!("(after: \"{start}\")"))
        .await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    let total = server
        .gql("{ records(first: 0) { totalCount } }", json!({}))
        .await["data"]["records"]["totalCount"]
        .as_u64()
        .unwrap() as usize;
    assert!(total >= acked.len());
    for event in ws.next_changes("s", total).await {
        *seen
            .entry(event["record"]["id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    ws.expect_silence().await;
    for id in &acked {
        assert_eq!(seen.get(id), Some(&1), "acknowledged {id} delivered once");
    }
}

/// A keyed create of record `n`, as a client that retries would send it.
fn keyed_create(n: usize) -> Value {
    json!({
        "query": "mutation($d: JSON!, $k: String) { createRecord(input: {collection: \"k\", data: $d}, idempotencyKey: $k) { id version changeCursor } }",
        "variables": {"d": {"n": n}, "k": format!("key-{n}")},
    })
}

#[tokio::test]
async fn keyed_writes_retried_after_sigkill_are_applied_once_each() {
    let db = TestDb::fresh().await;
    let server = Server::start(&db.url).await;
    // Clients send keyed writes until the server dies under them; some are answered,
    // some committed without their answer arriving, some never committed.
    let answered: Arc<Mutex<HashMap<usize, Value>>> = Arc::default();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (url, answered, next) =
                (server.graphql(), Arc::clone(&answered), Arc::clone(&next));
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Ok(resp) = http.post(&url).json(&keyed_create(n)).send().await else {
                        return;
                    };
                    let Ok(resp) = resp.json::<Value>().await else {
                        return;
                    };
                    match resp["data"]["createRecord"].as_object() {
                        Some(r) => answered.lock().unwrap().insert(n, Value::Object(r.clone())),
                        None => return,
                    };
                }
            })
        })
        .collect();
    let deadline = tokio::time::Instant::now() + ARRIVE;
    while answered.lock().unwrap().len() < 150 {
        assert!(tokio::time::Instant::now() < deadline, "writers too slow");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut server = server;
    server.child.kill().await.expect("SIGKILL");
    for w in writers {
        w.await.unwrap();
    }
    let sent = next.load(std::sync::atomic::Ordering::Relaxed);
    let answered = answered.lock().unwrap().clone();

    // After the restart every client retries everything it sent, with the same keys.
    let server = Server::start(&db.url).await;
    let http = reqwest::Client::new();
    for n in 0..sent {
        let resp: Value = http
            .post(server.graphql())
            .json(&keyed_create(n))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let record = &resp["data"]["createRecord"];
        assert!(record.is_object(), "retry {n}: {resp}");
        if let Some(first) = answered.get(&n) {
            assert_eq!(record, first, "retry {n} answers the committed outcome");
        }
    }
    // Each write is there once.
    let total = server
        .gql("{ records(first: 0) { totalCount } }", json!({}))
        .await["data"]["records"]["totalCount"]
        .as_u64()
        .unwrap() as usize;
    assert_eq!(total, sent, "{sent} keyed writes, each applied once");
}
