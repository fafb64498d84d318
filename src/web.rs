//! The pages and browser assets the server serves itself, so that nothing of `/graphql`
//! (GraphiQL) or `/demo` is loaded from outside the server.
//!
//! - GraphiQL's page, with pinned copies of GraphiQL and React (`clients/vendor/assets`,
//!   refreshed from the npm registry by `clients/vendor/refresh.sh`), under `/assets/`.
//! - `/demo`: a todo list on the browser build of recordsync-client
//!   (`clients/js/dist`, built by `npm run build` there), when authentication is off.
//!
//! The files are compiled into the binary. This module is a leaf.

use axum::{
    Router,
    extract::Path,
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};

/// A file compiled into the binary: its name, media type and bytes.
struct Asset(&'static str, &'static str, &'static [u8]);

const ASSETS: &[Asset] = &[
    Asset(
        "graphiql.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../clients/vendor/assets/graphiql.min.js"),
    ),
    Asset(
        "graphiql.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../clients/vendor/assets/graphiql.min.css"),
    ),
    Asset(
        "react.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../clients/vendor/assets/react.production.min.js"),
    ),
    Asset(
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../clients/vendor/assets/react-dom.production.min.js"),
    ),
    Asset(
        "LICENSE.graphiql",
        "text/plain; charset=utf-8",
        include_bytes!("../clients/vendor/assets/LICENSE.graphiql"),
    ),
    Asset(
        "LICENSE.react",
        "text/plain; charset=utf-8",
        include_bytes!("../clients/vendor/assets/LICENSE.react"),
    ),
    Asset(
        "LICENSE.react-dom",
        "text/plain; charset=utf-8",
        include_bytes!("../clients/vendor/assets/LICENSE.react-dom"),
    ),
];

const CLIENT_JS: &[u8] = include_bytes!("../clients/js/dist/recordsync-client.browser.js");
const DEMO_HTML: &str = include_str!("../clients/js/demo/index.html");

/// GraphiQL's page: the IDE on the pinned assets, queries over `POST /graphql` and
/// subscriptions over the WebSocket at the same path.
pub fn graphiql() -> Html<&'static str> {
    Html(GRAPHIQL_HTML)
}

const GRAPHIQL_HTML: &str = r#"<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="robots" content="noindex" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>recordsync</title>
    <style>body { margin: 0; height: 100vh; overflow: hidden; } #graphiql { height: 100vh; }</style>
    <link rel="icon" href="data:," />
    <link rel="stylesheet" href="/assets/graphiql.min.css" />
    <script src="/assets/react.production.min.js"></script>
    <script src="/assets/react-dom.production.min.js"></script>
    <script src="/assets/graphiql.min.js"></script>
  </head>
  <body>
    <div id="graphiql">Loading…</div>
    <script>
      const http = new URL('/graphql', location.href);
      const ws = new URL('/graphql', location.href);
      ws.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
      ReactDOM.createRoot(document.getElementById('graphiql')).render(
        React.createElement(GraphiQL, {
          fetcher: GraphiQL.createFetcher({ url: http.toString(), subscriptionUrl: ws.toString() }),
          defaultEditorToolsVisibility: true,
        }),
      );
    </script>
  </body>
</html>
"#;

/// One compiled-in asset, cached for a day (a new binary may bring new ones).
async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.0 == name) {
        Some(Asset(_, media, bytes)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(media)),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=86400"),
                ),
            ],
            *bytes,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `/assets/{name}`, and with `demo` the demo page and the client's browser build.
pub fn router(demo: bool) -> Router {
    let router = Router::new().route("/assets/{name}", get(asset));
    if !demo {
        return router;
    }
    router
        .route("/demo", get(|| async { Html(DEMO_HTML) }))
        .route(
            "/demo/recordsync-client.js",
            get(|| async {
                (
                    [(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/javascript; charset=utf-8"),
                    )],
                    CLIENT_JS,
                )
            }),
        )
}
