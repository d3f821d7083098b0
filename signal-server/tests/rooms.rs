//! Rooms, membership and invites over real HTTP, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Db, TestServer};
use reqwest::StatusCode;
use serde_json::json;

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
