//! What the community suites (communities.rs, community_authz.rs) share: creating a
//! community, its channels, joining, and reading the WebSocket for community events.

#![allow(dead_code, clippy::unwrap_used)]

use crate::common::{TestServer, TestUser, Ws};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared::signal::ServerMsg;

/// Creates a community owned by `owner`; returns its summary.
pub async fn create(server: &TestServer, owner: &TestUser, name: &str, visibility: &str) -> Value {
    let (status, body) = server
        .post(
            "/api/communities",
            Some(&owner.token),
            json!({"name": name, "description": format!("about {name}"), "visibility": visibility}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

pub fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// Joins a public community by id and expects it to work.
pub async fn join(server: &TestServer, user: &TestUser, community: &str) -> Value {
    let (status, body) = server
        .post(
            &format!("/api/communities/{community}/join"),
            Some(&user.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The channels `user` sees, in order.
pub async fn channels(server: &TestServer, user: &TestUser, community: &str) -> Vec<Value> {
    let (status, body) = server
        .get(
            &format!("/api/communities/{community}/channels"),
            Some(&user.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().unwrap().clone()
}

/// The id of the channel named `name`.
pub async fn channel_named(
    server: &TestServer,
    user: &TestUser,
    community: &str,
    name: &str,
) -> String {
    channels(server, user, community)
        .await
        .iter()
        .find(|c| c["name"] == name)
        .map(id)
        .unwrap_or_else(|| panic!("no channel {name}"))
}

/// Creates a channel (as an admin); returns it.
pub async fn create_channel(
    server: &TestServer,
    admin: &TestUser,
    community: &str,
    body: Value,
) -> Value {
    let (status, channel) = server
        .post(
            &format!("/api/communities/{community}/channels"),
            Some(&admin.token),
            body,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{channel}");
    channel
}

pub async fn patch(
    server: &TestServer,
    user: &TestUser,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    server
        .request(Method::PATCH, path, Some(&user.token), Some(body))
        .await
}

pub async fn put(
    server: &TestServer,
    user: &TestUser,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    server
        .request(Method::PUT, path, Some(&user.token), Some(body))
        .await
}

/// Whether a message is one of the community events.
pub fn is_community_event(msg: &ServerMsg) -> bool {
    matches!(
        msg,
        ServerMsg::CommunityAdded { .. }
            | ServerMsg::CommunityUpdated { .. }
            | ServerMsg::CommunityRemoved { .. }
            | ServerMsg::CommunityMemberJoined { .. }
            | ServerMsg::CommunityMemberLeft { .. }
            | ServerMsg::CommunityRoleChanged { .. }
            | ServerMsg::ChannelCreated { .. }
            | ServerMsg::ChannelUpdated { .. }
            | ServerMsg::ChannelDeleted { .. }
            | ServerMsg::ChannelsReordered { .. }
    )
}

/// The next community event on `ws` (presence and other traffic skipped).
pub async fn next_event(ws: &mut Ws) -> ServerMsg {
    ws.recv_until(is_community_event).await
}
