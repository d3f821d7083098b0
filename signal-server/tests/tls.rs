//! The server terminating TLS itself (`--tls-cert`, `--tls-key`): HTTPS and WSS with a
//! certificate from a CA the test creates, a client that does not trust that CA refused,
//! and a renewed certificate picked up without a restart.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Db, TestServer, Ws};
use reqwest::StatusCode;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use shared::signal::{ClientMsg, PROTOCOL_VERSION, ServerMsg};
use signal_server::testing::TestCa;
use std::sync::Arc;
use std::time::Duration;

/// An HTTP client that trusts `ca` only.
fn trusting(ca: &TestCa) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap()])
        .build()
        .unwrap()
}

/// A rustls client configuration that trusts `ca` only, for the WebSocket.
fn rustls_trusting(ca: &TestCa) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.pem().as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// An error and its causes, as one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_and_wss_with_a_private_ca_and_a_renewal_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let ca = TestCa::new("Confab test CA");
    ca.issue_server_cert(&cert, &key);
    let mut server = TestServer::start_with(
        Db::Sqlite,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--tls-reload-interval",
            "1",
        ],
    )
    .await;
    assert!(server.base.starts_with("https://"), "{}", server.base);
    assert!(server.ws_url.starts_with("wss://"), "{}", server.ws_url);

    // REST over HTTPS, for a client that trusts the CA.
    server.http = trusting(&ca);
    let alice = server.user("alice").await;
    let (status, me) = server.get("/api/users/me", Some(&alice.token)).await;
    assert_eq!(status, StatusCode::OK, "{me}");

    // The WebSocket over WSS.
    let (stream, _) = tokio_tungstenite::connect_async_tls_with_config(
        server.ws_url.as_str(),
        None,
        true,
        Some(tokio_tungstenite::Connector::Rustls(rustls_trusting(&ca))),
    )
    .await
    .unwrap();
    let mut ws = Ws {
        stream,
        participant: String::new(),
    };
    ws.send(&ClientMsg::Auth {
        token: alice.token.clone(),
        protocol_version: PROTOCOL_VERSION,
    })
    .await;
    let welcome = ws.recv().await;
    assert!(matches!(welcome, ServerMsg::Welcome { .. }), "{welcome:?}");
    ws.send(&ClientMsg::Ping { nonce: 3 }).await;
    let pong = ws.recv_until(|m| matches!(m, ServerMsg::Pong { .. })).await;
    assert!(matches!(pong, ServerMsg::Pong { nonce: 3 }));

    // A client that trusts only the system's CAs is refused, and says why.
    let refused = reqwest::Client::new()
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap_err();
    let why = chain(&refused);
    assert!(why.contains("certificate"), "{why}");
    // As is a WebSocket client that trusts another CA.
    let other = TestCa::new("Someone else's CA");
    let refused = tokio_tungstenite::connect_async_tls_with_config(
        server.ws_url.as_str(),
        None,
        true,
        Some(tokio_tungstenite::Connector::Rustls(rustls_trusting(
            &other,
        ))),
    )
    .await
    .unwrap_err();
    assert!(
        chain(&refused).contains("UnknownIssuer"),
        "{}",
        chain(&refused)
    );
    // Plain HTTP on the TLS port gets no answer.
    let plain = format!("http://{}/healthz", &server.base["https://".len()..]);
    assert!(reqwest::get(&plain).await.is_err_and(|e| !e.is_status()));

    // The certificate is renewed, by another CA even: the server picks it up from the
    // files without a restart, and the open WebSocket stays up.
    let renewed = TestCa::new("Renewed CA");
    renewed.issue_server_cert(&cert, &key);
    let new_client = trusting(&renewed);
    let mut picked_up = false;
    for _ in 0..600 {
        if let Ok(resp) = new_client
            .get(format!("{}/healthz", server.base))
            .send()
            .await
        {
            assert!(resp.status().is_success());
            picked_up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(picked_up, "the renewed certificate was not picked up");
    assert!(
        trusting(&ca)
            .get(format!("{}/healthz", server.base))
            .send()
            .await
            .is_err(),
        "the old certificate is no longer served"
    );
    server.http = new_client;
    let (status, _) = server.get("/api/users/me", Some(&alice.token)).await;
    assert_eq!(status, StatusCode::OK, "same server, same sessions");
    ws.send(&ClientMsg::Ping { nonce: 4 }).await;
    let pong = ws.recv_until(|m| matches!(m, ServerMsg::Pong { .. })).await;
    assert!(matches!(pong, ServerMsg::Pong { nonce: 4 }));
    drop(ws);
    server.stop().await;
}
