//! ICE servers for WebRTC, over real HTTP: none unless configured, STUN as given, and TURN
//! with credentials in coturn's "TURN REST API" scheme, checked against an HMAC computed
//! here. The endpoint reads no table of its own, so SQLite alone is enough.

#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::Parser;
use clap::error::ErrorKind;
use common::{Db, TestServer};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::json;
use sha1::Sha1;
use signal_server::config::Config;
use std::time::{SystemTime, UNIX_EPOCH};

/// What coturn with `use-auth-secret` expects as the password of `username`.
fn turn_password(secret: &str, username: &str) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(username.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn the_test_computes_the_turn_password_as_openssl_does() {
    // printf '1700000000:user' | openssl dgst -sha1 -hmac secret -binary | base64
    assert_eq!(
        turn_password("secret", "1700000000:user"),
        "I/MZeIG6MwzOV8Uubr9liB2556o="
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_signed_in_users_get_ice_servers() {
    let server = TestServer::start_with(
        Db::Sqlite,
        &[
            "--turn-urls",
            "turn:turn.example.org",
            "--turn-secret",
            "s3cr3t",
        ],
    )
    .await;
    for token in [None, Some("not-a-token")] {
        let (status, body) = server.get("/api/ice-servers", token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_configuration_there_are_no_ice_servers() {
    // Host candidates are enough on a LAN or loopback, and a self-hosted server does not
    // send its users to a public STUN server unasked.
    let server = TestServer::start(Db::Sqlite).await;
    let alice = server.user("alice").await;
    let (status, body) = server.get("/api/ice-servers", Some(&alice.token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"ice_servers": [], "ttl": 86400}));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stun_comes_bare_and_turn_comes_with_short_lived_credentials() {
    let server = TestServer::start_with(
        Db::Sqlite,
        &[
            "--stun-urls",
            "stun:stun.example.org:3478",
            "--turn-urls",
            "turn:turn.example.org:3478?transport=udp",
            "--turn-secret",
            "s3cr3t",
        ],
    )
    .await;
    let alice = server.user("alice").await;
    let before = unix_now();
    let (status, body) = server.get("/api/ice-servers", Some(&alice.token)).await;
    let after = unix_now();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ttl"], 86400);
    let servers = body["ice_servers"].as_array().unwrap();
    assert_eq!(servers.len(), 2, "{body}");

    // STUN needs no credentials, and the entry has no credential fields at all.
    assert_eq!(servers[0], json!({"urls": ["stun:stun.example.org:3478"]}));

    // TURN: username "<unix expiry>:<user id>", password base64(HMAC-SHA1(secret, username)).
    let turn = &servers[1];
    assert_eq!(
        turn["urls"],
        json!(["turn:turn.example.org:3478?transport=udp"])
    );
    let username = turn["username"].as_str().unwrap();
    let (expiry, user) = username.split_once(':').unwrap();
    assert_eq!(user, alice.id);
    let expiry: u64 = expiry.parse().unwrap();
    assert!(
        (before + 86400..=after + 86400).contains(&expiry),
        "expiry {expiry} is not now + 24 h"
    );
    assert_eq!(turn["credential"], turn_password("s3cr3t", username));

    // Bob's credentials are his own.
    let bob = server.user("bob").await;
    let (_, body) = server.get("/api/ice-servers", Some(&bob.token)).await;
    let username = body["ice_servers"][1]["username"].as_str().unwrap();
    assert!(username.ends_with(&format!(":{}", bob.id)), "{username}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_credential_lifetime_and_several_urls_are_configurable() {
    let server = TestServer::start_with(
        Db::Sqlite,
        &[
            "--turn-urls",
            "turn:turn.example.org:3478?transport=udp, turns:turn.example.org:5349?transport=tcp",
            "--turn-secret",
            "s3cr3t",
            "--turn-credential-ttl",
            "600",
        ],
    )
    .await;
    let alice = server.user("alice").await;
    let before = unix_now();
    let (status, body) = server.get("/api/ice-servers", Some(&alice.token)).await;
    let after = unix_now();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ttl"], 600);
    let servers = body["ice_servers"].as_array().unwrap();
    assert_eq!(servers.len(), 1, "no STUN entry when none is configured");
    assert_eq!(
        servers[0]["urls"],
        json!([
            "turn:turn.example.org:3478?transport=udp",
            "turns:turn.example.org:5349?transport=tcp"
        ])
    );
    let username = servers[0]["username"].as_str().unwrap();
    let expiry: u64 = username.split_once(':').unwrap().0.parse().unwrap();
    assert!((before + 600..=after + 600).contains(&expiry));
    assert_eq!(servers[0]["credential"], turn_password("s3cr3t", username));
    server.stop().await;
}

#[test]
fn misconfigured_ice_servers_stop_the_server_at_startup() {
    let parse = |flags: &[&str]| {
        let args = ["confab-server"].iter().chain(flags).copied();
        Config::try_parse_from(args).map(|_| ()).unwrap_err()
    };

    let e = parse(&["--stun-urls", "stun.example.org:3478"]);
    assert_eq!(e.kind(), ErrorKind::ValueValidation);
    assert!(e.to_string().contains("must start with stun:"), "{e}");

    let e = parse(&["--turn-urls", "stun:turn.example.org", "--turn-secret", "x"]);
    assert!(e.to_string().contains("must start with turn:"), "{e}");

    let e = parse(&["--turn-urls", "turn:", "--turn-secret", "x"]);
    assert!(e.to_string().contains("must name a host"), "{e}");

    // Without the shared secret there is no way to give clients credentials.
    let e = parse(&["--turn-urls", "turn:turn.example.org"]);
    assert_eq!(e.kind(), ErrorKind::MissingRequiredArgument);
    assert!(e.to_string().contains("--turn-secret"), "{e}");
    let e = parse(&["--turn-urls", "turn:turn.example.org", "--turn-secret", ""]);
    assert_eq!(e.kind(), ErrorKind::InvalidValue, "{e}");

    let e = parse(&["--turn-credential-ttl", "0"]);
    assert_eq!(e.kind(), ErrorKind::ValueValidation);
}
