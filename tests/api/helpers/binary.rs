//! Running the `recordsync` binary itself, as an operator would.

use std::{
    net::SocketAddr,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// How long to wait for the server.
const ARRIVE: Duration = Duration::from_secs(10);

/// The `recordsync` binary, started as an operator would.
pub struct Server {
    /// The process.
    pub child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its log lines after the address line.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts the binary on `database_url`, waits until it is ready.
    pub async fn start(database_url: &str) -> Self {
        Self::start_with(database_url, &[]).await
    }

    /// Starts the binary with extra arguments; returns once it is ready.
    pub async fn start_with(database_url: &str, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_recordsync"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                database_url,
            ])
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start recordsync");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let addr = tokio::time::timeout(ARRIVE, async {
            while let Some(line) = lines.next_line().await.expect("read stderr") {
                if let Some(rest) = line.split("http://").nth(1)
                    && let Some(addr) = rest.split("/graphql").next()
                {
                    return addr.parse::<SocketAddr>().expect("address");
                }
            }
            panic!("the server exited before listening");
        })
        .await
        .expect("the server announces its address");
        // Keep collecting the log so the server never blocks on a full pipe.
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = Arc::clone(&log);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        let server = Self { child, addr, log };
        server.wait_ready().await;
        server
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self) {
        let url = format!("http://{}/readyz", self.addr);
        let deadline = tokio::time::Instant::now() + ARRIVE;
        loop {
            if let Ok(r) = reqwest::get(&url).await
                && r.status() == 200
            {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "never ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `http://…/graphql`.
    pub fn graphql(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }

    /// POSTs a GraphQL request and returns the response body.
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        let resp = reqwest::Client::new()
            .post(self.graphql())
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .expect("POST");
        resp.json().await.expect("JSON")
    }
}
