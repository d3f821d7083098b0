//! `GET /metrics` on `--metrics-bind`: Prometheus text with the server's requests,
//! errors, messages and sockets. One test per binary: the recorder is process-wide.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Db, TestServer};
use reqwest::StatusCode;

async fn scrape(server: &TestServer) -> String {
    let resp = server
        .http
        .get(server.metrics_url().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    resp.text().await.unwrap()
}

/// A sample line without its `node` label, which every sample carries (the node's id).
fn without_node(line: &str) -> String {
    let start = line
        .find("node=\"")
        .unwrap_or_else(|| panic!("a sample without a node label: {line}"));
    let end = start + 6 + line[start + 6..].find('"').unwrap() + 1;
    let end = if line[end..].starts_with(',') {
        end + 1
    } else {
        end
    };
    format!("{}{}", &line[..start], &line[end..]).replace("{}", "")
}

/// The value of the sample whose line starts with `series` (name and labels, leaving
/// out the node label).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(without_node)
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next().map(str::to_owned))
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_errors_messages_and_sockets() {
    let server = TestServer::start_with(Db::Sqlite, &["--metrics-bind", "127.0.0.1:0"]).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    assert_eq!(
        server.login("alice", "wrong-password").await.0,
        StatusCode::UNAUTHORIZED
    );
    let room = server.room(&alice, 4).await;
    server.post_message(&alice, &room, "counted").await;
    let _ws = server.ws(&bob).await;

    let text = scrape(&server).await;
    assert_eq!(
        value(
            &text,
            r#"confab_http_requests_total{method="POST",route="/api/auth/login",status="401"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        value(
            &text,
            r#"confab_http_requests_total{method="POST",route="/api/auth/login",status="200"}"#
        ) >= Some(2.0)
    );
    assert_eq!(
        value(&text, r#"confab_errors_total{code="invalid_credentials"}"#),
        Some(1.0)
    );
    assert_eq!(value(&text, "confab_messages_total"), Some(1.0));
    assert_eq!(value(&text, "confab_ws_connections"), Some(1.0));
    assert_eq!(value(&text, "confab_users_online"), Some(1.0));
    assert!(value(&text, "confab_db_pool_connections") >= Some(1.0));
    assert!(
        text.contains("confab_http_request_duration_seconds_bucket{"),
        "{text}"
    );

    // The public port does not serve them.
    let (status, _) = server.get("/metrics", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}
