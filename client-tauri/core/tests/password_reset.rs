//! The engine's password-reset calls against a real server: the request answers the same
//! for any address, the code resets once and signs the old session out. The code is
//! issued as the server's admin command does (the mail itself is the server's suite's
//! story, against a real SMTP server). SQLite only (see tests/common).

#![allow(clippy::unwrap_used)]

mod common;

use common::{Db, PASSWORD, TestServer, unique};
use confab_core::api::{ApiClient, ApiError};
use confab_core::keystore::MemoryStore;
use shared::ErrorCode;
use shared::api::RegisterRequest;
use std::sync::Arc;

const NEW_PASSWORD: &str = "Quiet-Lantern-Orchard-42";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_code_sets_the_password_once() {
    let server = TestServer::start(Db::Sqlite).await;
    let api = ApiClient::new(&server.base, Arc::new(MemoryStore::new())).unwrap();
    let name = unique("olga");
    let email = format!("{name}@example.com");
    api.register(&RegisterRequest {
        username: name.clone(),
        email: email.clone(),
        password: PASSWORD.to_owned(),
        confirm_password: PASSWORD.to_owned(),
    })
    .await
    .unwrap();
    let me = api.login(&name, PASSWORD).await.unwrap();

    // Known and unknown addresses alike; a malformed one is a field error.
    api.request_password_reset(&email).await.unwrap();
    api.request_password_reset("nobody@example.com")
        .await
        .unwrap();
    let bad = api
        .request_password_reset("not an address")
        .await
        .unwrap_err();
    assert!(
        matches!(&bad, ApiError::Server { detail, .. } if detail.code == ErrorCode::ValidationFailed),
        "{bad:?}"
    );

    let state = &server.server().state;
    let reset = signal_server::auth::reset::issue(&state.pool, &state.config, me.id)
        .await
        .unwrap();

    let weak = api
        .confirm_password_reset(&reset.token, "password1", "password1")
        .await
        .unwrap_err();
    let ApiError::Server { detail, .. } = &weak else {
        panic!("{weak:?}")
    };
    assert!(detail.fields.as_ref().unwrap().contains_key("password"));
    api.confirm_password_reset(&reset.token, NEW_PASSWORD, NEW_PASSWORD)
        .await
        .unwrap();
    // Signed out: the old session is gone, the new password works.
    assert!(api.me().await.unwrap_err().needs_sign_in());
    let again = ApiClient::new(&server.base, Arc::new(MemoryStore::new())).unwrap();
    again.login(&name, NEW_PASSWORD).await.unwrap();
    let used = api
        .confirm_password_reset(&reset.token, NEW_PASSWORD, NEW_PASSWORD)
        .await
        .unwrap_err();
    let ApiError::Server { detail, .. } = &used else {
        panic!("{used:?}")
    };
    assert!(detail.fields.as_ref().unwrap().contains_key("token"));
    server.remove().await;
}

/// With `--require-email-verification`, signing in before confirming is refused with
/// `email_unverified` (a wrong password is still just wrong), and the engine can ask for
/// the confirmation mail again: the same `Ok` for the waiting address and an unknown one.
/// The mail goes to a real SMTP server (aiosmtpd, as in the server's suite).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unconfirmed_address_is_told_apart_and_its_mail_asked_again() {
    let smtp = signal_server::testing::SmtpCapture::start();
    let mut flags = smtp.flags();
    flags.push("--require-email-verification".to_owned());
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = TestServer::start_with(Db::Sqlite, &flags).await;
    let api = ApiClient::new(&server.base, Arc::new(MemoryStore::new())).unwrap();
    let name = unique("vera");
    let email = format!("{name}@example.com");
    api.register(&RegisterRequest {
        username: name.clone(),
        email: email.clone(),
        password: PASSWORD.to_owned(),
        confirm_password: PASSWORD.to_owned(),
    })
    .await
    .unwrap();
    smtp.wait_for(1).await;
    let refused = api.login(&name, PASSWORD).await.unwrap_err();
    assert_eq!(
        refused.code(),
        Some(ErrorCode::EmailUnverified),
        "{refused:?}"
    );
    let wrong = api.login(&name, "Not-Her-Password-1").await.unwrap_err();
    assert_eq!(
        wrong.code(),
        Some(ErrorCode::InvalidCredentials),
        "{wrong:?}"
    );

    api.resend_email_verification(&email).await.unwrap();
    api.resend_email_verification("nobody@example.com")
        .await
        .unwrap();
    let bad = api.resend_email_verification(&name).await.unwrap_err();
    assert_eq!(bad.code(), Some(ErrorCode::ValidationFailed), "{bad:?}");
    // The waiting address got its second mail; the unknown one got none.
    let mail = smtp.wait_for(2).await;
    assert_eq!(mail.len(), 2, "{mail:?}");
    assert_eq!(mail[1]["to"], serde_json::json!([email]));
    server.remove().await;
}
