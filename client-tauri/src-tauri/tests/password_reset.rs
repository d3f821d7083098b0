//! "Forgot password?" through the desktop app's session, against a real server that
//! mails through a real SMTP server (Python's aiosmtpd, the server suite's capture script,
//! writing every message to a folder). SQLite only: the server's own suite runs the reset
//! on both databases. The story: Ana has an account and is signed in on a laptop; in the
//! app she asks for a reset (a bad address is a field error, an unknown one is answered
//! the same), reads the mail, pastes the whole link with a weak password (refused on the
//! field), then with a good one; the laptop is signed out, the link does not work twice,
//! the old password fails and the new one signs her in.

#![allow(clippy::unwrap_used)]

use confab_app::AppError;
use confab_app::events::MessengerEvent;
use confab_app::messenger::{Notice, Outlet};
use confab_app::session::Session;
use confab_app::settings::Settings;
use confab_app::views::SignUpForm;
use confab_core::keystore::{MemoryStore, OpenedStore};
use signal_server::testing::{Db, SmtpCapture, TestServer};
use std::path::Path;
use std::sync::Arc;

const PASSWORD: &str = "Correct-Horse-Battery-9";
const NEW_PASSWORD: &str = "Quiet-Lantern-Orchard-42";

/// The window and the OS are not part of this story.
struct Nowhere;

impl Outlet for Nowhere {
    fn event(&self, _: MessengerEvent) {}
    fn notice(&self, _: Notice) {}
}

fn session(dir: &Path) -> Session {
    Session::new(
        Settings::load(dir.join("settings.json")),
        OpenedStore {
            store: Arc::new(MemoryStore::new()),
            fallback_reason: None,
        },
        dir.join("data"),
        Arc::new(Nowhere),
    )
}

/// The field errors of a refusal (Invalid or Conflict), else a panic.
fn fields(err: &AppError) -> Vec<String> {
    match err {
        AppError::Invalid { fields, .. } | AppError::Conflict { fields, .. } => {
            fields.keys().cloned().collect()
        }
        other => panic!("not a field error: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailed_link_pasted_into_the_app_resets_the_password() {
    let smtp = SmtpCapture::start();
    let smtp_url = smtp.url();
    let server = TestServer::start_with(
        Db::Sqlite,
        &[
            "--smtp-url",
            &smtp_url,
            "--smtp-from",
            "Confab <confab@example.org>",
            "--public-url",
            "https://chat.example.org",
        ],
    )
    .await;
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (app, laptop) = (session(dirs.0.path()), session(dirs.1.path()));
    let id = uuid::Uuid::new_v4().simple().to_string();
    let name = format!("ana_{}", &id[..10]);
    let email = format!("{name}@example.com");

    // Ana has an account, and is signed in on her laptop.
    laptop.set_server(&server.base).await.unwrap();
    laptop
        .sign_up(SignUpForm {
            username: name.clone(),
            email: email.clone(),
            password: PASSWORD.into(),
            confirm_password: PASSWORD.into(),
        })
        .await
        .unwrap();
    laptop.list_rooms().await.unwrap();

    // In the app she forgot it. A malformed address is a field error; an unknown one
    // is answered like hers.
    app.set_server(&server.base).await.unwrap();
    assert!(
        !app.app_info().insecure,
        "a loopback server is not warned about"
    );
    let bad = app
        .request_password_reset("not an address")
        .await
        .unwrap_err();
    assert_eq!(fields(&bad), ["email"]);
    let empty = app.request_password_reset("  ").await.unwrap_err();
    assert_eq!(fields(&empty), ["email"]);
    app.request_password_reset("nobody-here@example.com")
        .await
        .unwrap();
    app.request_password_reset(&format!("  {}  ", email.to_uppercase()))
        .await
        .unwrap();

    // The mail carries a link; she pastes all of it.
    let mail = smtp.mail_to(&email).await;
    let text = mail["text"].as_str().unwrap();
    let link = text
        .split_whitespace()
        .find(|w| w.contains("/reset-password?token="))
        .unwrap_or_else(|| panic!("no link in {text}"))
        .to_owned();
    assert!(link.starts_with("https://chat.example.org/"), "{link}");
    let pasted = format!(" {link}\n");

    // Not the link at all, a weak password, two passwords that differ: each on its field.
    let garbled = app
        .confirm_password_reset(
            "https://chat.example.org/reset-password",
            NEW_PASSWORD,
            NEW_PASSWORD,
        )
        .await
        .unwrap_err();
    assert_eq!(fields(&garbled), ["token"]);
    let weak = app
        .confirm_password_reset(&pasted, "password1", "password1")
        .await
        .unwrap_err();
    assert!(fields(&weak).contains(&"password".to_owned()), "{weak:?}");
    let differ = app
        .confirm_password_reset(&pasted, NEW_PASSWORD, "Quiet-Lantern-Orchard-43")
        .await
        .unwrap_err();
    assert!(
        fields(&differ).contains(&"confirm_password".to_owned()),
        "{differ:?}"
    );

    // The good one works, once; the laptop is signed out.
    app.confirm_password_reset(&pasted, NEW_PASSWORD, NEW_PASSWORD)
        .await
        .unwrap();
    let out = laptop.list_rooms().await.unwrap_err();
    assert!(matches!(out, AppError::SignedOut { .. }), "{out:?}");
    let again = app
        .confirm_password_reset(&pasted, NEW_PASSWORD, NEW_PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(fields(&again), ["token"]);

    // The old password fails; the new one signs her in.
    let old = app.log_in(&name, PASSWORD).await.unwrap_err();
    assert_eq!(fields(&old), ["login"]);
    let me = app.log_in(&email, NEW_PASSWORD).await.unwrap();
    assert_eq!(me.username, name);
    app.list_rooms().await.unwrap();

    app.log_out().await.unwrap();
    let _ = laptop.log_out().await;
    server.remove().await;
}
