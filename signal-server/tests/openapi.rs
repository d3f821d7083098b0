//! The OpenAPI document is exact: Schemathesis, with all its checks, against a real server
//! over a real database, authenticated as a real user. It generates requests from the
//! document (valid ones and, on purpose, invalid ones) and fails on any answer the
//! document does not describe: an undocumented status, a body or header not matching its
//! schema, a schema-valid request rejected, an invalid one accepted, a 5xx.
//!
//! The Schemathesis executable comes from `CONFAB_SCHEMATHESIS` (scripts/test.sh installs
//! a pinned version in a virtualenv beside the build and sets it). Without it the test
//! fails when `CI` is set, and otherwise skips with a message on stderr.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Db, TestServer};
use std::io::Write;
use std::path::Path;
use std::process::Command;

/// The variable naming the Schemathesis executable.
const SCHEMATHESIS: &str = "CONFAB_SCHEMATHESIS";

/// Operations Schemathesis must not call: each would sign the test user out (its token
/// is the one Schemathesis authenticates with), so every later request would be a 401.
/// Their own suites (tests/auth.rs) cover them.
const DESTRUCTIVE: &[&str] = &[
    "POST /api/auth/logout",
    "POST /api/auth/logout-all",
    "DELETE /api/auth/sessions/{id}",
];

fn schemathesis() -> Option<String> {
    match std::env::var(SCHEMATHESIS) {
        Ok(path) if !path.is_empty() => Some(path),
        _ if std::env::var_os("CI").is_some() => panic!(
            "{SCHEMATHESIS} is not set: run the tests with scripts/test.sh, which installs \
             Schemathesis in a virtualenv and sets it"
        ),
        _ => {
            // Straight to stderr, past the test harness's capture: a skip must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: {SCHEMATHESIS} is not set, so the OpenAPI document is not checked; \
                 scripts/test.sh installs Schemathesis and sets it"
            );
            None
        }
    }
}

async fn schemathesis_finds_nothing(db: Db) {
    let Some(exe) = schemathesis() else { return };
    let server = TestServer::start(db).await;
    // The user Schemathesis acts as, with something to act on: a room of its own, a
    // contact, a direct room and a message.
    let me = server.user("schemathesis").await;
    let friend = server.user("friend").await;
    server.befriend(&me, &friend).await;
    let room = server.room(&me, 8).await;
    server.post_message(&me, &room, "hello").await;

    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis.toml");
    let report = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(&exe);
    cmd.arg("--config-file")
        .arg(&config)
        .arg("--no-color")
        .arg("run")
        .arg(format!("{}/api/openapi.json", server.base))
        .args(["--checks", "all"])
        .args(["--header", &format!("Authorization: Bearer {}", me.token)])
        // Bounded and repeatable: a fixed seed and few examples per operation.
        .args(["--max-examples", "30", "--seed", "20261201"])
        .args(["--workers", "2"])
        .args(["--request-timeout", "30"])
        .arg("--report-dir")
        .arg(report.path())
        .env("SCHEMATHESIS_HOOKS", "")
        .env("NO_COLOR", "1");
    for name in DESTRUCTIVE {
        cmd.args(["--exclude-name", name]);
    }
    let output = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("cannot run {exe}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis found problems ({}):\n{stdout}\n{stderr}",
        output.status
    );
    // A run that tested nothing would also exit 0.
    assert!(
        stdout.contains("Tested:") && !stdout.contains("Tested: 0"),
        "schemathesis tested no operation:\n{stdout}\n{stderr}"
    );
    server.stop().await;
}

on_both_databases!(schemathesis_finds_nothing);
