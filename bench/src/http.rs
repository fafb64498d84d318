//! A lean HTTP/1.1 keep-alive client: one connection, one request in flight, so that
//! N clients are exactly N connections.

use std::sync::Arc;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{
    Request, StatusCode,
    client::conn::http1::{self, SendRequest},
    header,
};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json, value::RawValue};

use crate::net::Endpoint;

/// One keep-alive connection to `/graphql`.
pub struct HttpClient {
    endpoint: Arc<Endpoint>,
    /// Which client this is (picks its source address).
    index: usize,
    sender: SendRequest<Full<Bytes>>,
}

/// The top level of a GraphQL response, read without building a tree.
#[derive(Deserialize)]
pub struct Envelope<'a> {
    /// `data`, unparsed.
    #[serde(borrow)]
    pub data: Option<&'a RawValue>,
    /// `errors`, unparsed.
    #[serde(borrow)]
    pub errors: Option<&'a RawValue>,
}

impl HttpClient {
    /// Opens client connection number `index`.
    pub async fn connect(endpoint: Arc<Endpoint>, index: usize) -> anyhow::Result<Self> {
        let stream = endpoint.connect(index).await.context("connecting")?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // Ends when the client is dropped or the server closes the connection.
            let _ = conn.await;
        });
        Ok(Self {
            endpoint,
            index,
            sender,
        })
    }

    /// Replaces a broken connection with a new one.
    pub async fn reconnect(&mut self) -> anyhow::Result<()> {
        *self = Self::connect(Arc::clone(&self.endpoint), self.index).await?;
        Ok(())
    }

    /// POSTs a ready-made JSON body and returns the response body of a 200.
    pub async fn post(&mut self, body: Bytes) -> anyhow::Result<Bytes> {
        // A kept-alive connection left idle past the server's --http-header-read-timeout
        // (between a scenario's setup and its check, say) has been closed: open another.
        if self.sender.is_closed() || self.sender.ready().await.is_err() {
            self.reconnect().await?;
        }
        self.sender.ready().await.context("connection lost")?;
        let req = Request::post(&self.endpoint.path)
            .header(header::HOST, &self.endpoint.authority)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        if status != StatusCode::OK {
            bail!("HTTP {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(body)
    }

    /// Runs a GraphQL request that must succeed and returns its `data`.
    pub async fn data(&mut self, query: &str, variables: Value) -> anyhow::Result<Value> {
        let body = serde_json::to_vec(&json!({"query": query, "variables": variables}))?;
        let resp = self.post(Bytes::from(body)).await?;
        let mut value: Value = serde_json::from_slice(&resp).context("response is not JSON")?;
        if let Some(errors) = value.get("errors") {
            bail!("GraphQL errors: {errors}");
        }
        Ok(value["data"].take())
    }

    /// The change log's head as a cursor: subscribing with `after` set to it receives
    /// exactly the changes committed from now on.
    pub async fn head_cursor(&mut self) -> anyhow::Result<String> {
        let d = self
            .data("{ records(first: 0) { changeCursor } }", json!({}))
            .await?;
        d["records"]["changeCursor"]
            .as_str()
            .map(str::to_owned)
            .context("no changeCursor")
    }
}

/// Checks a response body: a 200 whose GraphQL part has `data` and no `errors`;
/// returns the raw `data`.
pub fn check_data(body: &[u8]) -> anyhow::Result<&str> {
    let env: Envelope<'_> = serde_json::from_slice(body).context("response is not JSON")?;
    if let Some(errors) = env.errors {
        bail!("GraphQL errors: {}", errors.get());
    }
    match env.data {
        Some(d) if d.get() != "null" => Ok(d.get()),
        _ => bail!("response has no data"),
    }
}
