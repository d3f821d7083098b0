//! Password reset by email, against a real SMTP server (Python's aiosmtpd, started by the
//! test on a free port, writing every message it receives to a folder), on SQLite and
//! PostgreSQL.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Db, PASSWORD, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};
use signal_server::testing::SmtpCapture;
use std::process::Command;

on_both_databases!(
    a_mailed_link_works_once_and_signs_out_every_session,
    an_unknown_address_gets_the_same_answer_and_no_mail,
    expired_and_superseded_tokens_are_refused,
    requests_are_rate_limited_per_address_and_per_email,
    without_smtp_the_operator_prints_a_link,
    the_mailed_link_opens_a_form_that_resets_once,
    sign_up_can_require_a_confirmed_address,
);

/// The password the stories reset to.
const NEW_PASSWORD: &str = "Quiet-Lantern-Orchard-42";

async fn start(db: Db, smtp: &SmtpCapture, extra: &[&str]) -> TestServer {
    let mut flags = smtp.flags();
    flags.extend(extra.iter().map(|s| (*s).to_owned()));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    TestServer::start_with(db, &flags).await
}

/// The token in the reset link of a message, checking the link is in both bodies.
fn token_in(message: &Value) -> String {
    token_after(message, "https://chat.example.org/reset-password?token=")
}

/// The token after `prefix` in a message, checking the link is in both bodies.
fn token_after(message: &Value, prefix: &str) -> String {
    let text = message["text"].as_str().unwrap();
    let start = text
        .find(prefix)
        .unwrap_or_else(|| panic!("no link in {text}"))
        + prefix.len();
    let token: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    assert_eq!(token.len(), 43, "256 bits in URL-safe base64: {token}");
    let html = message["html"].as_str().unwrap();
    assert!(
        html.contains(&format!("href=\"{prefix}{token}\"")),
        "{html}"
    );
    token
}

async fn ask_reset(server: &TestServer, email: &str) -> (StatusCode, String) {
    let resp = server
        .http
        .post(format!("{}/api/auth/password-reset", server.base))
        .json(&json!({ "email": email }))
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

async fn confirm(server: &TestServer, token: &str, password: &str) -> (StatusCode, Value) {
    server
        .post(
            "/api/auth/password-reset/confirm",
            None,
            json!({"token": token, "password": password, "confirm_password": password}),
        )
        .await
}

async fn a_mailed_link_works_once_and_signs_out_every_session(db: Db) {
    let smtp = SmtpCapture::start();
    let server = start(db, &smtp, &[]).await;
    let alice = server.user("alice").await;
    let laptop = server.sign_in("alice").await;

    // Alice forgot her password; the server mails her a link.
    let (status, body) = ask_reset(&server, "Alice@Example.com").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let mail = smtp.wait_for(1).await.remove(0);
    assert_eq!(mail["to"], json!(["alice@example.com"]));
    assert_eq!(mail["from"], "confab@example.org");
    assert_eq!(mail["subject"], "Reset your Confab password");
    assert!(mail["text"].as_str().unwrap().contains("30 minutes"));
    let token = token_in(&mail);

    // A weak password is refused with the usual rules, and the link still works.
    let (status, body) = confirm(&server, &token, "password1").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"]["fields"]["password"].is_string(), "{body}");
    let (status, body) = server
        .post(
            "/api/auth/password-reset/confirm",
            None,
            json!({"token": token, "password": NEW_PASSWORD, "confirm_password": "typo"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]["fields"]["confirm_password"].is_string(),
        "{body}"
    );

    let (status, body) = confirm(&server, &token, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // Every session is signed out: access and refresh tokens no longer work.
    for user in [&alice, &laptop] {
        let (status, _) = server.get("/api/users/me", Some(&user.token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = server
            .post(
                "/api/auth/refresh",
                None,
                json!({"refresh_token": user.refresh}),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    // The old password is gone, the new one works.
    assert_eq!(
        server.login("alice", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(server.login("alice", NEW_PASSWORD).await.0, StatusCode::OK);

    // The link works once.
    let (status, body) = confirm(&server, &token, "Another-Fine-Password-7").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["error"]["fields"]["token"],
        "is invalid, already used or expired"
    );
    assert_eq!(server.login("alice", NEW_PASSWORD).await.0, StatusCode::OK);

    // Nonsense and missing tokens get the JSON error shape too.
    let (status, body) = confirm(&server, "not-a-token", NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"]["fields"]["token"].is_string());
    let (status, body) = server
        .post("/api/auth/password-reset/confirm", None, json!({}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["fields"]["token"], "is required");
    server.stop().await;
}

async fn an_unknown_address_gets_the_same_answer_and_no_mail(db: Db) {
    let smtp = SmtpCapture::start();
    let server = start(db, &smtp, &[]).await;
    server.user("bob").await;

    let unknown = ask_reset(&server, "nobody@example.com").await;
    let known = ask_reset(&server, "bob@example.com").await;
    assert_eq!(unknown, known, "the same status and body either way");
    assert_eq!(known.0, StatusCode::ACCEPTED);

    // Bob's mail arrives; nobody's never does (it was asked for first).
    let messages = smtp.wait_for(1).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["to"], json!(["bob@example.com"]));

    // A username is not an email address: refused for its syntax, the same for all.
    let (status, body) = ask_reset(&server, "bob").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = server
        .post("/api/auth/password-reset", None, json!({}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["fields"]["email"], "is required");
    assert_eq!(smtp.messages().len(), 1);
    server.stop().await;
}

async fn expired_and_superseded_tokens_are_refused(db: Db) {
    let smtp = SmtpCapture::start();
    let server = start(db, &smtp, &[]).await;
    server.user("carol").await;

    // Two links: once one is used, the other is worthless too.
    ask_reset(&server, "carol@example.com").await;
    let first = token_in(&smtp.wait_for(1).await[0]);
    ask_reset(&server, "carol@example.com").await;
    let second = token_in(&smtp.wait_for(2).await[1]);
    assert_ne!(first, second);
    assert_eq!(
        confirm(&server, &second, NEW_PASSWORD).await.0,
        StatusCode::NO_CONTENT
    );
    let (status, body) = confirm(&server, &first, "Another-Fine-Password-7").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // A third link, aged past its 30 minutes in the database, is refused.
    ask_reset(&server, "carol@example.com").await;
    let third = token_in(&smtp.wait_for(3).await[2]);
    let aged = sqlx::query(
        "update password_resets set expires_at = expires_at - 1801 where used_at is null",
    )
    .execute(server.pool())
    .await
    .unwrap();
    assert_eq!(aged.rows_affected(), 1);
    let (status, body) = confirm(&server, &third, "Another-Fine-Password-7").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(server.login("carol", NEW_PASSWORD).await.0, StatusCode::OK);
    server.stop().await;
}

async fn requests_are_rate_limited_per_address_and_per_email(db: Db) {
    let smtp = SmtpCapture::start();
    let server = start(
        db,
        &smtp,
        &["--reset-rate-per-account", "2", "--reset-rate-per-ip", "6"],
    )
    .await;
    server.user("dave").await;

    // Per email: two an hour, for a known address and an unknown one alike.
    for email in ["dave@example.com", "ghost@example.com"] {
        for _ in 0..2 {
            assert_eq!(ask_reset(&server, email).await.0, StatusCode::ACCEPTED);
        }
        let resp = server
            .http
            .post(format!("{}/api/auth/password-reset", server.base))
            .json(&json!({ "email": email }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(resp.headers().contains_key("retry-after"));
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "rate_limited");
    }
    // Per address: six an hour, the refused ones above included, so the seventh is
    // refused though its address was never asked for.
    let (status, _) = ask_reset(&server, "eve@example.com").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Confirmations count against the address as well.
    let (status, _) = confirm(&server, "whatever", NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(smtp.wait_for(2).await.len(), 2);
    server.stop().await;
}

async fn without_smtp_the_operator_prints_a_link(db: Db) {
    let server = TestServer::start_with(db, &["--public-url", "https://chat.example.org/"]).await;
    server.user("frank").await;
    let frank = server.sign_in("frank").await;

    // The API answers as it always does.
    let (status, _) = ask_reset(&server, "frank@example.com").await;
    assert_eq!(status, StatusCode::ACCEPTED);

    // The operator runs the real binary against the same database.
    let out = Command::new(env!("CARGO_BIN_EXE_confab-server"))
        .args(["--database-url", server.database_url()])
        .args(["--data-dir", server.data_dir().to_str().unwrap()])
        .args(["--public-url", "https://chat.example.org"])
        .args(["admin", "reset-link", "Frank"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = token_in(&json!({"text": stdout, "html": format!("href=\"{}\"", stdout.trim())}));
    assert_eq!(
        confirm(&server, &token, NEW_PASSWORD).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        server.get("/api/users/me", Some(&frank.token)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(server.login("frank", NEW_PASSWORD).await.0, StatusCode::OK);

    // An unknown account is an error with a message, not a link.
    let out = Command::new(env!("CARGO_BIN_EXE_confab-server"))
        .args(["--database-url", server.database_url()])
        .args(["--data-dir", server.data_dir().to_str().unwrap()])
        .args(["admin", "reset-link", "nobody"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no account"));
    server.stop().await;
}

async fn the_mailed_link_opens_a_form_that_resets_once(db: Db) {
    let smtp = SmtpCapture::start();
    let server = start(db, &smtp, &[]).await;
    let grace = server.user("grace").await;
    ask_reset(&server, "grace@example.com").await;
    let token = token_in(&smtp.wait_for(1).await[0]);

    // The link, opened in a browser (on this test server instead of chat.example.org).
    let link = format!("{}/reset-password?token={token}", server.base);
    let resp = server.http.get(&link).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let headers = resp.headers().clone();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(
        headers["referrer-policy"], "no-referrer",
        "the token is in the URL"
    );
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let form = resp.text().await.unwrap();
    assert!(
        form.contains(&format!("name=\"token\" value=\"{token}\"")),
        "{form}"
    );

    let submit = |password: &'static str| {
        server
            .http
            .post(format!("{}/reset-password", server.base))
            // Every value here is URL-safe already (the token is URL-safe base64).
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "token={token}&password={password}&confirm_password={password}"
            ))
            .send()
    };
    // A weak password: the form again, saying why, and the link still works.
    let resp = submit("password1").await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = resp.text().await.unwrap();
    assert!(
        page.contains("too common") && page.contains("<form"),
        "{page}"
    );

    let resp = submit(NEW_PASSWORD).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("new password is set"));
    assert_eq!(
        server.get("/api/users/me", Some(&grace.token)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(server.login("grace", NEW_PASSWORD).await.0, StatusCode::OK);

    // Once only.
    let resp = submit("Another-Fine-Password-7").await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp.text().await.unwrap().contains("no longer works"));
    assert_eq!(server.login("grace", NEW_PASSWORD).await.0, StatusCode::OK);
    server.stop().await;
}

async fn sign_up_can_require_a_confirmed_address(db: Db) {
    let smtp = SmtpCapture::start();
    let server = start(db, &smtp, &["--require-email-verification"]).await;

    // Mia signs up; a confirmation link is mailed, and until she opens it she cannot
    // sign in (told so only with the right password).
    let (status, body) = server.register("mia").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mail = smtp.wait_for(1).await.remove(0);
    assert_eq!(mail["to"], json!(["mia@example.com"]));
    assert_eq!(mail["subject"], "Confirm your email address for Confab");
    let token = token_after(&mail, "https://chat.example.org/verify-email?token=");
    let (status, body) = server.login("mia", PASSWORD).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("confirm")
    );
    assert_eq!(
        server.login("mia", "wrong-password").await.0,
        StatusCode::UNAUTHORIZED
    );

    // Opening the link shows a button (a mail scanner's fetch uses nothing up).
    let link = format!("{}/verify-email?token={token}", server.base);
    let page = server
        .http
        .get(&link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<form") && page.contains(&token), "{page}");
    assert_eq!(server.login("mia", PASSWORD).await.0, StatusCode::FORBIDDEN);
    let confirm_address = || {
        server
            .http
            .post(format!("{}/verify-email", server.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}"))
            .send()
    };
    let resp = confirm_address().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("mia"));
    assert_eq!(server.login("mia", PASSWORD).await.0, StatusCode::OK);
    // Once.
    assert_eq!(
        confirm_address().await.unwrap().status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // Noah lost his confirmation mail: a password reset by email confirms the address too.
    server.register("noah").await;
    smtp.wait_for(2).await;
    assert_eq!(
        server.login("noah", PASSWORD).await.0,
        StatusCode::FORBIDDEN
    );
    ask_reset(&server, "noah@example.com").await;
    let reset = token_in(&smtp.wait_for(3).await[2]);
    assert_eq!(
        confirm(&server, &reset, NEW_PASSWORD).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(server.login("noah", NEW_PASSWORD).await.0, StatusCode::OK);
    server.stop().await;
}
