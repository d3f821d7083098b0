//! Asking for the address-confirmation mail again (`POST /api/auth/verify-email/resend`,
//! with `--require-email-verification`), against a real SMTP server (Python's aiosmtpd,
//! started by the test), on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Db, PASSWORD, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};
use signal_server::testing::SmtpCapture;

on_both_databases!(
    a_resent_link_confirms_the_address_and_the_old_one_stops_working,
    unknown_and_confirmed_addresses_get_the_same_answer_and_no_mail,
    resends_are_rate_limited_per_address_and_per_email,
);

const LINK: &str = "https://chat.example.org/verify-email?token=";

async fn start(db: Db, smtp: &SmtpCapture, extra: &[&str]) -> TestServer {
    let mut flags = smtp.flags();
    flags.push("--require-email-verification".to_owned());
    flags.extend(extra.iter().map(|s| (*s).to_owned()));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    TestServer::start_with(db, &flags).await
}

/// The confirmation token in a message, checking the link is in both bodies.
fn token_in(message: &Value) -> String {
    assert_eq!(message["subject"], "Confirm your email address for Confab");
    let text = message["text"].as_str().unwrap();
    let start = text
        .find(LINK)
        .unwrap_or_else(|| panic!("no link in {text}"))
        + LINK.len();
    let token: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    assert_eq!(token.len(), 43, "256 bits in URL-safe base64: {token}");
    let html = message["html"].as_str().unwrap();
    assert!(html.contains(&format!("href=\"{LINK}{token}\"")), "{html}");
    token
}

/// Asks for the confirmation mail again: the status, the Retry-After header and the body.
async fn resend(server: &TestServer, email: &str) -> (StatusCode, Option<String>, String) {
    let resp = server
        .http
        .post(format!("{}/api/auth/verify-email/resend", server.base))
        .json(&json!({ "email": email }))
        .send()
        .await
        .unwrap();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (resp.status(), retry, resp.text().await.unwrap())
}

/// Presses the button on the confirmation page for `token`.
async fn confirm(server: &TestServer, token: &str) -> StatusCode {
    server
        .http
        .post(format!("{}/verify-email", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap()
        .status()
}

async fn a_resent_link_confirms_the_address_and_the_old_one_stops_working(db: Db) {
    let smtp = SmtpCapture::start();
    let server = start(db, &smtp, &[]).await;

    // Olga signs up; her first confirmation mail gets lost in a filter.
    let (status, body) = server.register("olga").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let first = token_in(&smtp.wait_for(1).await[0]);
    // Signing in is refused with a code of its own (the app offers the resend on it),
    // said only to whoever gave the right password.
    let (status, body) = server.login("olga", PASSWORD).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "email_unverified", "{body}");
    let (status, body) = server.login("olga", "not-her-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "invalid_credentials", "{body}");

    // She asks for it again (her address in other letters) and a new link arrives.
    let (status, _, body) = resend(&server, "Olga@Example.com").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let mail = smtp.wait_for(2).await.remove(1);
    assert_eq!(mail["to"], json!(["olga@example.com"]));
    assert!(mail["text"].as_str().unwrap().contains("24 hours"));
    let second = token_in(&mail);
    assert_ne!(first, second);

    // The first link no longer works; the new one confirms the address, once.
    assert_eq!(
        confirm(&server, &first).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        server.login("olga", PASSWORD).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(confirm(&server, &second).await, StatusCode::OK);
    assert_eq!(server.login("olga", PASSWORD).await.0, StatusCode::OK);
    assert_eq!(
        confirm(&server, &second).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // Each token is stored hashed, never as mailed.
    let stored: Vec<(String,)> = sqlx::query_as("select token_hash from email_verifications")
        .fetch_all(server.pool())
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().all(|(h,)| h != &first && h != &second));
    server.stop().await;
}

async fn unknown_and_confirmed_addresses_get_the_same_answer_and_no_mail(db: Db) {
    let smtp = SmtpCapture::start();
    let server = start(db, &smtp, &[]).await;

    // Pia has confirmed her address; Quinn has not.
    server.register("pia").await;
    let token = token_in(&smtp.wait_for(1).await[0]);
    assert_eq!(confirm(&server, &token).await, StatusCode::OK);
    server.register("quinn").await;
    smtp.wait_for(2).await;

    // Nobody, Pia and Quinn are told exactly the same thing.
    let unknown = resend(&server, "nobody@example.com").await;
    let confirmed = resend(&server, "pia@example.com").await;
    let waiting = resend(&server, "quinn@example.com").await;
    assert_eq!(unknown.0, StatusCode::ACCEPTED, "{}", unknown.2);
    assert_eq!(unknown, confirmed, "the same status and body either way");
    assert_eq!(confirmed, waiting, "the same status and body either way");

    // Only Quinn gets mail: the other two requests sent nothing (they came first).
    let messages = smtp.wait_for(3).await;
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert_eq!(messages[2]["to"], json!(["quinn@example.com"]));
    // Pia's confirmed address stays confirmed, and her used link stays used.
    assert_eq!(server.login("pia", PASSWORD).await.0, StatusCode::OK);
    assert_eq!(
        confirm(&server, &token).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // A username is not an email address, and the field is required.
    let (status, _, body) = resend(&server, "quinn").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = server
        .post("/api/auth/verify-email/resend", None, json!({}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["fields"]["email"], "is required");
    assert_eq!(smtp.messages().len(), 3);
    server.stop().await;
}

async fn resends_are_rate_limited_per_address_and_per_email(db: Db) {
    let smtp = SmtpCapture::start();
    let server = start(
        db,
        &smtp,
        &["--reset-rate-per-account", "2", "--reset-rate-per-ip", "6"],
    )
    .await;
    server.register("rosa").await;
    smtp.wait_for(1).await;

    // Per email: two an hour, for a waiting account and an unknown address alike.
    for email in ["rosa@example.com", "ghost@example.com"] {
        for _ in 0..2 {
            assert_eq!(resend(&server, email).await.0, StatusCode::ACCEPTED);
        }
        let (status, retry, body) = resend(&server, email).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert!(retry.unwrap().parse::<u64>().unwrap() > 0);
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"]["code"], "rate_limited");
    }
    // Per client address: six an hour, the refused ones included, so the seventh is
    // refused though its email was never asked for; password resets share that budget.
    let (status, retry, _) = resend(&server, "una@example.com").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry.is_some());
    let (status, _) = server
        .post(
            "/api/auth/password-reset",
            None,
            json!({"email": "una@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    // Rosa got her sign-up mail and the two resends allowed. Only the link issued last
    // still works (the two resends are mailed concurrently, so which mail that is is not
    // known): exactly one of the three confirms her address.
    let messages = smtp.wait_for(3).await;
    assert_eq!(messages.len(), 3, "{messages:?}");
    let mut confirmed = 0;
    for (i, message) in messages.iter().enumerate() {
        let status = confirm(&server, &token_in(message)).await;
        if i == 0 {
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "the sign-up link");
        }
        confirmed += usize::from(status == StatusCode::OK);
    }
    assert_eq!(confirmed, 1);
    assert_eq!(server.login("rosa", PASSWORD).await.0, StatusCode::OK);
    server.stop().await;
}
