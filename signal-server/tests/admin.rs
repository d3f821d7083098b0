//! The operator's commands, run as the real `confab-server` binary against the database
//! of a running test server: `admin create-user / list-users / disable-user /
//! enable-user / revoke-sessions` on SQLite and PostgreSQL, `backup` on SQLite.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Db, PASSWORD, TestServer};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::Connection;
use std::io::Write;
use std::process::{Command, Output, Stdio};

on_both_databases!(
    an_operator_creates_lists_disables_and_signs_out_accounts,
    backup_copies_a_live_sqlite_database,
);

/// `confab-server [db flags] ARGS`, with `stdin` written to it.
fn admin(server: &TestServer, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_confab-server"))
        .args(["--database-url", server.database_url()])
        .args(["--data-dir", server.data_dir().to_str().unwrap()])
        .args(["--public-url", "https://chat.example.org"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

async fn an_operator_creates_lists_disables_and_signs_out_accounts(db: Db) {
    let server = TestServer::start(db).await;

    // With a password from stdin: the user signs in with it.
    let id = ok(&admin(
        &server,
        &[
            "admin",
            "create-user",
            "Heidi",
            "heidi@example.com",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    ));
    let heidi = server.sign_in("heidi").await;
    assert_eq!(heidi.id, id.trim());
    // The usual rules apply, and a taken name is refused.
    let weak = admin(
        &server,
        &[
            "admin",
            "create-user",
            "ivan",
            "ivan@example.com",
            "--password-stdin",
        ],
        "password1\n",
    );
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("too common"));
    let taken = admin(
        &server,
        &["admin", "create-user", "heidi", "h2@example.com"],
        "",
    );
    assert!(!taken.status.success());

    // Without one: a reset link for the owner to choose it.
    let out = ok(&admin(
        &server,
        &["admin", "create-user", "judy", "judy@example.com"],
        "",
    ));
    let link = out.lines().nth(1).unwrap();
    let token = link
        .strip_prefix("https://chat.example.org/reset-password?token=")
        .unwrap();
    let (status, _) = server
        .post(
            "/api/auth/password-reset/confirm",
            None,
            json!({"token": token, "password": PASSWORD, "confirm_password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let judy = server.sign_in("judy").await;

    let listed = ok(&admin(&server, &["admin", "list-users"], ""));
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines[0], "id\tusername\temail\tcreated\tdisabled\tsessions");
    assert_eq!(lines.len(), 3, "{listed}");
    let heidi_line: Vec<&str> = lines[1].split('\t').collect();
    assert_eq!(
        &heidi_line[..3],
        [heidi.id.as_str(), "heidi", "heidi@example.com"]
    );
    assert_eq!((heidi_line[4], heidi_line[5]), ("-", "1"));

    // Disabled: signed out, and refused at the door (said only with the right password).
    ok(&admin(
        &server,
        &["admin", "disable-user", "heidi@example.com"],
        "",
    ));
    assert_eq!(
        server.get("/api/users/me", Some(&heidi.token)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = server.login("heidi", PASSWORD).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        server.login("heidi", "wrong-password").await.0,
        StatusCode::UNAUTHORIZED
    );
    let listed = ok(&admin(&server, &["admin", "list-users"], ""));
    assert!(listed.lines().nth(1).unwrap().ends_with("\t0"), "{listed}");
    assert_ne!(listed.lines().nth(1).unwrap().split('\t').nth(4), Some("-"));
    ok(&admin(&server, &["admin", "enable-user", "heidi"], ""));
    assert_eq!(server.login("heidi", PASSWORD).await.0, StatusCode::OK);

    // Every session of an account, signed out.
    let judy_phone = server.sign_in("judy").await;
    ok(&admin(&server, &["admin", "revoke-sessions", "judy"], ""));
    for t in [&judy, &judy_phone] {
        assert_eq!(
            server.get("/api/users/me", Some(&t.token)).await.0,
            StatusCode::UNAUTHORIZED
        );
        let (status, _) = server
            .post(
                "/api/auth/refresh",
                None,
                json!({"refresh_token": t.refresh}),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let nobody = admin(&server, &["admin", "disable-user", "nobody"], "");
    assert!(!nobody.status.success());
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("no account"));
    server.stop().await;
}

async fn backup_copies_a_live_sqlite_database(db: Db) {
    let server = TestServer::start(db).await;
    server.user("kim").await;
    server.user("lee").await;
    let target = server.data_dir().join("backup.db");
    let out = admin(&server, &["backup", target.to_str().unwrap()], "");
    if db == Db::Postgres {
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("pg_dump"));
        server.stop().await;
        return;
    }
    ok(&out);
    // The copy is a database of its own with everything in it.
    let mut copy = sqlx::SqliteConnection::connect(&format!("sqlite://{}", target.display()))
        .await
        .unwrap();
    let users: i64 = sqlx::query_scalar("select count(*) from users")
        .fetch_one(&mut copy)
        .await
        .unwrap();
    assert_eq!(users, 2);
    copy.close().await.unwrap();
    // A backup never overwrites.
    let again = admin(&server, &["backup", target.to_str().unwrap()], "");
    assert!(!again.status.success());
    server.stop().await;
}
