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
use serde_json::json;
use std::io::Write;
use std::path::Path;
use std::process::Command;

/// The variable naming the Schemathesis executable.
const SCHEMATHESIS: &str = "CONFAB_SCHEMATHESIS";

/// Operations that sign the test user out (its token is the one Schemathesis
/// authenticates with), so every later request would be a 401: left out of the main runs,
/// they get a run of their own at the end, on a session of their own.
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
    // The user Schemathesis acts as, with something to act on: a contact and a direct
    // room with them, a group with a message, an invite to it, a contact request from a
    // third user, and a community of theirs (the friend a member) with a second channel, a
    // message in it and an invite link.
    let me = server.user("schemathesis").await;
    let friend = server.user("friend").await;
    server.befriend(&me, &friend).await;
    let (status, direct) = server
        .post(
            &format!("/api/contacts/{}/direct", friend.id),
            Some(&me.token),
            json!({}),
        )
        .await;
    assert!(status.is_success(), "{direct}");
    let room = server.room(&me, 8).await;
    let message = server.post_message(&me, &room, "hello").await;
    let (status, invite) = server
        .post(
            &format!("/api/rooms/{room}/invites"),
            Some(&me.token),
            json!({}),
        )
        .await;
    assert!(status.is_success(), "{invite}");
    let asker = server.user("asker").await;
    let (status, request) = server
        .post(
            "/api/contacts/requests",
            Some(&asker.token),
            json!({"user_id": me.id}),
        )
        .await;
    assert!(status.is_success(), "{request}");
    let (status, community) = server
        .post(
            "/api/communities",
            Some(&me.token),
            json!({"name": "Fixtures", "visibility": "public"}),
        )
        .await;
    assert!(status.is_success(), "{community}");
    let community = community["id"].as_str().unwrap().to_owned();
    let (status, joined) = server
        .post(
            &format!("/api/communities/{community}/join"),
            Some(&friend.token),
            json!({}),
        )
        .await;
    assert!(status.is_success(), "{joined}");
    let (status, channel) = server
        .post(
            &format!("/api/communities/{community}/channels"),
            Some(&me.token),
            json!({"name": "fixtures", "category": "tests"}),
        )
        .await;
    assert!(status.is_success(), "{channel}");
    let channel = channel["id"].as_str().unwrap().to_owned();
    let (_, channels) = server
        .get(
            &format!("/api/communities/{community}/channels"),
            Some(&me.token),
        )
        .await;
    let channel_ids: Vec<&str> = channels
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let in_channel = server.post_message(&me, &channel, "@everyone hello").await;
    let (status, community_invite) = server
        .post(
            &format!("/api/communities/{community}/invites"),
            Some(&me.token),
            json!({}),
        )
        .await;
    assert!(status.is_success(), "{community_invite}");

    // The second run draws path parameters from these real ids half the time (random ones
    // otherwise), so requests get past "no such room" (or community) to the handlers'
    // logic. `id` is a room's or a community's, as the paths use it.
    let ids = |values: &[&str]| serde_json::to_string(values).unwrap();
    let config = format!(
        "{}\n\
         [dictionaries.id]\nvalues = {}\n\
         [dictionaries.user_id]\nvalues = {}\n\
         [dictionaries.message_id]\nvalues = {}\n\
         [dictionaries.token]\nvalues = {}\n\
         [dictionaries.channel_id]\nvalues = {}\n\
         [dictionaries.invite_id]\nvalues = {}\n\
         [dictionaries.emoji]\nvalues = [\"\\U0001F44D\"]\n\
         [parameters]\n{}\n",
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis.toml")
        )
        .unwrap(),
        ids(&[
            &room,
            direct["id"].as_str().unwrap(),
            request["request"]["id"].as_str().unwrap_or_default(),
            &community,
            &channel,
        ]),
        ids(&[&friend.id, &asker.id]),
        ids(&[&message.id.to_string(), &in_channel.id.to_string()]),
        ids(&[
            invite["token"].as_str().unwrap(),
            community_invite["token"].as_str().unwrap()
        ]),
        ids(&channel_ids),
        ids(&[community_invite["id"].as_str().unwrap()]),
        [
            "id",
            "user_id",
            "message_id",
            "token",
            "emoji",
            "channel_id",
            "invite_id",
        ]
        .map(|p| format!("\"path.{p}\" = {{ dictionary = \"{p}\", probability = 0.5 }}"))
        .join("\n"),
    );
    let dir = tempfile::tempdir().unwrap();
    let with_ids = dir.path().join("schemathesis.toml");
    std::fs::write(&with_ids, config).unwrap();
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis.toml");
    let schema = format!("{}/api/openapi.json", server.base);
    let auth = format!("Authorization: Bearer {}", me.token);

    // First every phase, stateful included, on random ids and what the run creates
    // itself; then the examples drawn from the document, and fuzzing, with the real ids
    // too (not in the stateful phase: an id of the fixtures replacing one a step just
    // created would make "created resource not found" reports of rooms another request
    // deleted).
    let without = DESTRUCTIVE.iter().flat_map(|n| ["--exclude-name", n]);
    let mut args: Vec<&str> = without.clone().collect();
    schemathesis_run(&exe, &base, &schema, &auth, &args).await;
    args.extend(["--phases", "coverage,fuzzing"]);
    schemathesis_run(&exe, &with_ids, &schema, &auth, &args).await;
    // Last, the sign-outs, on a new session (answers after it ends are 401s, documented).
    let last = server.sign_in("schemathesis").await;
    let auth = format!("Authorization: Bearer {}", last.token);
    let only: Vec<&str> = DESTRUCTIVE
        .iter()
        .flat_map(|n| ["--include-name", n])
        .collect();
    schemathesis_run(&exe, &base, &schema, &auth, &only).await;
    server.stop().await;
}

/// One `schemathesis run` with all checks (`checks.enabled` in the config); panics with its report unless it passes.
async fn schemathesis_run(exe: &str, config: &Path, schema: &str, auth: &str, extra: &[&str]) {
    let report = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(exe);
    cmd.arg("--config-file")
        .arg(config)
        .arg("--no-color")
        .arg("run")
        .arg(schema)
        .args(["--header", auth])
        // Bounded and repeatable: a fixed seed, few examples per operation, one worker.
        .args(["--max-examples", "30", "--seed", "20261201"])
        .args(["--workers", "1"])
        .args(["--request-timeout", "30"])
        .args(extra)
        .arg("--report-dir")
        .arg(report.path())
        .env("NO_COLOR", "1");
    let output = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("cannot run {exe}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis {extra:?} found problems ({}):\n{stdout}\n{stderr}",
        output.status
    );
    // The summary, for `--nocapture`.
    println!("{stdout}");
    // A run that tested nothing would also exit 0.
    assert!(
        stdout.contains("Tested:") && !stdout.contains("Tested: 0"),
        "schemathesis tested no operation:\n{stdout}\n{stderr}"
    );
}

/// Without Schemathesis too: every operation documents the answers of the layers, with the
/// error shape, and every 429 its `Retry-After`.
async fn every_operation_documents_the_layers_errors(db: Db) {
    let server = TestServer::start(db).await;
    let (status, doc) = server.get("/api/openapi.json", None).await;
    assert!(status.is_success(), "{doc}");
    let error_body = json!({"$ref": "#/components/schemas/ErrorBody"});
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let name = format!("{} {path}", method.to_uppercase());
            let responses = op["responses"].as_object().unwrap();
            let has_body = op.get("requestBody").is_some();
            let has_params = op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["in"] == "path" || p["in"] == "query"));
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            let mut expected = Vec::new();
            if has_body || has_params {
                expected.push("400");
            }
            if secured {
                expected.push("401");
            }
            if has_body {
                expected.extend(["413", "415", "422"]);
            }
            for code in expected {
                let response = responses
                    .get(code)
                    .unwrap_or_else(|| panic!("{name} does not document {code}"));
                assert_eq!(
                    response["content"]["application/json"]["schema"], error_body,
                    "{name} {code}"
                );
            }
            if let Some(limited) = responses.get("429") {
                assert!(
                    limited["headers"].get("Retry-After").is_some(),
                    "{name} 429 has no Retry-After"
                );
            }
        }
    }
    assert!(operations > 40, "{operations} operations");
    // The request types' required fields, which `#[serde(default)]` would hide.
    let required = |schema: &str| doc["components"]["schemas"][schema]["required"].clone();
    assert_eq!(
        required("RegisterRequest"),
        json!(["username", "email", "password", "confirm_password"])
    );
    assert_eq!(required("SendMessageRequest"), json!(["body"]));
    server.stop().await;
}

on_both_databases!(
    schemathesis_finds_nothing,
    every_operation_documents_the_layers_errors
);
