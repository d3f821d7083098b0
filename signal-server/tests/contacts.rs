//! Finding people, contact requests, contacts, blocks and direct rooms, over real HTTP and
//! real WebSockets, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Db, TestServer, TestUser, Ws};
use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared::UserId;
use shared::api::{PresenceStatus, RoomKind};
use shared::signal::ServerMsg;

on_both_databases!(
    search_finds_usernames_then_display_names,
    search_text_is_checked_and_taken_literally,
    search_hides_blocks_both_ways,
    search_returns_at_most_twenty,
    a_request_accepted_makes_contacts_on_both_sides,
    crossing_requests_become_contacts_at_once,
    crossing_requests_at_the_same_moment_make_one_contact,
    a_repeated_request_is_the_same_request,
    declining_and_cancelling,
    only_the_right_side_may_answer_a_request,
    at_most_twenty_pending_requests,
    request_input_is_checked,
    a_blocked_users_request_looks_pending_to_them,
    blocking_silences_a_pending_request_and_drops_your_own,
    blocking_ends_the_contact_and_unblocking_does_not_restore_it,
    block_input_is_checked,
    removing_a_contact,
    one_direct_room_per_pair_under_concurrent_opening,
    direct_rooms_are_for_contacts_only,
    bad_input_gets_the_json_error_shape,
);

fn uid(user: &TestUser) -> UserId {
    user.id.parse().unwrap()
}

async fn put(server: &TestServer, path: &str, token: &str) -> (StatusCode, Value) {
    server.request(Method::PUT, path, Some(token), None).await
}

async fn set_display_name(server: &TestServer, user: &TestUser, name: &str) {
    let (status, body) = server
        .request(
            Method::PATCH,
            "/api/users/me",
            Some(&user.token),
            Some(json!({ "display_name": name })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn search(server: &TestServer, user: &TestUser, q: &str) -> Vec<String> {
    let (status, body) = server
        .get(
            &format!("/api/users/search?q={}", urlencode(q)),
            Some(&user.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{q:?}: {body}");
    body.as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn ask(server: &TestServer, from: &TestUser, to: &TestUser) -> (StatusCode, Value) {
    server
        .post(
            "/api/contacts/requests",
            Some(&from.token),
            json!({ "user_id": to.id }),
        )
        .await
}

async fn requests(server: &TestServer, user: &TestUser) -> (Vec<String>, Vec<String>) {
    let (status, body) = server
        .get("/api/contacts/requests", Some(&user.token))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ids = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    (ids(&body["incoming"]), ids(&body["outgoing"]))
}

async fn contacts(server: &TestServer, user: &TestUser) -> Vec<Value> {
    let (status, body) = server.get("/api/contacts", Some(&user.token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().unwrap().clone()
}

fn contact_names(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|c| c["user"]["username"].as_str().unwrap().to_owned())
        .collect()
}

/// `a` asks, `b` accepts.
async fn befriend(server: &TestServer, a: &TestUser, b: &TestUser) {
    let (status, body) = ask(server, a, b).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["request"]["id"].as_str().unwrap();
    let (status, body) = server
        .post(
            &format!("/api/contacts/requests/{id}/accept"),
            Some(&b.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// The raw bytes of a response, to compare two refusals exactly.
async fn raw_post(server: &TestServer, path: &str, token: &str) -> (StatusCode, Vec<u8>) {
    let resp = server
        .http
        .post(format!("{}{path}", server.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.bytes().await.unwrap().to_vec())
}

fn assert_error_shape(status: StatusCode, body: &Value, what: &str) {
    assert!(status.is_client_error(), "{what}: {status} {body}");
    assert!(body["error"]["code"].is_string(), "{what}: {body}");
    assert!(body["error"]["message"].is_string(), "{what}: {body}");
}

/// The next message that is not the echo of one's own contact request (the sender's
/// devices hear of the request too, for their outgoing list).
async fn recv_other(ws: &mut Ws) -> ServerMsg {
    ws.recv_until(|m| !matches!(m, ServerMsg::ContactRequest { .. }))
        .await
}

async fn expect_contact_added(ws: &mut Ws, other: &TestUser) {
    match recv_other(ws).await {
        ServerMsg::ContactAdded { contact } => assert_eq!(contact.user.id, uid(other)),
        other => panic!("expected contact_added, got {other:?}"),
    }
}

async fn expect_presence(ws: &mut Ws, of: &TestUser, status: PresenceStatus) {
    match ws.recv().await {
        ServerMsg::Presence {
            user_id,
            status: got,
        } => {
            assert_eq!(user_id, uid(of));
            assert_eq!(got, status);
        }
        other => panic!("expected presence, got {other:?}"),
    }
}

async fn search_finds_usernames_then_display_names(db: Db) {
    let server = TestServer::start(db).await;
    let zed = server.user("zed").await;
    for name in ["ann", "annie", "anna", "bob", "aaron", "carl"] {
        server.register(name).await;
    }
    let aaron = server.sign_in("aaron").await;
    set_display_name(&server, &aaron, "Joanne").await;
    let bob = server.sign_in("bob").await;
    set_display_name(&server, &bob, "Bob ANNAN").await;

    // The exact username first, then the username prefixes, then display names (any
    // case), each group by username: aaron sorts before anna but matched by name only.
    assert_eq!(
        search(&server, &zed, "ann").await,
        ["ann", "anna", "annie", "aaron", "bob"]
    );
    assert_eq!(
        search(&server, &zed, "  ANN ").await,
        ["ann", "anna", "annie", "aaron", "bob"],
        "trimmed, and usernames are compared lowercase"
    );
    assert_eq!(search(&server, &zed, "anni").await, ["annie"]);
    assert_eq!(
        search(&server, &zed, "nn").await,
        ["aaron", "bob"],
        "usernames match by prefix only, display names anywhere"
    );
    assert!(search(&server, &zed, "zzz").await.is_empty());
    assert!(
        search(&server, &zed, "ze").await.is_empty(),
        "never yourself"
    );

    let (status, body) = server.get("/api/users/search?q=ann", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");
    server.stop().await;
}

async fn search_text_is_checked_and_taken_literally(db: Db) {
    let server = TestServer::start(db).await;
    let zed = server.user("zed").await;
    for name in ["a_b", "axb", "dee", "eve"] {
        server.register(name).await;
    }
    set_display_name(&server, &server.sign_in("dee").await, "100% sure").await;
    set_display_name(&server, &server.sign_in("eve").await, "1000 sure").await;

    assert_eq!(
        search(&server, &zed, "a_").await,
        ["a_b"],
        "_ is a character, not a wildcard"
    );
    assert_eq!(
        search(&server, &zed, "0%").await,
        ["dee"],
        "% is a character, not a wildcard"
    );

    let long = "x".repeat(65);
    for q in ["", "a", "  a  ", long.as_str()] {
        let (status, body) = server
            .get(
                &format!("/api/users/search?q={}", urlencode(q)),
                Some(&zed.token),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{q:?}: {body}");
        assert!(body["error"]["fields"]["q"].is_string(), "{q:?}: {body}");
    }
    let (status, body) = server.get("/api/users/search", Some(&zed.token)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["fields"]["q"].is_string(),
        "no q at all: {body}"
    );
    assert!(search(&server, &zed, &"x".repeat(64)).await.is_empty());
    server.stop().await;
}

async fn search_hides_blocks_both_ways(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    server.register("bobby").await;
    assert_eq!(search(&server, &ann, "bo").await, ["bob", "bobby"]);

    // Ann blocks Bob: she no longer finds him, and he no longer finds her.
    let (status, _) = put(&server, &format!("/api/blocks/{}", bob.id), &ann.token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(search(&server, &ann, "bo").await, ["bobby"]);
    assert!(search(&server, &bob, "an").await.is_empty());

    // Unblocked, they find each other again.
    let (status, _) = server
        .delete(&format!("/api/blocks/{}", bob.id), Some(&ann.token))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(search(&server, &ann, "bo").await, ["bob", "bobby"]);
    assert_eq!(search(&server, &bob, "an").await, ["ann"]);
    server.stop().await;
}

async fn search_returns_at_most_twenty(db: Db) {
    let server = TestServer::start(db).await;
    let zed = server.user("zed").await;
    let mut names: Vec<String> = (1..=22).map(|i| format!("sam{i:02}")).collect();
    names.push("sam".into());
    join_all(names.iter().map(|n| server.register(n))).await;

    let found = search(&server, &zed, "sam").await;
    assert_eq!(found.len(), 20);
    assert_eq!(found[0], "sam", "the exact username first");
    let expected: Vec<String> = (1..=19).map(|i| format!("sam{i:02}")).collect();
    assert_eq!(found[1..], expected[..]);
    server.stop().await;
}

async fn a_request_accepted_makes_contacts_on_both_sides(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let ben = server.user("ben").await;
    let mut a = server.ws(&ann).await;
    let mut b = server.ws(&ben).await;

    // Ann asks Ben; Ben hears of it at once.
    let (status, body) = ask(&server, &ann, &ben).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "pending");
    let request_id = body["request"]["id"].as_str().unwrap().to_owned();
    assert_eq!(body["request"]["from"]["id"], ann.id.as_str());
    assert_eq!(body["request"]["to"]["id"], ben.id.as_str());
    match b.recv().await {
        ServerMsg::ContactRequest { request } => {
            assert_eq!(request.id.to_string(), request_id);
            assert_eq!(request.from.username, "ann");
        }
        other => panic!("expected contact_request, got {other:?}"),
    }
    assert_eq!(
        requests(&server, &ann).await,
        (vec![], vec![request_id.clone()])
    );
    assert_eq!(
        requests(&server, &ben).await,
        (vec![request_id.clone()], vec![])
    );

    // Ben accepts: each gets the other as a new contact, then their presence.
    let (status, contact) = server
        .post(
            &format!("/api/contacts/requests/{request_id}/accept"),
            Some(&ben.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{contact}");
    assert_eq!(contact["user"]["id"], ann.id.as_str());
    assert_eq!(contact["presence"], "online");
    expect_contact_added(&mut a, &ben).await;
    expect_contact_added(&mut b, &ann).await;
    expect_presence(&mut a, &ben, PresenceStatus::Online).await;
    expect_presence(&mut b, &ann, PresenceStatus::Online).await;

    let of_ann = contacts(&server, &ann).await;
    assert_eq!(contact_names(&of_ann), ["ben"]);
    assert_eq!(of_ann[0]["presence"], "online");
    assert!(of_ann[0]["direct_room_id"].is_null());
    assert_eq!(contact_names(&contacts(&server, &ben).await), ["ann"]);
    assert_eq!(requests(&server, &ann).await, (vec![], vec![]));
    assert_eq!(requests(&server, &ben).await, (vec![], vec![]));

    // Presence in the list is live: Ben goes offline.
    b.stream.close(None).await.unwrap();
    expect_presence(&mut a, &ben, PresenceStatus::Offline).await;
    assert_eq!(contacts(&server, &ann).await[0]["presence"], "offline");

    // Asking a contact again, or accepting twice, is refused.
    let (status, body) = ask(&server, &ann, &ben).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "conflict");
    let (status, body) = server
        .post(
            &format!("/api/contacts/requests/{request_id}/accept"),
            Some(&ben.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    server.stop().await;
}

async fn crossing_requests_become_contacts_at_once(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let ben = server.user("ben").await;
    let (status, _) = ask(&server, &ann, &ben).await;
    assert_eq!(status, StatusCode::CREATED);
    let mut a = server.ws(&ann).await;
    let mut b = server.ws(&ben).await;

    // Ben asks Ann, who had already asked him: they are contacts at once.
    let (status, body) = ask(&server, &ben, &ann).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "accepted");
    assert!(body["request"].is_null());
    assert_eq!(body["contact"]["user"]["id"], ann.id.as_str());
    expect_contact_added(&mut a, &ben).await;
    expect_contact_added(&mut b, &ann).await;
    expect_presence(&mut a, &ben, PresenceStatus::Online).await;
    expect_presence(&mut b, &ann, PresenceStatus::Online).await;

    assert_eq!(contact_names(&contacts(&server, &ann).await), ["ben"]);
    assert_eq!(contact_names(&contacts(&server, &ben).await), ["ann"]);
    assert_eq!(requests(&server, &ann).await, (vec![], vec![]));
    assert_eq!(requests(&server, &ben).await, (vec![], vec![]));
    server.stop().await;
}

async fn crossing_requests_at_the_same_moment_make_one_contact(db: Db) {
    let server = TestServer::start(db).await;
    for round in 0..5 {
        let ann = server.user(&format!("ann{round}")).await;
        let ben = server.user(&format!("ben{round}")).await;
        // Each asks the other at once: one request is stored, the other accepts it.
        let (first, second) = tokio::join!(ask(&server, &ann, &ben), ask(&server, &ben, &ann));
        let mut statuses = [first.0, second.0];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::OK, StatusCode::CREATED],
            "{first:?} {second:?}"
        );
        let accepted = if first.0 == StatusCode::OK {
            &first.1
        } else {
            &second.1
        };
        assert_eq!(accepted["status"], "accepted");
        assert_eq!(
            contact_names(&contacts(&server, &ann).await),
            [ben.name.as_str()]
        );
        assert_eq!(
            contact_names(&contacts(&server, &ben).await),
            [ann.name.as_str()]
        );
        assert_eq!(requests(&server, &ann).await, (vec![], vec![]));
        assert_eq!(requests(&server, &ben).await, (vec![], vec![]));
    }
    server.stop().await;
}

async fn a_repeated_request_is_the_same_request(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let ben = server.user("ben").await;
    let (status, first) = ask(&server, &ann, &ben).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, again) = ask(&server, &ann, &ben).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a repeat is answered, not stored twice"
    );
    assert_eq!(again["status"], "pending");
    assert_eq!(again["request"], first["request"]);
    let (_, outgoing) = requests(&server, &ann).await;
    assert_eq!(outgoing.len(), 1);
    server.stop().await;
}

async fn declining_and_cancelling(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let ben = server.user("ben").await;
    let mut a = server.ws(&ann).await;
    let mut b = server.ws(&ben).await;

    // Ben declines Ann's request: Ann learns that it is gone.
    let (_, body) = ask(&server, &ann, &ben).await;
    let first = body["request"]["id"].as_str().unwrap().to_owned();
    b.recv_until(|m| matches!(m, ServerMsg::ContactRequest { .. }))
        .await;
    let (status, body) = server
        .post(
            &format!("/api/contacts/requests/{first}/decline"),
            Some(&ben.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    match recv_other(&mut a).await {
        ServerMsg::ContactRequestRemoved { request_id } => {
            assert_eq!(request_id.to_string(), first);
        }
        other => panic!("expected contact_request_removed, got {other:?}"),
    }
    assert_eq!(requests(&server, &ann).await, (vec![], vec![]));
    assert_eq!(requests(&server, &ben).await, (vec![], vec![]));
    assert!(contacts(&server, &ann).await.is_empty());
    b.drain().await;

    // Ann may ask again, then changes her mind: Ben learns that it is gone.
    let (status, body) = ask(&server, &ann, &ben).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let second = body["request"]["id"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    b.recv_until(|m| matches!(m, ServerMsg::ContactRequest { .. }))
        .await;
    let (status, _) = server
        .delete(
            &format!("/api/contacts/requests/{second}"),
            Some(&ann.token),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    match b.recv().await {
        ServerMsg::ContactRequestRemoved { request_id } => {
            assert_eq!(request_id.to_string(), second);
        }
        other => panic!("expected contact_request_removed, got {other:?}"),
    }
    assert_eq!(requests(&server, &ann).await, (vec![], vec![]));
    assert_eq!(requests(&server, &ben).await, (vec![], vec![]));
    let (status, _) = server
        .delete(
            &format!("/api/contacts/requests/{second}"),
            Some(&ann.token),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "already cancelled");
    server.stop().await;
}

async fn only_the_right_side_may_answer_a_request(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let ben = server.user("ben").await;
    let cat = server.user("cat").await;
    let (_, body) = ask(&server, &ann, &ben).await;
    let id = body["request"]["id"].as_str().unwrap().to_owned();

    // The sender cannot accept or decline her own request; nobody else can touch it.
    for (who, action) in [
        (&ann, "accept"),
        (&ann, "decline"),
        (&cat, "accept"),
        (&cat, "decline"),
    ] {
        let (status, body) = server
            .post(
                &format!("/api/contacts/requests/{id}/{action}"),
                Some(&who.token),
                json!({}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "{} {action}: {body}",
            who.name
        );
        assert_eq!(body["error"]["code"], "not_found");
    }
    // Only the sender can cancel it.
    for who in [&ben, &cat] {
        let (status, body) = server
            .delete(&format!("/api/contacts/requests/{id}"), Some(&who.token))
            .await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "{} cancels: {body}",
            who.name
        );
    }
    assert_eq!(requests(&server, &ben).await, (vec![id.clone()], vec![]));

    // Unknown and malformed ids.
    let unknown = uuid::Uuid::new_v4();
    let (status, body) = server
        .post(
            &format!("/api/contacts/requests/{unknown}/accept"),
            Some(&ben.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = server
        .post(
            "/api/contacts/requests/not-an-id/accept",
            Some(&ben.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_error_shape(status, &body, "malformed request id");
    server.stop().await;
}

async fn at_most_twenty_pending_requests(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let names: Vec<String> = (1..=21).map(|i| format!("user{i:02}")).collect();
    let ids: Vec<String> = join_all(names.iter().map(|n| server.register(n)))
        .await
        .into_iter()
        .map(|(status, body)| {
            assert_eq!(status, StatusCode::CREATED, "{body}");
            body["id"].as_str().unwrap().to_owned()
        })
        .collect();
    let ask_id = |id: &str| {
        server.post(
            "/api/contacts/requests",
            Some(&ann.token),
            json!({ "user_id": id }),
        )
    };

    let mut first = String::new();
    for (i, id) in ids[..20].iter().enumerate() {
        let (status, body) = ask_id(id).await;
        assert_eq!(status, StatusCode::CREATED, "request {i}: {body}");
        if i == 0 {
            first = body["request"]["id"].as_str().unwrap().to_owned();
        }
    }
    // The 21st waits for an answer or a cancel.
    let (status, body) = ask_id(&ids[20]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "conflict");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("20"),
        "{body}"
    );
    // A repeat of a pending one is still answered.
    let (status, _) = ask_id(&ids[0]).await;
    assert_eq!(status, StatusCode::OK);

    let (status, _) = server
        .delete(&format!("/api/contacts/requests/{first}"), Some(&ann.token))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = ask_id(&ids[20]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, outgoing) = requests(&server, &ann).await;
    assert_eq!(outgoing.len(), 20);
    server.stop().await;
}

async fn request_input_is_checked(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;

    let (status, body) = ask(&server, &ann, &ann).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["fields"]["user_id"].is_string(), "{body}");

    let (status, body) = server
        .post(
            "/api/contacts/requests",
            Some(&ann.token),
            json!({ "user_id": uuid::Uuid::new_v4() }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "not_found");

    for bad in [
        json!({}),
        json!({ "user_id": "nope" }),
        json!({ "user_id": 5 }),
        json!({ "user_id": null }),
        json!([]),
        json!("ann"),
    ] {
        let (status, body) = server
            .post("/api/contacts/requests", Some(&ann.token), bad.clone())
            .await;
        assert_error_shape(status, &body, &bad.to_string());
    }
    let (status, body) = server
        .post("/api/contacts/requests", None, json!({ "user_id": ann.id }))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    server.stop().await;
}

async fn a_blocked_users_request_looks_pending_to_them(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let ben = server.user("ben").await;
    let (status, _) = put(&server, &format!("/api/blocks/{}", ann.id), &ben.token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let mut a = server.ws(&ann).await;
    let mut b = server.ws(&ben).await;

    // Ann, whom Ben blocks, asks him: to her it is an ordinary pending request...
    let (status, body) = ask(&server, &ann, &ben).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "pending");
    let id = body["request"]["id"].as_str().unwrap().to_owned();
    assert_eq!(requests(&server, &ann).await, (vec![], vec![id.clone()]));
    let (status, again) = ask(&server, &ann, &ben).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["request"]["id"], id.as_str());

    // ...while Ben never hears of it and cannot see or answer it.
    b.expect_silence().await;
    assert_eq!(requests(&server, &ben).await, (vec![], vec![]));
    for action in ["accept", "decline"] {
        let (status, _) = server
            .post(
                &format!("/api/contacts/requests/{id}/{action}"),
                Some(&ben.token),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{action}");
    }

    // Ann cancels it: still nothing reaches Ben; Ann's own devices hear of it.
    let (status, _) = server
        .delete(&format!("/api/contacts/requests/{id}"), Some(&ann.token))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(matches!(
        recv_other(&mut a).await,
        ServerMsg::ContactRequestRemoved { .. }
    ));
    b.expect_silence().await;

    // Ben cannot ask someone he blocks (he would have to unblock her first).
    let (status, body) = ask(&server, &ben, &ann).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    a.expect_silence().await;
    server.stop().await;
}

async fn blocking_silences_a_pending_request_and_drops_your_own(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let ben = server.user("ben").await;
    let cat = server.user("cat").await;
    let (_, body) = ask(&server, &cat, &ben).await;
    let from_cat = body["request"]["id"].as_str().unwrap().to_owned();
    let (_, body) = ask(&server, &ann, &cat).await;
    let to_cat = body["request"]["id"].as_str().unwrap().to_owned();
    let mut a = server.ws(&ann).await;
    let mut b = server.ws(&ben).await;
    let mut c = server.ws(&cat).await;

    // Ben blocks Cat, who had asked him: the request leaves Ben's list, not Cat's.
    let (status, _) = put(&server, &format!("/api/blocks/{}", cat.id), &ben.token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    match b.recv().await {
        ServerMsg::ContactRequestRemoved { request_id } => {
            assert_eq!(request_id.to_string(), from_cat);
        }
        other => panic!("expected contact_request_removed, got {other:?}"),
    }
    c.expect_silence().await;
    assert_eq!(requests(&server, &ben).await, (vec![], vec![]));
    assert_eq!(
        requests(&server, &cat).await,
        (vec![to_cat.clone()], vec![from_cat.clone()])
    );
    // Unblocking does not bring it back to Ben.
    let (status, _) = server
        .delete(&format!("/api/blocks/{}", cat.id), Some(&ben.token))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(requests(&server, &ben).await, (vec![], vec![]));

    // Ann blocks Cat, whom she had asked: her request is gone for both, as if cancelled.
    let (status, _) = put(&server, &format!("/api/blocks/{}", cat.id), &ann.token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for ws in [&mut a, &mut c] {
        match ws.recv().await {
            ServerMsg::ContactRequestRemoved { request_id } => {
                assert_eq!(request_id.to_string(), to_cat);
            }
            other => panic!("expected contact_request_removed, got {other:?}"),
        }
    }
    assert_eq!(requests(&server, &ann).await, (vec![], vec![]));
    assert_eq!(requests(&server, &cat).await, (vec![], vec![from_cat]));
    server.stop().await;
}

async fn blocking_ends_the_contact_and_unblocking_does_not_restore_it(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let ben = server.user("ben").await;
    befriend(&server, &ann, &ben).await;
    let mut a = server.ws(&ann).await;
    let mut b = server.ws(&ben).await;
    a.drain().await;
    b.drain().await;

    // Ann blocks Ben: the contact ends for both, and each now sees the other offline.
    let (status, body) = put(&server, &format!("/api/blocks/{}", ben.id), &ann.token).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    for (ws, other) in [(&mut a, &ben), (&mut b, &ann)] {
        match ws.recv().await {
            ServerMsg::ContactRemoved { user_id } => assert_eq!(user_id, uid(other)),
            msg => panic!("expected contact_removed, got {msg:?}"),
        }
        expect_presence(ws, other, PresenceStatus::Offline).await;
    }
    assert!(contacts(&server, &ann).await.is_empty());
    assert!(contacts(&server, &ben).await.is_empty());
    let (status, blocks) = server.get("/api/blocks", Some(&ann.token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(blocks.as_array().unwrap().len(), 1);
    assert_eq!(blocks[0]["user"]["id"], ben.id.as_str());
    assert!(blocks[0]["since"].is_string());
    let (_, blocks) = server.get("/api/blocks", Some(&ben.token)).await;
    assert_eq!(blocks, json!([]), "Ben does not block anyone");

    // Blocking again changes nothing and tells nobody anything.
    let (status, _) = put(&server, &format!("/api/blocks/{}", ben.id), &ann.token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    a.expect_silence().await;
    b.expect_silence().await;

    // Unblocking lifts the block, but they are not contacts again.
    let (status, _) = server
        .delete(&format!("/api/blocks/{}", ben.id), Some(&ann.token))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, blocks) = server.get("/api/blocks", Some(&ann.token)).await;
    assert_eq!(blocks, json!([]));
    assert!(contacts(&server, &ann).await.is_empty());
    assert!(contacts(&server, &ben).await.is_empty());
    a.expect_silence().await;
    b.expect_silence().await;
    let (status, _) = server
        .delete(&format!("/api/blocks/{}", ben.id), Some(&ann.token))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "unblocking is idempotent");

    // They can become contacts again the usual way.
    befriend(&server, &ben, &ann).await;
    assert_eq!(contact_names(&contacts(&server, &ann).await), ["ben"]);
    server.stop().await;
}

async fn block_input_is_checked(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let (status, body) = put(&server, &format!("/api/blocks/{}", ann.id), &ann.token).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["fields"]["user_id"].is_string(), "{body}");
    let unknown = uuid::Uuid::new_v4();
    let (status, body) = put(&server, &format!("/api/blocks/{unknown}"), &ann.token).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    let (status, body) = server
        .delete(&format!("/api/blocks/{unknown}"), Some(&ann.token))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = put(&server, "/api/blocks/xyz", &ann.token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_error_shape(status, &body, "malformed user id");
    let (status, body) = server
        .request(Method::PUT, &format!("/api/blocks/{}", ann.id), None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    server.stop().await;
}

async fn removing_a_contact(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let ben = server.user("ben").await;
    let cat = server.user("cat").await;
    befriend(&server, &ann, &ben).await;
    befriend(&server, &ann, &cat).await;
    assert_eq!(
        contact_names(&contacts(&server, &ann).await),
        ["ben", "cat"]
    );
    let mut a = server.ws(&ann).await;
    let mut b = server.ws(&ben).await;
    a.drain().await;
    b.drain().await;

    // Ann removes Ben: both hear of it; Cat stays.
    let (status, _) = server
        .delete(&format!("/api/contacts/{}", ben.id), Some(&ann.token))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for (ws, other) in [(&mut a, &ben), (&mut b, &ann)] {
        match ws.recv().await {
            ServerMsg::ContactRemoved { user_id } => assert_eq!(user_id, uid(other)),
            msg => panic!("expected contact_removed, got {msg:?}"),
        }
    }
    assert_eq!(contact_names(&contacts(&server, &ann).await), ["cat"]);
    assert!(contacts(&server, &ben).await.is_empty());

    // Not (or no longer) a contact: 404.
    for id in [
        ben.id.clone(),
        uuid::Uuid::new_v4().to_string(),
        ann.id.clone(),
    ] {
        let (status, body) = server
            .delete(&format!("/api/contacts/{id}"), Some(&ann.token))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    server.stop().await;
}

async fn one_direct_room_per_pair_under_concurrent_opening(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let ben = server.user("ben").await;
    befriend(&server, &ann, &ben).await;
    let mut a = server.ws(&ann).await;
    let mut b = server.ws(&ben).await;
    a.drain().await;
    b.drain().await;

    // Both open their direct room at the same moment, five times each.
    let calls: Vec<(String, &str)> = (0..10)
        .map(|i| {
            let (me, other) = if i % 2 == 0 {
                (&ann, &ben)
            } else {
                (&ben, &ann)
            };
            (
                format!("/api/contacts/{}/direct", other.id),
                me.token.as_str(),
            )
        })
        .collect();
    let answers = join_all(
        calls
            .iter()
            .map(|(path, token)| server.post(path, Some(token), json!({}))),
    )
    .await;
    let created = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "{answers:?}");
    let id = answers[0].1["id"].as_str().unwrap().to_owned();
    for (status, room) in &answers {
        assert!(
            *status == StatusCode::CREATED || *status == StatusCode::OK,
            "{status} {room}"
        );
        assert_eq!(room["id"], id.as_str(), "one room for the pair");
        assert_eq!(room["kind"], "direct");
        assert_eq!(room["title"], "");
        assert_eq!(room["member_count"], 2);
    }

    // Each hears of the new room once, with the other as its other user.
    for (ws, other) in [(&mut a, &ben), (&mut b, &ann)] {
        match ws.recv().await {
            ServerMsg::RoomAdded { room } => {
                assert_eq!(room.room.id.to_string(), id);
                assert_eq!(room.room.kind, RoomKind::Direct);
                assert_eq!(room.other_user.map(|u| u.id), Some(uid(other)));
                assert_eq!(room.other_presence, Some(PresenceStatus::Online));
                assert_eq!(room.unread_count, 0);
            }
            msg => panic!("expected room_added, got {msg:?}"),
        }
        ws.expect_silence().await;
    }

    // Both list it with the contact, and both are its members.
    for (me, other) in [(&ann, &ben), (&ben, &ann)] {
        let list = contacts(&server, me).await;
        assert_eq!(list[0]["user"]["id"], other.id.as_str());
        assert_eq!(list[0]["direct_room_id"], id.as_str());
        let (status, room) = server
            .get(&format!("/api/rooms/{id}"), Some(&me.token))
            .await;
        assert_eq!(status, StatusCode::OK, "{room}");
        assert_eq!(room["members"].as_array().unwrap().len(), 2);
    }
    let (status, again) = server
        .post(
            &format!("/api/contacts/{}/direct", ben.id),
            Some(&ann.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["id"], id.as_str());
    server.stop().await;
}

async fn direct_rooms_are_for_contacts_only(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let ben = server.user("ben").await;
    let cat = server.user("cat").await;
    let dee = server.user("dee").await;
    let direct = |u: &TestUser| format!("/api/contacts/{}/direct", u.id);

    // Ben is a stranger to Ann.
    let (status, stranger) = raw_post(&server, &direct(&ben), &ann.token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let body: Value = serde_json::from_slice(&stranger).unwrap();
    assert_eq!(body["error"]["code"], "cannot_message_user");

    // Cat was Ann's contact, then blocked her: Ann gets the very same bytes, and so does
    // Cat, the blocker.
    befriend(&server, &ann, &cat).await;
    let (status, _) = put(&server, &format!("/api/blocks/{}", ann.id), &cat.token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, blocked) = raw_post(&server, &direct(&cat), &ann.token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        blocked, stranger,
        "a block cannot be told apart from not being a contact"
    );
    let (status, blocker) = raw_post(&server, &direct(&ann), &cat.token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(blocker, stranger);

    // Dee and Ann had a direct room, then ended the contact: the room is not opened
    // again (it stays, read-only, for its history).
    befriend(&server, &ann, &dee).await;
    let (status, room) = server
        .post(&direct(&dee), Some(&ann.token), json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{room}");
    let room_id = room["id"].as_str().unwrap().to_owned();
    let (status, _) = server
        .delete(&format!("/api/contacts/{}", dee.id), Some(&ann.token))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, former) = raw_post(&server, &direct(&dee), &ann.token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(former, stranger);
    let (status, room) = server
        .get(&format!("/api/rooms/{room_id}"), Some(&dee.token))
        .await;
    assert_eq!(status, StatusCode::OK, "the old room is kept: {room}");

    // Yourself, unknown and malformed ids.
    let (status, body) = server
        .post(&direct(&ann), Some(&ann.token), json!({}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let unknown = uuid::Uuid::new_v4();
    let (status, body) = server
        .post(
            &format!("/api/contacts/{unknown}/direct"),
            Some(&ann.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = server
        .post("/api/contacts/123/direct", Some(&ann.token), json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_error_shape(status, &body, "malformed user id");
    server.stop().await;
}

async fn bad_input_gets_the_json_error_shape(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let token = Some(ann.token.as_str());
    let unknown = uuid::Uuid::new_v4();
    let cases: Vec<(Method, String, Option<Value>, StatusCode)> = vec![
        (
            Method::DELETE,
            "/api/contacts/bad".into(),
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::DELETE,
            format!("/api/contacts/{unknown}"),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            "/api/contacts/bad/direct".into(),
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            format!("/api/contacts/{unknown}/direct"),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            "/api/contacts/requests/bad/accept".into(),
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            format!("/api/contacts/requests/{unknown}/accept"),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            "/api/contacts/requests/bad/decline".into(),
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            format!("/api/contacts/requests/{unknown}/decline"),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::DELETE,
            "/api/contacts/requests/bad".into(),
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::DELETE,
            format!("/api/contacts/requests/{unknown}"),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::PUT,
            "/api/blocks/bad".into(),
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PUT,
            format!("/api/blocks/{unknown}"),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::DELETE,
            "/api/blocks/bad".into(),
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::DELETE,
            format!("/api/blocks/{unknown}"),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            "/api/contacts/requests".into(),
            Some(json!({"user_id": true})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/api/contacts/requests".into(),
            Some(json!({"user_id": ["x"]})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/api/contacts/requests".into(),
            Some(json!({"user_id": "x"})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (method, path, body, expected) in cases {
        let what = format!("{method} {path} {body:?}");
        let (status, resp) = server.request(method, &path, token, body).await;
        assert_eq!(status, expected, "{what}: {resp}");
        assert_error_shape(status, &resp, &what);
    }
    // A body that is not JSON at all.
    let resp = server
        .http
        .post(format!("{}/api/contacts/requests", server.base))
        .bearer_auth(&ann.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_error_shape(status, &body, "not JSON");
    server.stop().await;
}
