//! Rooms, membership and invites over real HTTP, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Db, TestServer, TestUser, Ws};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared::api::{PresenceStatus, RoomKind, RoomRole};
use shared::signal::{ClientMsg, ServerMsg};
use std::time::Duration;

on_both_databases!(
    creating_a_room_needs_a_signed_in_user,
    room_fields_are_validated,
    rooms_are_listed_and_joined,
    only_members_see_a_room,
    a_full_room_refuses_joins,
    leaving_and_deleting,
    invite_links_join_the_room,
    the_whole_flow,
    concurrent_joins_respect_the_limit,
    the_room_list_sums_up_each_room,
    the_room_list_puts_recent_activity_first,
    direct_rooms_in_the_list_and_what_they_refuse,
    admins_add_their_contacts,
    the_member_limit_holds_on_every_way_in,
    an_invite_to_a_full_group_keeps_its_use,
    roles_decide_who_removes_and_renames,
    the_owner_leaving_hands_the_group_on,
    muting_is_my_own_setting,
    membership_changes_reach_websockets,
    non_members_learn_nothing,
    bad_input_gets_json_errors,
    everyone_leaving_at_once,
);

async fn creating_a_room_needs_a_signed_in_user(db: Db) {
    let server = TestServer::start(db).await;
    let (status, body) = server
        .post("/api/rooms", None, json!({"title": "Standup"}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");

    let ann = server.user("ann").await;
    let (status, room) = server
        .post("/api/rooms", Some(&ann.token), json!({"title": "Standup"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(room["max_participants"], 8, "the default");
    assert_eq!(room["owner_id"], ann.id.as_str());
    assert_eq!(room["member_count"], 1);
    assert!(room["id"].as_str().unwrap().parse::<uuid::Uuid>().is_ok());
    server.stop().await;
}

async fn room_fields_are_validated(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    for (body, field) in [
        (json!({"title": "   "}), "title"),
        (json!({}), "title"),
        (json!({"title": "x".repeat(101)}), "title"),
        (
            json!({"title": "ok", "max_participants": 1}),
            "max_participants",
        ),
        (
            json!({"title": "ok", "max_participants": 17}),
            "max_participants",
        ),
    ] {
        let (status, resp) = server
            .post("/api/rooms", Some(&ann.token), body.clone())
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            resp["error"]["fields"][field].is_string(),
            "{body} -> {resp}"
        );
    }
    let (status, _) = server
        .post(
            "/api/rooms",
            Some(&ann.token),
            json!({"title": "ok", "max_participants": -3}),
        )
        .await;
    assert_eq!(
        status.as_u16() / 100,
        4,
        "a negative number is refused, not a 500"
    );
    server.stop().await;
}

async fn rooms_are_listed_and_joined(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let ben = server.user("ben").await;
    let mine = server.room(&ann, 4).await;
    let theirs = server.room(&ben, 4).await;

    let (status, room) = server.join(&ann, &theirs).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(room["member_count"], 2);
    let (status, again) = server.join(&ann, &theirs).await;
    assert_eq!(
        (status, &again["member_count"]),
        (StatusCode::OK, &json!(2)),
        "joining twice changes nothing"
    );

    let (status, list) = server.get("/api/rooms", Some(&ann.token)).await;
    assert_eq!(status, StatusCode::OK);
    let mut ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut expected = vec![mine.as_str(), theirs.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected, "rooms I own and rooms I joined");

    let (_, ben_list) = server.get("/api/rooms", Some(&ben.token)).await;
    assert_eq!(ben_list.as_array().unwrap().len(), 1);

    let (status, _) = server
        .post(
            &format!("/api/rooms/{}/join", uuid::Uuid::new_v4()),
            Some(&ann.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

async fn only_members_see_a_room(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let eve = server.user("eve").await;
    let room = server.room(&ann, 4).await;

    let (status, detail) = server
        .get(&format!("/api/rooms/{room}"), Some(&ann.token))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["title"], "Standup");
    assert_eq!(detail["members"][0]["role"], "owner");
    assert_eq!(detail["members"][0]["user"]["username"], "ann");
    assert!(detail["members"][0]["user"].get("email").is_none());

    let (status, body) = server
        .get(&format!("/api/rooms/{room}"), Some(&eve.token))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a non-member learns nothing, not even that it exists"
    );
    assert_eq!(body["error"]["code"], "not_found");
    let (status, _) = server
        .post(
            &format!("/api/rooms/{room}/invites"),
            Some(&eve.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nor can they invite anyone");
    server.stop().await;
}

/// A group holds up to `--max-group-members`; `max_participants` only caps its call.
async fn a_full_room_refuses_joins(db: Db) {
    let server = TestServer::start_with(db, &["--max-group-members", "3"]).await;
    let ann = server.user("ann").await;
    let room = server.room(&ann, 2).await;
    let ben = server.user("ben").await;
    let cat = server.user("cat").await;
    let dan = server.user("dan").await;
    assert_eq!(server.join(&ben, &room).await.0, StatusCode::OK);
    let (status, body) = server.join(&cat, &room).await;
    assert_eq!(
        (status, &body["member_count"]),
        (StatusCode::OK, &json!(3)),
        "a call for two does not stop a third member: {body}"
    );
    let (status, body) = server.join(&dan, &room).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "room_full");

    // A place frees up when someone leaves.
    let (status, _) = server
        .post(
            &format!("/api/rooms/{room}/leave"),
            Some(&ben.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(server.join(&dan, &room).await.0, StatusCode::OK);
    server.stop().await;
}

async fn leaving_and_deleting(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let ben = server.user("ben").await;
    let cat = server.user("cat").await;
    let room = server.room(&ann, 4).await;
    server.join(&ben, &room).await;
    server.join(&cat, &room).await;

    let (status, body) = server
        .delete(&format!("/api/rooms/{room}"), Some(&ben.token))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "only the owner deletes a group"
    );

    assert_eq!(
        server
            .post(
                &format!("/api/rooms/{room}/leave"),
                Some(&ben.token),
                json!({})
            )
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        server
            .post(
                &format!("/api/rooms/{room}/leave"),
                Some(&ben.token),
                json!({})
            )
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server
            .get(&format!("/api/rooms/{room}"), Some(&ben.token))
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    assert_eq!(
        server
            .delete(&format!("/api/rooms/{room}"), Some(&ann.token))
            .await
            .0,
        StatusCode::NO_CONTENT,
        "the owner deletes the group with its members in it"
    );
    for user in [&ann, &cat] {
        assert_eq!(
            server
                .get(&format!("/api/rooms/{room}"), Some(&user.token))
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        let (_, list) = server.get("/api/rooms", Some(&user.token)).await;
        assert_eq!(list, json!([]));
    }
    server.stop().await;
}

async fn invite_links_join_the_room(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let ben = server.user("ben").await;
    let cat = server.user("cat").await;
    let room = server.room(&ann, 8).await;

    // No body at all is fine: defaults apply.
    let resp = server
        .http
        .post(format!("{}/api/rooms/{room}/invites", server.base))
        .bearer_auth(&ann.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let open: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(open["room_id"], room.as_str());
    assert!(open["token"].as_str().unwrap().len() >= 40);

    let (status, single) = server
        .post(
            &format!("/api/rooms/{room}/invites"),
            Some(&ann.token),
            json!({"max_uses": 1, "expires_in": 3600}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let single = single["token"].as_str().unwrap().to_owned();

    let (status, joined) = server
        .post(
            &format!("/api/invites/{single}/accept"),
            Some(&ben.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(joined["id"], room.as_str());
    assert_eq!(joined["member_count"], 2);
    let (status, body) = server
        .post(
            &format!("/api/invites/{single}/accept"),
            Some(&cat.token),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::GONE, Some("gone")),
        "used up"
    );

    let (status, _) = server
        .post(
            &format!("/api/invites/{}/accept", open["token"].as_str().unwrap()),
            Some(&cat.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        server
            .get(&format!("/api/rooms/{room}"), Some(&cat.token))
            .await
            .0,
        StatusCode::OK
    );

    let (status, _) = server
        .post(
            "/api/invites/made-up-token/accept",
            Some(&cat.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = server
        .post(
            &format!("/api/rooms/{room}/invites"),
            Some(&ann.token),
            json!({"expires_in": 5}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    server.stop().await;
}

/// register -> login -> create room -> another user joins -> logout.
async fn the_whole_flow(db: Db) {
    let server = TestServer::start(db).await;
    assert_eq!(server.register("owner").await.0, StatusCode::CREATED);
    let owner = server.sign_in("owner").await;
    let room = server.room(&owner, 3).await;
    let guest = server.user("guest").await;
    assert_eq!(server.join(&guest, &room).await.0, StatusCode::OK);
    let (_, detail) = server
        .get(&format!("/api/rooms/{room}"), Some(&owner.token))
        .await;
    let names: Vec<&str> = detail["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user"]["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["owner", "guest"]);
    let (status, _) = server
        .post(
            "/api/auth/logout",
            Some(&guest.token),
            json!({"refresh_token": guest.refresh}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        server.get("/api/rooms", Some(&guest.token)).await.0,
        StatusCode::UNAUTHORIZED
    );
    server.stop().await;
}

/// Many people joining at once: the member limit holds (not the call's capacity), and
/// nobody gets a server error.
async fn concurrent_joins_respect_the_limit(db: Db) {
    let server = TestServer::start_with(db, &["--max-group-members", "4"]).await;
    let ann = server.user("ann").await;
    let room = server.room(&ann, 2).await;
    let mut guests = Vec::new();
    for i in 0..8 {
        guests.push(server.user(&format!("guest{i}")).await);
    }
    let joins = guests.iter().map(|g| server.join(g, &room));
    let statuses: Vec<StatusCode> = futures_util::future::join_all(joins)
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        5,
        "{statuses:?}"
    );
    let (_, detail) = server
        .get(&format!("/api/rooms/{room}"), Some(&ann.token))
        .await;
    assert_eq!(detail["member_count"], 4);
    assert_eq!(detail["members"].as_array().unwrap().len(), 4);
    server.stop().await;
}

// ---- helpers for the messenger's rooms ----

async fn block(server: &TestServer, blocker: &TestUser, blocked: &TestUser) {
    let (status, body) = server
        .request(
            Method::PUT,
            &format!("/api/blocks/{}", blocked.id),
            Some(&blocker.token),
            None,
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
}

async fn unblock(server: &TestServer, blocker: &TestUser, blocked: &TestUser) {
    let (status, body) = server
        .delete(&format!("/api/blocks/{}", blocked.id), Some(&blocker.token))
        .await;
    assert!(status.is_success(), "{status} {body}");
}

/// Sends a message; returns it.
async fn say(server: &TestServer, user: &TestUser, room: &str, body: &str) -> Value {
    let resp = server
        .http
        .post(format!("{}/api/rooms/{room}/messages", server.base))
        .bearer_auth(&user.token)
        .header("idempotency-key", uuid::Uuid::new_v4().to_string())
        .json(&json!({ "body": body }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    resp.json().await.unwrap()
}

async fn request(
    server: &TestServer,
    method: Method,
    path: &str,
    user: &TestUser,
    body: Value,
) -> (StatusCode, Value) {
    server
        .request(method, path, Some(&user.token), Some(body))
        .await
}

/// `user`'s room list.
async fn room_list(server: &TestServer, user: &TestUser) -> Vec<Value> {
    let (status, list) = server.get("/api/rooms", Some(&user.token)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list.as_array().unwrap().clone()
}

/// One room of `user`'s room list.
async fn summary(server: &TestServer, user: &TestUser, room: &str) -> Value {
    room_list(server, user)
        .await
        .into_iter()
        .find(|r| r["id"] == room)
        .unwrap_or_else(|| panic!("{room} is not in {}'s list", user.name))
}

async fn add(
    server: &TestServer,
    admin: &TestUser,
    room: &str,
    user: &TestUser,
) -> (StatusCode, Value) {
    server
        .post(
            &format!("/api/rooms/{room}/members"),
            Some(&admin.token),
            json!({"user_id": user.id}),
        )
        .await
}

async fn set_role(
    server: &TestServer,
    owner: &TestUser,
    room: &str,
    user: &TestUser,
    role: &str,
) -> (StatusCode, Value) {
    request(
        server,
        Method::PATCH,
        &format!("/api/rooms/{room}/members/{}", user.id),
        owner,
        json!({ "role": role }),
    )
    .await
}

async fn remove(server: &TestServer, admin: &TestUser, room: &str, user: &TestUser) -> StatusCode {
    server
        .delete(
            &format!("/api/rooms/{room}/members/{}", user.id),
            Some(&admin.token),
        )
        .await
        .0
}

async fn leave(server: &TestServer, user: &TestUser, room: &str) -> StatusCode {
    server
        .post(
            &format!("/api/rooms/{room}/leave"),
            Some(&user.token),
            json!({}),
        )
        .await
        .0
}

async fn invite(server: &TestServer, user: &TestUser, room: &str, max_uses: u32) -> String {
    let (status, body) = server
        .post(
            &format!("/api/rooms/{room}/invites"),
            Some(&user.token),
            json!({ "max_uses": max_uses }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

async fn accept(server: &TestServer, user: &TestUser, token: &str) -> (StatusCode, Value) {
    server
        .post(
            &format!("/api/invites/{token}/accept"),
            Some(&user.token),
            json!({}),
        )
        .await
}

/// The room's members as (username, role), owner first.
async fn roles(server: &TestServer, user: &TestUser, room: &str) -> Vec<(String, String)> {
    let (status, detail) = server
        .get(&format!("/api/rooms/{room}"), Some(&user.token))
        .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    detail["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["user"]["username"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// Joined-at times are unix seconds: "oldest" needs a second between joins.
async fn next_second() {
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

fn is_room_added(msg: &ServerMsg, room: &str) -> bool {
    matches!(msg, ServerMsg::RoomAdded { room: r } if r.room.id.to_string() == room)
}

fn is_room_updated(msg: &ServerMsg, room: &str) -> bool {
    matches!(msg, ServerMsg::RoomUpdated { room: r } if r.id.to_string() == room)
}

fn is_room_removed(msg: &ServerMsg, room: &str) -> bool {
    matches!(msg, ServerMsg::RoomRemoved { room_id } if room_id.to_string() == room)
}

/// The next `room_updated` for `room`.
async fn next_update(ws: &mut Ws, room: &str) -> shared::api::Room {
    match ws.recv_until(|m| is_room_updated(m, room)).await {
        ServerMsg::RoomUpdated { room } => room,
        _ => unreachable!(),
    }
}

// ---- the room list ----

/// Each entry of `GET /api/rooms` carries what the list shows: the last message
/// (preview cut at 100 characters), unread and mention counts from my read marker
/// (not mine, not deleted, not from someone I block), the marker, seq and rev.
async fn the_room_list_sums_up_each_room(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let ben = server.user("ben").await;
    let cat = server.user("cat").await;
    let room = server.room(&ann, 8).await;
    server.join(&ben, &room).await;

    let fresh = summary(&server, &ann, &room).await;
    assert_eq!(fresh["kind"], "group");
    assert_eq!(fresh["title"], "Standup");
    assert_eq!(fresh["my_role"], "owner");
    assert_eq!(fresh["member_count"], 2);
    assert!(fresh["last_message"].is_null());
    assert!(fresh["other_user"].is_null());
    assert!(fresh["other_presence"].is_null());
    for (field, value) in [
        ("unread_count", 0),
        ("mention_count", 0),
        ("last_read_seq", 0),
        ("last_seq", 0),
        ("rev", 0),
        ("call_participants", 0),
    ] {
        assert_eq!(fresh[field], value, "{field} in {fresh}");
    }
    assert_eq!(fresh["muted"], false);
    assert_eq!(summary(&server, &ben, &room).await["my_role"], "member");

    say(&server, &ann, &room, "morning").await;
    say(&server, &ben, &room, "hi @ann").await;
    let doomed = say(&server, &ben, &room, "typo").await;
    // 150 characters of two bytes each: the preview keeps 100 characters, not bytes.
    let long = "é".repeat(150);
    say(&server, &ben, &room, &long).await;

    let mine = summary(&server, &ann, &room).await;
    assert_eq!(mine["unread_count"], 3, "ben's three, not my own: {mine}");
    assert_eq!(mine["mention_count"], 1);
    assert_eq!(mine["last_read_seq"], 1, "sending moved my marker");
    assert_eq!(mine["last_seq"], 4);
    assert!(mine["rev"].as_u64().unwrap() >= 4);
    let last = &mine["last_message"];
    assert_eq!(last["seq"], 4);
    assert_eq!(last["kind"], "text");
    assert_eq!(last["author"]["username"], "ben");
    assert!(last["author"].get("email").is_none());
    assert_eq!(last["body"], "é".repeat(100));
    assert_eq!(summary(&server, &ben, &room).await["unread_count"], 0);

    // A newcomer does not inherit the history as unread.
    server.join(&cat, &room).await;
    let cats = summary(&server, &cat, &room).await;
    assert_eq!(
        (&cats["unread_count"], &cats["last_read_seq"]),
        (&json!(0), &json!(4)),
        "{cats}"
    );

    // Deleted messages neither count nor show.
    let (status, _) = server
        .delete(
            &format!(
                "/api/rooms/{room}/messages/{}",
                doomed["id"].as_str().unwrap()
            ),
            Some(&ben.token),
        )
        .await;
    assert!(status.is_success());
    assert_eq!(summary(&server, &ann, &room).await["unread_count"], 2);
    let (status, _) = server
        .delete(
            &format!(
                "/api/rooms/{room}/messages/{}",
                last["message_id"].as_str().unwrap()
            ),
            Some(&ben.token),
        )
        .await;
    assert!(status.is_success());
    let mine = summary(&server, &ann, &room).await;
    assert_eq!(mine["unread_count"], 1);
    assert_eq!(
        mine["last_message"]["body"], "hi @ann",
        "the newest message that is not deleted"
    );

    // Someone I block brings me no unread messages and no mentions; unblocking does.
    block(&server, &ann, &ben).await;
    let mine = summary(&server, &ann, &room).await;
    assert_eq!(
        (&mine["unread_count"], &mine["mention_count"]),
        (&json!(0), &json!(0))
    );
    unblock(&server, &ann, &ben).await;
    let mine = summary(&server, &ann, &room).await;
    assert_eq!(
        (&mine["unread_count"], &mine["mention_count"]),
        (&json!(1), &json!(1))
    );

    // Reading clears both.
    let (status, _) = server
        .post(
            &format!("/api/rooms/{room}/read"),
            Some(&ann.token),
            json!({"seq": 4}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mine = summary(&server, &ann, &room).await;
    assert_eq!(
        (
            &mine["unread_count"],
            &mine["mention_count"],
            &mine["last_read_seq"]
        ),
        (&json!(0), &json!(0), &json!(4))
    );

    // A call in progress shows in the list.
    let mut ws = server.ws(&ben).await;
    ws.send(&ClientMsg::JoinCall {
        room_id: room.parse().unwrap(),
        video: false,
    })
    .await;
    ws.recv_until(|m| matches!(m, ServerMsg::CallJoined { .. }))
        .await;
    assert_eq!(summary(&server, &ann, &room).await["call_participants"], 1);
    server.stop().await;
}

/// Newest activity first: the last message's time, else when I joined.
async fn the_room_list_puts_recent_activity_first(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let first = server.room(&ann, 8).await;
    next_second().await;
    let second = server.room(&ann, 8).await;
    let ids = |list: Vec<Value>| -> Vec<String> {
        list.iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(room_list(&server, &ann).await),
        [second.clone(), first.clone()]
    );
    next_second().await;
    say(&server, &ann, &first, "news").await;
    assert_eq!(
        ids(room_list(&server, &ann).await),
        [first.clone(), second.clone()]
    );
    next_second().await;
    let third = server.room(&ann, 8).await;
    assert_eq!(ids(room_list(&server, &ann).await), [third, first, second]);
    server.stop().await;
}

/// A direct room lists the other user with their presence (offline while either blocks
/// the other), and refuses what only groups do.
async fn direct_rooms_in_the_list_and_what_they_refuse(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let ben = server.user("ben").await;
    let cat = server.user("cat").await;
    server.befriend(&ann, &ben).await;
    server.befriend(&ann, &cat).await;
    let (status, direct) = server
        .post(
            &format!("/api/contacts/{}/direct", ben.id),
            Some(&ann.token),
            json!({}),
        )
        .await;
    assert!(status.is_success(), "{direct}");
    let room = direct["id"].as_str().unwrap().to_owned();

    let entry = summary(&server, &ann, &room).await;
    assert_eq!(entry["kind"], "direct");
    assert_eq!(entry["title"], "");
    assert_eq!(entry["my_role"], "member");
    assert_eq!(entry["other_user"]["username"], "ben");
    assert!(entry["other_user"].get("email").is_none());
    assert_eq!(entry["other_presence"], "offline");
    let mut bens = server.ws(&ben).await;
    assert_eq!(
        summary(&server, &ann, &room).await["other_presence"],
        "online"
    );
    assert_eq!(
        summary(&server, &ben, &room).await["other_user"]["username"],
        "ann"
    );

    // Nothing a group has: leaving, deleting, joining, invites, members, roles, a title.
    let conflict = |(status, body): (StatusCode, Value)| {
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["error"]["code"], "conflict");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("direct")
        );
    };
    conflict(
        server
            .post(
                &format!("/api/rooms/{room}/leave"),
                Some(&ann.token),
                json!({}),
            )
            .await,
    );
    conflict(
        server
            .delete(&format!("/api/rooms/{room}"), Some(&ann.token))
            .await,
    );
    conflict(server.join(&ann, &room).await);
    conflict(
        server
            .post(
                &format!("/api/rooms/{room}/invites"),
                Some(&ann.token),
                json!({}),
            )
            .await,
    );
    conflict(add(&server, &ann, &room, &cat).await);
    conflict(
        server
            .delete(
                &format!("/api/rooms/{room}/members/{}", ben.id),
                Some(&ann.token),
            )
            .await,
    );
    conflict(
        server
            .delete(
                &format!("/api/rooms/{room}/members/{}", ann.id),
                Some(&ann.token),
            )
            .await,
    );
    conflict(set_role(&server, &ann, &room, &ben, "admin").await);
    conflict(
        request(
            &server,
            Method::PATCH,
            &format!("/api/rooms/{room}"),
            &ann,
            json!({"title": "Us"}),
        )
        .await,
    );
    // To a stranger it does not exist.
    let (status, _) = server.join(&cat, &room).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(summary(&server, &ann, &room).await["member_count"], 2);

    // Muting works in any room.
    let (status, muted) = request(
        &server,
        Method::PATCH,
        &format!("/api/rooms/{room}/settings"),
        &ann,
        json!({"muted": true}),
    )
    .await;
    assert_eq!(
        (status, &muted["muted"]),
        (StatusCode::OK, &json!(true)),
        "{muted}"
    );

    // A block hides presence both ways, even while connected.
    block(&server, &ben, &ann).await;
    assert_eq!(
        summary(&server, &ann, &room).await["other_presence"],
        "offline"
    );
    let mut anns = server.ws(&ann).await;
    assert_eq!(
        summary(&server, &ben, &room).await["other_presence"],
        "offline"
    );
    unblock(&server, &ben, &ann).await;
    assert_eq!(
        summary(&server, &ben, &room).await["other_presence"],
        "online"
    );
    bens.drain().await;
    anns.drain().await;
    server.stop().await;
}

// ---- managing a group ----

/// Admins add their contacts; anyone else gets the same refusal whatever the reason.
async fn admins_add_their_contacts(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let ben = server.user("ben").await;
    let cat = server.user("cat").await;
    let dan = server.user("dan").await;
    let eve = server.user("eve").await;
    server.befriend(&ann, &ben).await;
    server.befriend(&ann, &dan).await;
    server.befriend(&ben, &eve).await;
    let room = server.room(&ann, 8).await;

    let (status, member) = add(&server, &ann, &room, &ben).await;
    assert_eq!(status, StatusCode::CREATED, "{member}");
    assert_eq!(member["user"]["username"], "ben");
    assert_eq!(member["role"], "member");
    assert!(member["user"].get("email").is_none());
    assert_eq!(
        roles(&server, &ann, &room).await,
        pairs(&[("ann", "owner"), ("ben", "member")])
    );
    assert_eq!(summary(&server, &ben, &room).await["member_count"], 2);

    let (status, body) = add(&server, &ann, &room, &ben).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );
    let (status, body) = add(&server, &ann, &room, &ann).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // Not a contact, and blocked: one answer.
    let (status, not_contact) = add(&server, &ann, &room, &cat).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(not_contact["error"]["code"], "cannot_message_user");
    block(&server, &dan, &ann).await;
    let (status, blocked) = add(&server, &ann, &room, &dan).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        blocked, not_contact,
        "a block cannot be told from a stranger"
    );

    let (status, body) = server
        .post(
            &format!("/api/rooms/{room}/members"),
            Some(&ann.token),
            json!({"user_id": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );

    // A member may not add, even their own contacts; an admin may.
    let (status, body) = add(&server, &ben, &room, &eve).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (status, body) = set_role(&server, &ann, &room, &ben, "admin").await;
    assert_eq!(
        (status, &body["role"]),
        (StatusCode::OK, &json!("admin")),
        "{body}"
    );
    let (status, body) = add(&server, &ben, &room, &eve).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = add(&server, &ben, &room, &cat).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "ann's contact, not ben's");
    assert_eq!(
        roles(&server, &eve, &room).await,
        pairs(&[("ann", "owner"), ("ben", "admin"), ("eve", "member")])
    );
    server.stop().await;
}

/// Joining by id, by invite and being added all claim a place; `max_participants` (the
/// call's capacity) has nothing to do with it.
async fn the_member_limit_holds_on_every_way_in(db: Db) {
    let server = TestServer::start_with(db, &["--max-group-members", "3"]).await;
    let ann = server.user("ann").await;
    let ben = server.user("ben").await;
    let cat = server.user("cat").await;
    let dan = server.user("dan").await;
    server.befriend(&ann, &ben).await;
    server.befriend(&ann, &dan).await;
    let room = server.room(&ann, 2).await;
    assert_eq!(add(&server, &ann, &room, &ben).await.0, StatusCode::CREATED);
    assert_eq!(server.join(&cat, &room).await.0, StatusCode::OK);

    let (status, body) = add(&server, &ann, &room, &dan).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("room_full"))
    );
    let (status, body) = server.join(&dan, &room).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("room_full"))
    );
    let token = invite(&server, &ann, &room, 5).await;
    let (status, body) = accept(&server, &dan, &token).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("room_full"))
    );
    // Members accepting or joining again change nothing.
    assert_eq!(accept(&server, &ben, &token).await.0, StatusCode::OK);
    assert_eq!(server.join(&cat, &room).await.0, StatusCode::OK);

    assert_eq!(
        remove(&server, &ann, &room, &cat).await,
        StatusCode::NO_CONTENT
    );
    let (status, member) = add(&server, &ann, &room, &dan).await;
    assert_eq!(status, StatusCode::CREATED, "{member}");
    let (_, detail) = server
        .get(&format!("/api/rooms/{room}"), Some(&ann.token))
        .await;
    assert_eq!(detail["member_count"], 3);
    assert_eq!(detail["max_participants"], 2);
    assert_eq!(detail["members"].as_array().unwrap().len(), 3);
    server.stop().await;
}

/// Accepting an invite to a full group does not use it up; a member accepting does not
/// either. The use counts with the join, in one transaction.
async fn an_invite_to_a_full_group_keeps_its_use(db: Db) {
    let server = TestServer::start_with(db, &["--max-group-members", "2"]).await;
    let ann = server.user("ann").await;
    let ben = server.user("ben").await;
    let cat = server.user("cat").await;
    let dan = server.user("dan").await;
    let room = server.room(&ann, 8).await;
    server.join(&ben, &room).await;
    let once = invite(&server, &ann, &room, 1).await;

    for _ in 0..3 {
        let (status, body) = accept(&server, &cat, &once).await;
        assert_eq!(body["error"]["code"], "room_full", "{status}");
        let (status, _) = accept(&server, &ben, &once).await;
        assert_eq!(status, StatusCode::OK, "already a member");
    }
    assert_eq!(leave(&server, &ben, &room).await, StatusCode::NO_CONTENT);
    let (status, joined) = accept(&server, &cat, &once).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the one use is still there: {joined}"
    );
    assert_eq!(joined["member_count"], 2);
    assert_eq!(leave(&server, &cat, &room).await, StatusCode::NO_CONTENT);
    let (status, body) = accept(&server, &dan, &once).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::GONE, Some("gone"))
    );

    // Two racing for the last use of an invite to a group with room for both: one wins.
    let last = invite(&server, &ann, &room, 1).await;
    let (a, b) = tokio::join!(accept(&server, &cat, &last), accept(&server, &dan, &last));
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::GONE], "{a:?} {b:?}");
    server.stop().await;
}

/// Admins remove members and rename; only the owner removes admins and changes roles;
/// nobody removes the owner.
async fn roles_decide_who_removes_and_renames(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let ben = server.user("ben").await;
    let cat = server.user("cat").await;
    let dan = server.user("dan").await;
    let eve = server.user("eve").await;
    let room = server.room(&ann, 8).await;
    for u in [&ben, &cat, &dan, &eve] {
        server.join(u, &room).await;
    }
    assert_eq!(
        set_role(&server, &ann, &room, &ben, "admin").await.0,
        StatusCode::OK
    );
    assert_eq!(
        set_role(&server, &ann, &room, &cat, "admin").await.0,
        StatusCode::OK
    );

    // Role changes: the owner's alone, never their own, never to owner.
    let (status, body) = set_role(&server, &ben, &room, &dan, "admin").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (status, body) = set_role(&server, &ann, &room, &ann, "member").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );
    let (status, body) = set_role(&server, &ann, &room, &dan, "owner").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["fields"]["role"].is_string(), "{body}");
    let (status, body) = set_role(&server, &ann, &room, &dan, "boss").await;
    assert_eq!(status.as_u16() / 100, 4, "{body}");
    assert!(body["error"]["code"].is_string(), "{body}");
    let stranger = server.user("stranger").await;
    let (status, _) = set_role(&server, &ann, &room, &stranger, "admin").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Removing.
    assert_eq!(
        remove(&server, &dan, &room, &eve).await,
        StatusCode::FORBIDDEN,
        "a member"
    );
    assert_eq!(
        remove(&server, &ben, &room, &ann).await,
        StatusCode::FORBIDDEN,
        "the owner"
    );
    assert_eq!(
        remove(&server, &ben, &room, &cat).await,
        StatusCode::FORBIDDEN,
        "an admin, by an admin"
    );
    assert_eq!(
        remove(&server, &ben, &room, &stranger).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        remove(&server, &ben, &room, &eve).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        remove(&server, &ben, &room, &eve).await,
        StatusCode::NOT_FOUND,
        "gone already"
    );
    assert_eq!(
        remove(&server, &ann, &room, &cat).await,
        StatusCode::NO_CONTENT,
        "the owner removes admins"
    );
    assert_eq!(
        server
            .get(&format!("/api/rooms/{room}"), Some(&cat.token))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    // Yourself is leaving.
    assert_eq!(
        remove(&server, &dan, &room, &dan).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        roles(&server, &ann, &room).await,
        pairs(&[("ann", "owner"), ("ben", "admin")])
    );
    let (status, made_member) = set_role(&server, &ann, &room, &ben, "member").await;
    assert_eq!(
        (status, &made_member["role"]),
        (StatusCode::OK, &json!("member"))
    );
    assert_eq!(
        set_role(&server, &ann, &room, &ben, "admin").await.0,
        StatusCode::OK
    );

    // Renaming and the call's capacity: admins, validated as at creation.
    let path = format!("/api/rooms/{room}");
    server.join(&dan, &room).await;
    let (status, _) = request(
        &server,
        Method::PATCH,
        &path,
        &dan,
        json!({"title": "Mine"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, renamed) = request(
        &server,
        Method::PATCH,
        &path,
        &ben,
        json!({"title": "  Retro "}),
    )
    .await;
    assert_eq!(
        (status, &renamed["title"]),
        (StatusCode::OK, &json!("Retro")),
        "{renamed}"
    );
    assert_eq!(renamed["max_participants"], 8, "absent fields stay");
    let (status, resized) = request(
        &server,
        Method::PATCH,
        &path,
        &ann,
        json!({"max_participants": 16}),
    )
    .await;
    assert_eq!(
        (status, &resized["max_participants"], &resized["title"]),
        (StatusCode::OK, &json!(16), &json!("Retro"))
    );
    for (body, field) in [
        (json!({"title": ""}), "title"),
        (json!({"title": "x".repeat(101)}), "title"),
        (json!({"max_participants": 1}), "max_participants"),
        (json!({"max_participants": 17}), "max_participants"),
    ] {
        let (status, resp) = request(&server, Method::PATCH, &path, &ann, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            resp["error"]["fields"][field].is_string(),
            "{body} -> {resp}"
        );
    }
    let (status, same) = request(&server, Method::PATCH, &path, &ann, json!({})).await;
    assert_eq!((status, &same["title"]), (StatusCode::OK, &json!("Retro")));
    assert_eq!(summary(&server, &dan, &room).await["title"], "Retro");

    // Deleting is the owner's alone.
    assert_eq!(
        server.delete(&path, Some(&ben.token)).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        server.delete(&path, Some(&ann.token)).await.0,
        StatusCode::NO_CONTENT
    );
    server.stop().await;
}

/// The owner may leave: the oldest admin takes over, else the oldest member; the last
/// one out deletes the group.
async fn the_owner_leaving_hands_the_group_on(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let ben = server.user("ben").await;
    let cat = server.user("cat").await;
    let dan = server.user("dan").await;
    let eve = server.user("eve").await;
    let room = server.room(&ann, 8).await;
    for u in [&ben, &cat, &dan, &eve] {
        next_second().await;
        assert_eq!(server.join(u, &room).await.0, StatusCode::OK);
    }
    set_role(&server, &ann, &room, &dan, "admin").await;
    set_role(&server, &ann, &room, &cat, "admin").await;

    let owner_of = |detail: Value| detail["owner_id"].as_str().unwrap().to_owned();
    assert_eq!(leave(&server, &ann, &room).await, StatusCode::NO_CONTENT);
    assert_eq!(
        roles(&server, &ben, &room).await,
        pairs(&[
            ("cat", "owner"),
            ("ben", "member"),
            ("dan", "admin"),
            ("eve", "member")
        ]),
        "the oldest admin, though ben is older"
    );
    let detail = server
        .get(&format!("/api/rooms/{room}"), Some(&ben.token))
        .await
        .1;
    assert_eq!(owner_of(detail.clone()), cat.id);
    assert_eq!(detail["member_count"], 4);
    assert_eq!(summary(&server, &cat, &room).await["my_role"], "owner");

    assert_eq!(
        remove(&server, &cat, &room, &cat).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        roles(&server, &ben, &room).await,
        pairs(&[("dan", "owner"), ("ben", "member"), ("eve", "member")])
    );
    assert_eq!(leave(&server, &dan, &room).await, StatusCode::NO_CONTENT);
    assert_eq!(
        roles(&server, &eve, &room).await,
        pairs(&[("ben", "owner"), ("eve", "member")]),
        "no admin left: the oldest member"
    );
    let detail = server
        .get(&format!("/api/rooms/{room}"), Some(&eve.token))
        .await
        .1;
    assert_eq!(owner_of(detail), ben.id);
    // The new owner manages the group.
    assert_eq!(
        set_role(&server, &ben, &room, &eve, "admin").await.0,
        StatusCode::OK
    );

    assert_eq!(leave(&server, &ben, &room).await, StatusCode::NO_CONTENT);
    assert_eq!(
        roles(&server, &eve, &room).await,
        pairs(&[("eve", "owner")])
    );
    assert_eq!(leave(&server, &eve, &room).await, StatusCode::NO_CONTENT);
    for u in [&ann, &eve] {
        assert_eq!(
            server.join(u, &room).await.0,
            StatusCode::NOT_FOUND,
            "the last one out deleted it"
        );
        assert!(room_list(&server, u).await.is_empty());
    }
    server.stop().await;
}

async fn muting_is_my_own_setting(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let ben = server.user("ben").await;
    let room = server.room(&ann, 8).await;
    server.join(&ben, &room).await;
    let path = format!("/api/rooms/{room}/settings");
    let ben_phone = server.sign_in("ben").await;
    let mut phone = server.ws(&ben_phone).await;
    phone.drain().await;

    let (status, muted) =
        request(&server, Method::PATCH, &path, &ben, json!({"muted": true})).await;
    assert_eq!(status, StatusCode::OK, "{muted}");
    let msg = phone
        .recv_until(|m| matches!(m, ServerMsg::RoomSettings { .. }))
        .await;
    assert!(
        matches!(msg, ServerMsg::RoomSettings { muted: true, .. }),
        "Ben's other devices learn of it: {msg:?}"
    );
    assert_eq!(
        (&muted["id"], &muted["muted"], &muted["my_role"]),
        (&json!(room), &json!(true), &json!("member"))
    );
    assert_eq!(summary(&server, &ben, &room).await["muted"], true);
    assert_eq!(
        summary(&server, &ann, &room).await["muted"],
        false,
        "mine alone"
    );
    let (_, again) = request(&server, Method::PATCH, &path, &ben, json!({"muted": true})).await;
    assert_eq!(again["muted"], true);
    let (_, unchanged) = request(&server, Method::PATCH, &path, &ben, json!({})).await;
    assert_eq!(unchanged["muted"], true);
    // Muted rooms still count unread messages.
    say(&server, &ann, &room, "psst").await;
    assert_eq!(summary(&server, &ben, &room).await["unread_count"], 1);
    let (_, unmuted) = request(&server, Method::PATCH, &path, &ben, json!({"muted": false})).await;
    assert_eq!(unmuted["muted"], false);

    let (status, body) =
        request(&server, Method::PATCH, &path, &ben, json!({"muted": "yes"})).await;
    assert_eq!(status.as_u16() / 100, 4, "{body}");
    assert!(body["error"]["code"].is_string());
    server.stop().await;
}

/// Every membership change reaches the members' WebSockets: `room_added` for whoever
/// came in, `room_removed` (and out of the call) for whoever went, `room_updated` for
/// the rest.
async fn membership_changes_reach_websockets(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let ben = server.user("ben").await;
    let cat = server.user("cat").await;
    let dan = server.user("dan").await;
    server.befriend(&ann, &ben).await;
    let ben_laptop = server.sign_in("ben").await;
    let mut a = server.ws(&ann).await;
    let mut b1 = server.ws(&ben).await;
    let mut b2 = server.ws(&ben_laptop).await;
    let mut c = server.ws(&cat).await;
    let mut d = server.ws(&dan).await;

    let room = server.room(&ann, 8).await;
    a.recv_until(|m| is_room_added(m, &room)).await;

    // Added by an admin: both of ben's devices get the room as his list shows it.
    assert_eq!(add(&server, &ann, &room, &ben).await.0, StatusCode::CREATED);
    for ws in [&mut b1, &mut b2] {
        let ServerMsg::RoomAdded { room: added } = ws.recv_until(|m| is_room_added(m, &room)).await
        else {
            unreachable!()
        };
        assert_eq!(added.my_role, RoomRole::Member);
        assert_eq!(added.room.kind, RoomKind::Group);
        assert_eq!(added.room.member_count, 2);
        assert_eq!(added.other_presence, None::<PresenceStatus>);
    }
    assert_eq!(next_update(&mut a, &room).await.member_count, 2);

    // Joining by id and by invite.
    assert_eq!(server.join(&cat, &room).await.0, StatusCode::OK);
    c.recv_until(|m| is_room_added(m, &room)).await;
    for ws in [&mut a, &mut b1, &mut b2] {
        assert_eq!(next_update(ws, &room).await.member_count, 3);
    }
    let token = invite(&server, &cat, &room, 1).await;
    assert_eq!(accept(&server, &dan, &token).await.0, StatusCode::OK);
    d.recv_until(|m| is_room_added(m, &room)).await;
    for ws in [&mut a, &mut b1, &mut b2, &mut c] {
        assert_eq!(next_update(ws, &room).await.member_count, 4);
    }

    // Renamed.
    let path = format!("/api/rooms/{room}");
    request(
        &server,
        Method::PATCH,
        &path,
        &ann,
        json!({"title": "Retro"}),
    )
    .await;
    for ws in [&mut a, &mut b1, &mut b2, &mut c, &mut d] {
        assert_eq!(next_update(ws, &room).await.title, "Retro");
    }

    // Removed while in the call: out of the call on that device, the room gone on all.
    b1.send(&ClientMsg::JoinCall {
        room_id: room.parse().unwrap(),
        video: true,
    })
    .await;
    b1.recv_until(|m| matches!(m, ServerMsg::CallJoined { .. }))
        .await;
    a.send(&ClientMsg::JoinCall {
        room_id: room.parse().unwrap(),
        video: true,
    })
    .await;
    a.recv_until(|m| matches!(m, ServerMsg::CallJoined { .. }))
        .await;
    assert_eq!(
        remove(&server, &ann, &room, &ben).await,
        StatusCode::NO_CONTENT
    );
    b1.recv_until(|m| matches!(m, ServerMsg::CallLeft { .. }))
        .await;
    b1.recv_until(|m| is_room_removed(m, &room)).await;
    b2.recv_until(|m| is_room_removed(m, &room)).await;
    a.recv_until(|m| matches!(m, ServerMsg::ParticipantLeft { .. }))
        .await;
    for ws in [&mut a, &mut c, &mut d] {
        assert_eq!(next_update(ws, &room).await.member_count, 3);
    }

    // A role changes: the members hear of it (their member lists change).
    assert_eq!(
        set_role(&server, &ann, &room, &cat, "admin").await.0,
        StatusCode::OK
    );
    for ws in [&mut a, &mut c, &mut d] {
        next_update(ws, &room).await;
    }

    // The owner leaves: the others learn the new owner (the admin).
    assert_eq!(leave(&server, &ann, &room).await, StatusCode::NO_CONTENT);
    a.recv_until(|m| matches!(m, ServerMsg::CallLeft { .. }))
        .await;
    a.recv_until(|m| is_room_removed(m, &room)).await;
    for ws in [&mut c, &mut d] {
        let updated = next_update(ws, &room).await;
        assert_eq!(updated.member_count, 2);
        assert_eq!(updated.owner_id.to_string(), cat.id);
    }

    // Deleted: everyone still in it hears it, and the call ends.
    d.send(&ClientMsg::JoinCall {
        room_id: room.parse().unwrap(),
        video: false,
    })
    .await;
    d.recv_until(|m| matches!(m, ServerMsg::CallJoined { .. }))
        .await;
    assert_eq!(
        server.delete(&path, Some(&cat.token)).await.0,
        StatusCode::NO_CONTENT
    );
    d.recv_until(|m| matches!(m, ServerMsg::CallLeft { .. }))
        .await;
    for ws in [&mut c, &mut d] {
        ws.recv_until(|m| is_room_removed(m, &room)).await;
    }
    // Ben, gone earlier, hears nothing more of it.
    while let Ok(msg) = tokio::time::timeout(Duration::from_millis(300), b2.recv()).await {
        assert!(
            !(is_room_added(&msg, &room)
                || is_room_updated(&msg, &room)
                || is_room_removed(&msg, &room)),
            "{msg:?}"
        );
    }
    server.stop().await;
}

/// Someone outside a group gets 404 from every room endpoint, exactly as for a room
/// that does not exist.
async fn non_members_learn_nothing(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let eve = server.user("eve").await;
    let room = server.room(&ann, 8).await;
    let nowhere = uuid::Uuid::new_v4().to_string();
    for id in [room.as_str(), nowhere.as_str()] {
        for (method, path, body) in [
            (Method::GET, format!("/api/rooms/{id}"), json!(null)),
            (
                Method::PATCH,
                format!("/api/rooms/{id}"),
                json!({"title": "Mine"}),
            ),
            (Method::DELETE, format!("/api/rooms/{id}"), json!(null)),
            (Method::POST, format!("/api/rooms/{id}/leave"), json!({})),
            (
                Method::POST,
                format!("/api/rooms/{id}/members"),
                json!({"user_id": eve.id}),
            ),
            (
                Method::DELETE,
                format!("/api/rooms/{id}/members/{}", ann.id),
                json!(null),
            ),
            (
                Method::DELETE,
                format!("/api/rooms/{id}/members/{}", eve.id),
                json!(null),
            ),
            (
                Method::PATCH,
                format!("/api/rooms/{id}/members/{}", ann.id),
                json!({"role": "member"}),
            ),
            (
                Method::PATCH,
                format!("/api/rooms/{id}/settings"),
                json!({"muted": true}),
            ),
            (Method::POST, format!("/api/rooms/{id}/invites"), json!({})),
        ] {
            let body = (!body.is_null()).then_some(body);
            let (status, resp) = server
                .request(method.clone(), &path, Some(&eve.token), body)
                .await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {resp}");
            assert_eq!(resp["error"]["code"], "not_found", "{method} {path}");
        }
    }
    assert!(room_list(&server, &eve).await.is_empty());
    assert_eq!(
        roles(&server, &ann, &room).await,
        pairs(&[("ann", "owner")]),
        "nothing changed"
    );
    server.stop().await;
}

/// Wrong types, missing fields, malformed ids and bodies: JSON errors, never a 500.
async fn bad_input_gets_json_errors(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let room = server.room(&ann, 8).await;
    for (method, path, body) in [
        (
            Method::POST,
            format!("/api/rooms/{room}/members"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/api/rooms/{room}/members"),
            Some(json!({"user_id": "nope"})),
        ),
        (
            Method::POST,
            format!("/api/rooms/{room}/members"),
            Some(json!({"user_id": 7})),
        ),
        (Method::POST, format!("/api/rooms/{room}/members"), None),
        (
            Method::PATCH,
            format!("/api/rooms/{room}"),
            Some(json!({"title": 5})),
        ),
        (
            Method::PATCH,
            format!("/api/rooms/{room}"),
            Some(json!({"max_participants": -1})),
        ),
        (
            Method::PATCH,
            format!("/api/rooms/{room}"),
            Some(json!([1, 2])),
        ),
        (
            Method::PATCH,
            format!("/api/rooms/{room}/members/{}", ann.id),
            Some(json!({})),
        ),
        (
            Method::PATCH,
            format!("/api/rooms/{room}/members/{}", ann.id),
            Some(json!({"role": null})),
        ),
        (
            Method::PATCH,
            format!("/api/rooms/{room}/settings"),
            Some(json!({"muted": 1})),
        ),
        (
            Method::PATCH,
            "/api/rooms/not-a-room".to_owned(),
            Some(json!({"title": "x"})),
        ),
        (
            Method::DELETE,
            format!("/api/rooms/{room}/members/not-a-user"),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/rooms/{room}/members/not-a-user"),
            Some(json!({"role": "admin"})),
        ),
        (
            Method::PATCH,
            "/api/rooms/not-a-room/settings".to_owned(),
            Some(json!({"muted": true})),
        ),
    ] {
        let (status, resp) = server
            .request(method.clone(), &path, Some(&ann.token), body.clone())
            .await;
        assert!(
            status.is_client_error(),
            "{method} {path} {body:?}: {status} {resp}"
        );
        assert!(
            resp["error"]["code"].is_string(),
            "{method} {path} {body:?}: {resp}"
        );
    }
    // Not JSON at all.
    let resp = server
        .http
        .patch(format!("{}/api/rooms/{room}", server.base))
        .bearer_auth(&ann.token)
        .header("content-type", "application/json")
        .body("{title:")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error());
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"]["code"].is_string());
    // Signed out: 401, everywhere.
    let (status, _) = server
        .request(
            Method::PATCH,
            &format!("/api/rooms/{room}/settings"),
            None,
            Some(json!({"muted": true})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The new endpoints are in the API document.
    let (_, doc) = server.get("/api/openapi.json", None).await;
    for path in [
        "/api/rooms/{id}/members",
        "/api/rooms/{id}/members/{user_id}",
        "/api/rooms/{id}/settings",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is not documented");
    }
    assert!(doc["paths"]["/api/rooms/{id}"].get("patch").is_some());
    server.stop().await;
}

/// Members (the owner and admins among them) leaving all at once: no errors, one owner
/// at every step, and the last one out deletes the group.
async fn everyone_leaving_at_once(db: Db) {
    let server = TestServer::start(db).await;
    let owner = server.user("owner").await;
    let room = server.room(&owner, 8).await;
    let mut users = vec![owner.clone()];
    for i in 0..7 {
        let user = server.user(&format!("user{i}")).await;
        server.join(&user, &room).await;
        if i % 2 == 0 {
            set_role(&server, &owner, &room, &user, "admin").await;
        }
        users.push(user);
    }
    // Half go first, all at once: the rest still have exactly one owner.
    let (first, rest) = users.split_at(4);
    let statuses =
        futures_util::future::join_all(first.iter().map(|u| leave(&server, u, &room))).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::NO_CONTENT),
        "{statuses:?}"
    );
    let members = roles(&server, &rest[0], &room).await;
    assert_eq!(members.len(), 4, "{members:?}");
    assert_eq!(
        members.iter().filter(|(_, r)| r == "owner").count(),
        1,
        "{members:?}"
    );
    let (_, detail) = server
        .get(&format!("/api/rooms/{room}"), Some(&rest[0].token))
        .await;
    assert_eq!(detail["member_count"], 4);
    let owner_name = &members[0].0;
    let owner_id = rest
        .iter()
        .find(|u| &u.name == owner_name)
        .unwrap()
        .id
        .clone();
    assert_eq!(detail["owner_id"], owner_id.as_str());

    let statuses =
        futures_util::future::join_all(rest.iter().map(|u| leave(&server, u, &room))).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::NO_CONTENT),
        "{statuses:?}"
    );
    for u in &users {
        assert!(room_list(&server, u).await.is_empty());
    }
    assert_eq!(server.join(&users[0], &room).await.0, StatusCode::NOT_FOUND);
    server.stop().await;
}
