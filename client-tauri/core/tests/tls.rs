//! The client engine and confab-cli against a server that terminates TLS itself, with a
//! certificate from a CA the test creates (rcgen): REST over https:// and the messenger
//! socket over wss:// when the CA file is trusted; a clear refusal when another CA's is.
//! SQLite only (see tests/common). One story per binary: the CA file is process-wide.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Db, PASSWORD, TestServer, unique};
use confab_core::api::{self, ApiClient};
use confab_core::connection::{Connection, ConnectionConfig, ConnectionEvent};
use confab_core::keystore::MemoryStore;
use shared::api::RegisterRequest;
use signal_server::testing::TestCa;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::process::Command;

async fn register(server: &TestServer, prefix: &str) -> Result<(ApiClient, String), api::ApiError> {
    let api = ApiClient::new(&server.base, Arc::new(MemoryStore::new()))?;
    let name = unique(prefix);
    api.register(&RegisterRequest {
        username: name.clone(),
        email: format!("{name}@example.com"),
        password: PASSWORD.to_owned(),
        confirm_password: PASSWORD.to_owned(),
    })
    .await?;
    api.login(&name, PASSWORD).await?;
    Ok((api, name))
}

/// `confab-cli ARGS` as USER against the server, trusting `ca_file`.
async fn cli(
    server: &TestServer,
    user: &str,
    ca_file: &Path,
    args: &[&str],
) -> std::process::Output {
    let outbox =
        std::env::temp_dir().join(format!("confab-cli-test-{}.sqlite", uuid::Uuid::new_v4()));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_confab-cli"));
    cmd.args(args)
        .args(["--server", &server.base, "--user", user])
        .arg("--ca-file")
        .arg(ca_file)
        .arg("--outbox")
        .arg(&outbox)
        .env("CONFAB_PASSWORD", PASSWORD)
        .env_remove(api::CA_FILE_VAR)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("confab-cli finishes")
        .unwrap();
    std::fs::remove_file(&outbox).ok();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_and_the_cli_chat_over_https_and_wss() {
    let dir = std::env::temp_dir().join(format!("confab-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let (ca_file, wrong_ca_file) = (dir.join("ca.pem"), dir.join("other.pem"));
    let ca = TestCa::new("Confab test CA");
    ca.issue_server_cert(&cert, &key);
    ca.write_pem(&ca_file);
    TestCa::new("Someone else's CA").write_pem(&wrong_ca_file);
    let server = TestServer::start_with(
        Db::Sqlite,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    )
    .await;
    assert!(server.base.starts_with("https://"));

    // Trusting another CA, the engine is refused, and the error says what to do.
    api::trust_ca_file(&wrong_ca_file);
    let refused = register(&server, "eve").await.expect_err("refused");
    let message = refused.to_string();
    assert!(
        matches!(refused, api::ApiError::Transport(_)),
        "{refused:?}"
    );
    assert!(message.contains("certificate"), "{message}");
    assert!(message.contains(api::CA_FILE_VAR), "{message}");
    // A CA file that is not one is an error before any connection.
    api::trust_ca_file(dir.join("missing.pem"));
    let bad = ApiClient::new(&server.base, Arc::new(MemoryStore::new())).expect_err("refused");
    assert!(bad.to_string().contains("missing.pem"), "{bad}");

    // Trusting the right one: REST over https.
    api::trust_ca_file(&ca_file);
    let (alice_api, alice) = register(&server, "alice").await.unwrap();
    let (bob_api, bob) = register(&server, "bob").await.unwrap();
    let bob_me = bob_api.current_user().await.unwrap();
    alice_api.send_contact_request(bob_me.id).await.unwrap();
    let request = bob_api.contact_requests().await.unwrap().incoming[0].id;
    bob_api.accept_contact_request(request).await.unwrap();
    let room = alice_api.open_direct(bob_me.id).await.unwrap().id;

    // Bob's engine connection: the messenger socket over wss.
    let outbox = dir.join("bob-outbox.sqlite");
    let (bob_conn, mut events) = Connection::open(bob_api, ConnectionConfig::new(&outbox))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), bob_conn.wait_synced())
        .await
        .expect("bob's connection syncs over wss");

    // Alice writes from the command line (its own https and wss connections).
    let out = cli(
        &server,
        &alice,
        &ca_file,
        &["chat", "send", &room.to_string(), "over TLS"],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let received = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match events.recv().await {
                Ok(ConnectionEvent::MessageCreated(m)) => return m,
                Ok(_) => {}
                Err(e) => panic!("events ended: {e}"),
            }
        }
    })
    .await
    .expect("bob gets the message live");
    assert_eq!(received.body, "over TLS");

    // Bob reads it back from the command line.
    let out = cli(
        &server,
        &bob,
        &ca_file,
        &["chat", "history", &room.to_string(), "--limit", "5"],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let history = String::from_utf8(out.stdout).unwrap();
    assert!(history.contains("over TLS"), "{history}");

    // The command line with the wrong CA file is refused with a clear error.
    let out = cli(
        &server,
        &bob,
        &wrong_ca_file,
        &["chat", "history", &room.to_string()],
    )
    .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("certificate"), "{stderr}");
    bob_conn.close().await;
    server.remove().await;
    std::fs::remove_dir_all(&dir).ok();
}
