//! The HTML pages links lead to, in a browser's place: the invite page (the reset page's
//! story is in password_reset.rs, with its mail).

#![allow(clippy::unwrap_used)]

mod common;

use common::{Db, TestServer};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_link_opens_a_page_that_explains_how_to_join() {
    let server = TestServer::start(Db::Sqlite).await;
    let resp = server
        .http
        .get(format!("{}/invite/AbC-123_x", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = resp.text().await.unwrap();
    assert!(page.contains("confab://invite/AbC-123_x"), "{page}");
    assert!(page.contains("<code>AbC-123_x</code>"));

    // Whatever the path holds is shown as text, never markup.
    let resp = server
        .http
        .get(format!(
            "{}/invite/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            server.base
        ))
        .send()
        .await
        .unwrap();
    let page = resp.text().await.unwrap();
    assert!(!page.contains("<script>"), "{page}");
    assert!(page.contains("&lt;script&gt;"));

    // A reset link without its token says so, in HTML, not the API's JSON.
    let resp = server
        .http
        .get(format!("{}/reset-password", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.unwrap().contains("incomplete"));
    server.stop().await;
}
