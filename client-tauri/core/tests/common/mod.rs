//! Test harness shared by the client's black-box suites: a real `signal_server::Server`
//! in this process on an ephemeral port, over a database of the test's own, with the
//! login rate limits lifted (tests sign in many users from one address). It is the
//! server's own harness (`signal_server::testing`, see there): the server can be stopped
//! and started again on the same port and database, so a client built against its URL
//! keeps working across a restart (or sees it down).
//!
//! The API, messenger and signaling stories run on both databases (`on_both_databases!`),
//! as the server's own do. The call and CLI suites run on SQLite only: their calls are
//! CPU-heavy on a two-core machine, and what they test is the media and the command
//! line, which one database exercises as well as two. The keyring suite starts no
//! server.

#![allow(dead_code)]
#![allow(clippy::unwrap_used)] // Test set-up: a failure is a test failure.

#[allow(unused_imports)] // The SQLite-only suites do not use it.
pub use signal_server::on_both_databases;
pub use signal_server::testing::{Db, TestServer};

use confab_core::api::ApiClient;
use confab_core::keystore::MemoryStore;
use shared::api::{CreateRoomRequest, RegisterRequest, Room};
use std::sync::Arc;

/// A password the server's strength check accepts.
pub const PASSWORD: &str = "Correct-Horse-Battery-9";

/// A name no other test (or earlier run) uses: tests share nothing but the machine.
pub fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &id[..12])
}

/// A registered (not signed-in) user named `prefix_<unique>`.
pub async fn register(server: &TestServer, prefix: &str) -> (ApiClient, String) {
    let api = ApiClient::new(&server.base, Arc::new(MemoryStore::new())).unwrap();
    let name = unique(prefix);
    api.register(&RegisterRequest {
        username: name.clone(),
        email: format!("{name}@example.com"),
        password: PASSWORD.to_owned(),
        confirm_password: PASSWORD.to_owned(),
    })
    .await
    .unwrap();
    (api, name)
}

/// A new user (`prefix_<unique>`, its name returned) who signs in and creates a room
/// titled `title`: what the call suites start from.
pub async fn room_owner(server: &TestServer, prefix: &str, title: &str) -> (String, Room) {
    let (owner, name) = register(server, prefix).await;
    owner.login(&name, PASSWORD).await.unwrap();
    let room = owner
        .create_room(&CreateRoomRequest {
            title: title.into(),
            max_participants: None,
        })
        .await
        .unwrap();
    (name, room)
}
