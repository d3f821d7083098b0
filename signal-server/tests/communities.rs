//! Communities over real HTTP and WebSockets, on SQLite and PostgreSQL: creating and
//! finding them, joining and leaving live, channels, chat and unread counts in channels,
//! announcement channels, `@everyone`, invite links, roles, kicks, bans and deletion.

#![allow(clippy::unwrap_used)]

mod common;
mod community;

use common::{Db, TestServer, TestUser};
use community::{
    channel_named, channels, create, create_channel, id, join, next_event, patch, put,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared::communities::CommunityExit;
use shared::signal::ServerMsg;

on_both_databases!(
    a_new_community_has_its_owner_and_a_general_channel,
    communities_are_found_by_member_id_text_and_visibility,
    the_list_pages_with_a_cursor,
    joins_and_leaves_reach_members_live,
    channels_are_created_changed_ordered_and_deleted,
    channel_chat_counts_unread_per_channel_and_community,
    only_admins_write_in_an_announcement_channel,
    everyone_is_mentioned_only_by_admins,
    private_communities_are_joined_by_invite,
    roles_and_handing_over,
    a_kicked_member_leaves_the_channels_and_their_calls,
    a_banned_user_cannot_come_back_or_read,
    deleting_a_community_removes_its_channels,
    the_member_limit_holds,
    bad_input_gets_field_errors,
);

async fn a_new_community_has_its_owner_and_a_general_channel(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let c = create(&server, &ann, "Rustaceans", "public").await;
    assert_eq!(c["name"], "Rustaceans");
    assert_eq!(c["description"], "about Rustaceans");
    assert_eq!(c["visibility"], "public");
    assert_eq!(c["owner_id"], ann.id.as_str());
    assert_eq!(c["member_count"], 1);
    assert_eq!(c["my_role"], "owner");
    assert_eq!(c["icon_url"], Value::Null);
    assert_eq!(
        (c["unread_count"].clone(), c["mention_count"].clone()),
        (json!(0), json!(0))
    );

    let list = channels(&server, &ann, &id(&c)).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["name"], "general");
    assert_eq!(list[0]["position"], 0);
    assert_eq!(list[0]["announcement"], false);

    // The channel is a room of kind `channel`: its room view works for members...
    let general = id(&list[0]);
    let (status, room) = server
        .get(&format!("/api/rooms/{general}"), Some(&ann.token))
        .await;
    assert_eq!(status, StatusCode::OK, "{room}");
    assert_eq!(room["kind"], "channel");
    // ...but it is listed with its community, not in the room list.
    let (_, rooms) = server.get("/api/rooms", Some(&ann.token)).await;
    assert_eq!(rooms, json!([]));
    server.stop().await;
}

async fn communities_are_found_by_member_id_text_and_visibility(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    let rust = create(&server, &ann, "Rustaceans", "public").await;
    let secret = create(&server, &ann, "Secret club", "private").await;
    let garden = create(&server, &bob, "Gardening", "public").await;
    let names = |page: &Value| -> Vec<String> {
        page["communities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let list = |user: &TestUser, query: &str| {
        let path = format!("/api/communities{query}");
        let token = user.token.clone();
        let server = &server;
        async move {
            let (status, page) = server.get(&path, Some(&token)).await;
            assert_eq!(status, StatusCode::OK, "{path}: {page}");
            page
        }
    };

    // By default: my own, public and private.
    assert_eq!(names(&list(&ann, "").await), ["Rustaceans", "Secret club"]);
    assert_eq!(names(&list(&bob, "").await), ["Gardening"]);
    // Discover: every public one.
    assert_eq!(
        names(&list(&bob, "?visibility=public").await),
        ["Rustaceans", "Gardening"]
    );
    // Text, in any case, in the name or the description.
    assert_eq!(
        names(&list(&bob, "?visibility=public&q=RUST").await),
        ["Rustaceans"]
    );
    assert_eq!(
        names(&list(&bob, "?visibility=public&q=about%20gard").await),
        ["Gardening"]
    );
    assert_eq!(
        names(&list(&bob, "?visibility=public&q=100%25").await),
        Vec::<String>::new()
    );
    // Another user's communities: only what I may see (not ann's private one).
    assert_eq!(
        names(&list(&bob, &format!("?member={}", ann.id)).await),
        ["Rustaceans"]
    );
    assert_eq!(
        names(&list(&ann, &format!("?member={}", ann.id)).await),
        ["Rustaceans", "Secret club"]
    );
    // By id: a private one is not found by someone outside it.
    assert_eq!(
        names(&list(&bob, &format!("?visibility=public&id={}", id(&rust))).await),
        ["Rustaceans"]
    );
    assert_eq!(
        names(&list(&bob, &format!("?id={}&member={}", id(&secret), ann.id)).await),
        Vec::<String>::new()
    );
    let (status, _) = server
        .get(
            &format!("/api/communities/{}", id(&secret)),
            Some(&bob.token),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A public one I am not in: visible, without a role.
    let (status, seen) = server
        .get(&format!("/api/communities/{}", id(&rust)), Some(&bob.token))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen["my_role"], Value::Null);
    assert_eq!(
        names(&list(&ann, "?visibility=private").await),
        ["Secret club"]
    );
    let _ = garden;
    server.stop().await;
}

async fn the_list_pages_with_a_cursor(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let mut made = Vec::new();
    for i in 0..7 {
        made.push(id(
            &create(&server, &ann, &format!("Club {i}"), "public").await
        ));
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/communities?visibility=public&limit=3&cursor={c}"),
            None => "/api/communities?visibility=public&limit=3".to_owned(),
        };
        let (status, page) = server.get(&path, Some(&ann.token)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages += 1;
        let batch = page["communities"].as_array().unwrap();
        assert!(batch.len() <= 3);
        seen.extend(batch.iter().map(id));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3, "7 communities in pages of 3");
    assert_eq!(seen, made, "each once, oldest first");
    server.stop().await;
}

async fn joins_and_leaves_reach_members_live(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    let c = id(&create(&server, &ann, "Rustaceans", "public").await);
    let mut ann_ws = server.ws(&ann).await;
    let mut bob_ws = server.ws(&bob).await;

    let joined = join(&server, &bob, &c).await;
    assert_eq!(joined["my_role"], "member");
    assert_eq!(joined["member_count"], 2);
    // Bob's devices get the community and its channels...
    match next_event(&mut bob_ws).await {
        ServerMsg::CommunityAdded {
            community,
            channels,
        } => {
            assert_eq!(community.community.id.to_string(), c);
            assert_eq!(channels.len(), 1);
            assert_eq!(channels[0].channel.name, "general");
        }
        other => panic!("expected community_added, got {other:?}"),
    }
    // ...and ann sees him arrive, with his presence.
    match next_event(&mut ann_ws).await {
        ServerMsg::CommunityMemberJoined {
            community_id,
            member,
            member_count,
        } => {
            assert_eq!(community_id.to_string(), c);
            assert_eq!(member.user.id.to_string(), bob.id);
            assert_eq!(member.presence, shared::api::PresenceStatus::Online);
            assert_eq!(member_count, 2);
        }
        other => panic!("expected community_member_joined, got {other:?}"),
    }
    // Joining again changes nothing.
    let again = join(&server, &bob, &c).await;
    assert_eq!(again["member_count"], 2);

    let (status, members) = server
        .get(&format!("/api/communities/{c}/members"), Some(&bob.token))
        .await;
    assert_eq!(status, StatusCode::OK);
    let roles: Vec<(String, String)> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["user"]["username"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            ("ann".into(), "owner".into()),
            ("bob".into(), "member".into())
        ]
    );

    // Bob leaves: his devices drop it, ann sees him go.
    let (status, _) = server
        .post(
            &format!("/api/communities/{c}/leave"),
            Some(&bob.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    match next_event(&mut bob_ws).await {
        ServerMsg::CommunityRemoved {
            community_id,
            reason,
        } => {
            assert_eq!(community_id.to_string(), c);
            assert_eq!(reason, CommunityExit::Left);
        }
        other => panic!("expected community_removed, got {other:?}"),
    }
    match next_event(&mut ann_ws).await {
        ServerMsg::CommunityMemberLeft {
            user_id,
            reason,
            member_count,
            ..
        } => {
            assert_eq!(user_id.to_string(), bob.id);
            assert_eq!(reason, CommunityExit::Left);
            assert_eq!(member_count, 1);
        }
        other => panic!("expected community_member_left, got {other:?}"),
    }
    // The owner cannot just leave.
    let (status, body) = server
        .post(
            &format!("/api/communities/{c}/leave"),
            Some(&ann.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // He can come back.
    assert_eq!(join(&server, &bob, &c).await["member_count"], 2);
    server.stop().await;
}

async fn channels_are_created_changed_ordered_and_deleted(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    let c = id(&create(&server, &ann, "Rustaceans", "public").await);
    join(&server, &bob, &c).await;
    let mut bob_ws = server.ws(&bob).await;

    let news = create_channel(
        &server,
        &ann,
        &c,
        json!({"name": "news", "topic": "releases", "category": "Info", "announcement": true}),
    )
    .await;
    assert_eq!(news["position"], 1);
    assert_eq!(news["announcement"], true);
    assert_eq!(news["category"], "Info");
    assert_eq!(news["max_participants"], 8);
    match next_event(&mut bob_ws).await {
        ServerMsg::ChannelCreated { channel } => assert_eq!(channel.name, "news"),
        other => panic!("expected channel_created, got {other:?}"),
    }
    let random = create_channel(&server, &ann, &c, json!({"name": "random"})).await;
    next_event(&mut bob_ws).await;
    // Bob is in the new channels too, as in every channel of the community.
    let names: Vec<Value> = channels(&server, &bob, &c)
        .await
        .iter()
        .map(|ch| ch["name"].clone())
        .collect();
    assert_eq!(names, [json!("general"), json!("news"), json!("random")]);
    // A plain member cannot make one.
    let (status, _) = server
        .post(
            &format!("/api/communities/{c}/channels"),
            Some(&bob.token),
            json!({"name": "mine"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Change the topic, clear the category.
    let (status, changed) = patch(
        &server,
        &ann,
        &format!("/api/communities/{c}/channels/{}", id(&news)),
        json!({"topic": "what shipped", "category": ""}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["topic"], "what shipped");
    assert_eq!(changed["category"], Value::Null);
    assert_eq!(changed["name"], "news");
    match next_event(&mut bob_ws).await {
        ServerMsg::ChannelUpdated { channel } => {
            assert_eq!(channel.topic.as_deref(), Some("what shipped"));
        }
        other => panic!("expected channel_updated, got {other:?}"),
    }

    // Reorder: random first, under "Fun".
    let general = channel_named(&server, &ann, &c, "general").await;
    let order = json!({"channels": [
        {"channel_id": id(&random), "category": "Fun"},
        {"channel_id": general},
        {"channel_id": id(&news)},
    ]});
    let (status, ordered) = put(
        &server,
        &ann,
        &format!("/api/communities/{c}/channels/order"),
        order,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{ordered}");
    let got: Vec<(Value, Value, Value)> = ordered
        .as_array()
        .unwrap()
        .iter()
        .map(|ch| {
            (
                ch["name"].clone(),
                ch["position"].clone(),
                ch["category"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (json!("random"), json!(0), json!("Fun")),
            (json!("general"), json!(1), Value::Null),
            (json!("news"), json!(2), Value::Null),
        ]
    );
    match next_event(&mut bob_ws).await {
        ServerMsg::ChannelsReordered { channels, .. } => {
            assert_eq!(channels[0].name, "random");
        }
        other => panic!("expected channels_reordered, got {other:?}"),
    }
    // An order that leaves one out is refused.
    let (status, body) = put(
        &server,
        &ann,
        &format!("/api/communities/{c}/channels/order"),
        json!({"channels": [{"channel_id": general}]}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["fields"]["channels"].is_string());

    // Delete one: gone for everyone, with its timeline.
    server.post_message(&ann, &id(&random), "hello").await;
    let (status, _) = server
        .delete(
            &format!("/api/communities/{c}/channels/{}", id(&random)),
            Some(&ann.token),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    match next_event(&mut bob_ws).await {
        ServerMsg::ChannelDeleted { channel_id, .. } => {
            assert_eq!(channel_id.to_string(), id(&random));
        }
        other => panic!("expected channel_deleted, got {other:?}"),
    }
    let (status, _) = server
        .get(
            &format!("/api/rooms/{}/messages", id(&random)),
            Some(&ann.token),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(channels(&server, &bob, &c).await.len(), 2);

    // The room endpoints for groups refuse a channel, pointing at the community.
    let (status, body) = server
        .post(
            &format!("/api/rooms/{general}/leave"),
            Some(&bob.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("community")
    );
    let (status, _) = patch(
        &server,
        &ann,
        &format!("/api/rooms/{general}"),
        json!({"title": "x"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = server
        .post(
            &format!("/api/rooms/{general}/invites"),
            Some(&ann.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    server.stop().await;
}

async fn channel_chat_counts_unread_per_channel_and_community(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    let c = id(&create(&server, &ann, "Rustaceans", "public").await);
    join(&server, &bob, &c).await;
    let random = id(&create_channel(&server, &ann, &c, json!({"name": "random"})).await);
    let general = channel_named(&server, &ann, &c, "general").await;
    let mut bob_ws = server.ws(&bob).await;

    server.post_message(&ann, &general, "hello @bob").await;
    server.post_message(&ann, &general, "anyone?").await;
    server.post_message(&ann, &random, "in random").await;
    // Live, as in any room.
    let msg = bob_ws
        .recv_until(|m| matches!(m, ServerMsg::MessageCreated { .. }))
        .await;
    let ServerMsg::MessageCreated { message } = msg else {
        unreachable!()
    };
    assert_eq!(message.body, "hello @bob");
    assert_eq!(message.mentions.len(), 1);

    let counts: Vec<(Value, Value, Value)> = channels(&server, &bob, &c)
        .await
        .iter()
        .map(|ch| {
            (
                ch["name"].clone(),
                ch["unread_count"].clone(),
                ch["mention_count"].clone(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [
            (json!("general"), json!(2), json!(1)),
            (json!("random"), json!(1), json!(0)),
        ]
    );
    let (_, summary) = server
        .get(&format!("/api/communities/{c}"), Some(&bob.token))
        .await;
    assert_eq!(
        (
            summary["unread_count"].clone(),
            summary["mention_count"].clone()
        ),
        (json!(3), json!(1))
    );
    // The author has nothing unread.
    let (_, mine) = server
        .get(&format!("/api/communities/{c}"), Some(&ann.token))
        .await;
    assert_eq!(mine["unread_count"], 0);

    // Reading general (the room read marker) leaves random's.
    let (status, _) = server
        .post(
            &format!("/api/rooms/{general}/read"),
            Some(&bob.token),
            json!({"seq": 2}),
        )
        .await;
    assert!(status.is_success(), "{status}");
    let (_, page) = server.get("/api/communities", Some(&bob.token)).await;
    assert_eq!(page["communities"][0]["unread_count"], 1);
    assert_eq!(page["communities"][0]["mention_count"], 0);

    // Bob answers over the WebSocket, and typing reaches ann.
    let mut ann_ws = server.ws(&ann).await;
    bob_ws
        .send_json(json!({"type": "typing", "room_id": general}))
        .await;
    let typing = ann_ws
        .recv_until(|m| matches!(m, ServerMsg::Typing { .. }))
        .await;
    assert!(matches!(typing, ServerMsg::Typing { user_id, .. } if user_id.to_string() == bob.id));
    bob_ws
        .send_json(
            json!({"type": "send_message", "room_id": general, "client_id": "k1", "body": "here"}),
        )
        .await;
    let ack = bob_ws
        .recv_until(|m| matches!(m, ServerMsg::MessageAck { .. } | ServerMsg::Error { .. }))
        .await;
    assert!(matches!(ack, ServerMsg::MessageAck { .. }), "{ack:?}");
    let all = server.all_messages(&ann, &general).await;
    assert_eq!(all.len(), 3);
    server.stop().await;
}

async fn only_admins_write_in_an_announcement_channel(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    let c = id(&create(&server, &ann, "Rustaceans", "public").await);
    join(&server, &bob, &c).await;
    let news = id(&create_channel(
        &server,
        &ann,
        &c,
        json!({"name": "news", "announcement": true}),
    )
    .await);

    let posted = server.post_message(&ann, &news, "1.0 is out").await;
    let (status, body) = server.send_message(&bob, &news, "k1", "me too").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    // Members read it and react to it.
    assert_eq!(server.all_messages(&bob, &news).await.len(), 1);
    let (status, body) = server
        .request(
            Method::PUT,
            &format!(
                "/api/rooms/{news}/messages/{}/reactions/%F0%9F%8E%89",
                posted.id
            ),
            Some(&bob.token),
            None,
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    // Made an admin, bob may write.
    let (status, _) = patch(
        &server,
        &ann,
        &format!("/api/communities/{c}/members/{}", bob.id),
        json!({"role": "admin"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = server.send_message(&bob, &news, "k2", "me too").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Turning the flag off opens it to everyone.
    let cat = server.user("cat").await;
    join(&server, &cat, &c).await;
    let (status, _) = patch(
        &server,
        &ann,
        &format!("/api/communities/{c}/channels/{news}"),
        json!({"announcement": false}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = server.send_message(&cat, &news, "k3", "hi").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    server.stop().await;
}

async fn everyone_is_mentioned_only_by_admins(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    let cat = server.user("cat").await;
    let c = id(&create(&server, &ann, "Rustaceans", "public").await);
    join(&server, &bob, &c).await;
    join(&server, &cat, &c).await;
    let general = channel_named(&server, &ann, &c, "general").await;
    // The mention counts of a member: general's, and the community's sum.
    let counts = |user: &TestUser| {
        let (server, user, c) = (&server, user.clone(), c.clone());
        async move {
            let list = channels(server, &user, &c).await;
            let (_, summary) = server
                .get(&format!("/api/communities/{c}"), Some(&user.token))
                .await;
            (
                list[0]["mention_count"].as_u64().unwrap(),
                summary["mention_count"].as_u64().unwrap(),
            )
        }
    };
    let mut cat_ws = server.ws(&cat).await;

    // The owner's @everyone marks the message, and lists nobody: the event every member
    // gets stays the same size however big the community is. A name beside it is
    // still listed.
    let from_owner = server
        .post_message(&ann, &general, "@everyone meeting at 5, @bob brings slides")
        .await;
    assert!(from_owner.mentions_everyone);
    assert_eq!(from_owner.mentions.len(), 1);
    assert_eq!(from_owner.mentions[0].to_string(), bob.id);
    let ServerMsg::MessageCreated { message } = cat_ws
        .recv_until(|m| matches!(m, ServerMsg::MessageCreated { .. }))
        .await
    else {
        unreachable!()
    };
    assert!(message.mentions_everyone && message.mentions.len() == 1);
    // It counts for every member but its author, once for bob though it names him too.
    assert_eq!(counts(&cat).await, (1, 1));
    assert_eq!(counts(&bob).await, (1, 1));
    assert_eq!(counts(&ann).await, (0, 0));
    // A plain member's @everyone is plain text.
    let from_member = server
        .post_message(&bob, &general, "@everyone free pizza")
        .await;
    assert!(!from_member.mentions_everyone, "plain text from a member");
    assert!(from_member.mentions.is_empty());

    // Cat's counts show the owner's message only; bob's read marker moved past it when
    // he wrote.
    assert_eq!(counts(&cat).await, (1, 1));
    assert_eq!(channels(&server, &cat, &c).await[0]["unread_count"], 2);
    assert_eq!(counts(&bob).await, (0, 0));
    // The timeline keeps the mark.
    let stored = server.all_messages(&cat, &general).await;
    assert!(stored[0].mentions_everyone && !stored[1].mentions_everyone);

    // An edit without it takes the mark away; one with it puts it back.
    let path = format!("/api/rooms/{general}/messages/{}", from_owner.id);
    let (status, edited) = patch(&server, &ann, &path, json!({"body": "meeting at 5"})).await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["mentions_everyone"], false);
    assert_eq!(counts(&cat).await, (0, 0));
    let (_, edited) = patch(&server, &ann, &path, json!({"body": "@everyone at 6"})).await;
    assert_eq!(edited["mentions_everyone"], true);
    assert_eq!(counts(&cat).await, (1, 1));

    // An admin (not only the owner) mentions everyone too; a member who joins after it
    // is not mentioned by what came before.
    let (status, _) = patch(
        &server,
        &ann,
        &format!("/api/communities/{c}/members/{}", bob.id),
        json!({"role": "admin"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let from_admin = server.post_message(&bob, &general, "@everyone vote").await;
    assert!(from_admin.mentions_everyone);
    let dan = server.user("dan").await;
    join(&server, &dan, &c).await;
    assert_eq!(counts(&dan).await, (0, 0));
    assert_eq!(counts(&cat).await, (2, 2));
    assert_eq!(
        counts(&ann).await,
        (1, 1),
        "the owner is mentioned by the admin"
    );

    // Blocking the author hides their mentions, as for named ones.
    let (status, _) = server
        .request(
            Method::PUT,
            &format!("/api/blocks/{}", bob.id),
            Some(&cat.token),
            None,
        )
        .await;
    assert!(status.is_success(), "{status}");
    assert_eq!(counts(&cat).await, (1, 1));

    // Deleting it takes it out of the counts; reading past the rest leaves nothing.
    let (status, _) = server.delete(&path, Some(&ann.token)).await;
    assert!(status.is_success(), "{status}");
    assert_eq!(counts(&cat).await, (0, 0));
    assert_eq!(counts(&dan).await, (0, 0));
    let (status, _) = server
        .post(
            &format!("/api/rooms/{general}/read"),
            Some(&ann.token),
            json!({"seq": from_admin.seq}),
        )
        .await;
    assert!(status.is_success(), "{status}");
    assert_eq!(counts(&ann).await, (0, 0));

    // In a group it is plain text too.
    let room = server.room(&ann, 8).await;
    server.join(&bob, &room).await;
    let in_group = server.post_message(&ann, &room, "@everyone hi").await;
    assert!(in_group.mentions.is_empty());
    assert!(!in_group.mentions_everyone);
    server.stop().await;
}

async fn private_communities_are_joined_by_invite(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    let cat = server.user("cat").await;
    let c = id(&create(&server, &ann, "Secret club", "private").await);
    let (status, _) = server
        .post(
            &format!("/api/communities/{c}/join"),
            Some(&bob.token),
            json!({}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a private one is not joined by id"
    );

    let (status, invite) = server
        .post(
            &format!("/api/communities/{c}/invites"),
            Some(&ann.token),
            json!({"max_uses": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{invite}");
    let token = invite["token"].as_str().unwrap().to_owned();
    assert_eq!(invite["uses"], 0);
    let mut ann_ws = server.ws(&ann).await;
    let (status, joined) = server
        .post(
            &format!("/api/communities/join/{token}"),
            Some(&bob.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{joined}");
    assert_eq!(joined["my_role"], "member");
    assert!(matches!(
        next_event(&mut ann_ws).await,
        ServerMsg::CommunityMemberJoined { .. }
    ));
    // Again by bob: already in, no use counted (and the only use is taken).
    let (status, _) = server
        .post(
            &format!("/api/communities/join/{token}"),
            Some(&cat.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::GONE);
    let (status, _) = server
        .post(
            "/api/communities/join/not-a-token",
            Some(&cat.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Bob sees it in his list now.
    let (_, page) = server.get("/api/communities", Some(&bob.token)).await;
    assert_eq!(page["communities"][0]["name"], "Secret club");

    // Admins list and revoke links; a revoked link is unknown.
    let (_, second) = server
        .post(
            &format!("/api/communities/{c}/invites"),
            Some(&ann.token),
            json!({}),
        )
        .await;
    let (status, list) = server
        .get(&format!("/api/communities/{c}/invites"), Some(&ann.token))
        .await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<Value> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].clone())
        .collect();
    assert_eq!(ids, [second["id"].clone()], "the used-up one is not listed");
    assert!(list[0].get("token").is_none(), "tokens are shown once");
    let (status, _) = server
        .delete(
            &format!(
                "/api/communities/{c}/invites/{}",
                second["id"].as_str().unwrap()
            ),
            Some(&ann.token),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server
        .post(
            &format!(
                "/api/communities/join/{}",
                second["token"].as_str().unwrap()
            ),
            Some(&cat.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A plain member makes no links.
    let (status, _) = server
        .post(
            &format!("/api/communities/{c}/invites"),
            Some(&bob.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    server.stop().await;
}

async fn roles_and_handing_over(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    let cat = server.user("cat").await;
    let c = id(&create(&server, &ann, "Rustaceans", "public").await);
    join(&server, &bob, &c).await;
    join(&server, &cat, &c).await;
    let mut cat_ws = server.ws(&cat).await;
    let member = |u: &TestUser| format!("/api/communities/{c}/members/{}", u.id);

    let (status, made) = patch(&server, &ann, &member(&bob), json!({"role": "admin"})).await;
    assert_eq!(status, StatusCode::OK, "{made}");
    assert_eq!(made["role"], "admin");
    match next_event(&mut cat_ws).await {
        ServerMsg::CommunityRoleChanged { user_id, role, .. } => {
            assert_eq!(user_id.to_string(), bob.id);
            assert_eq!(role, shared::api::RoomRole::Admin);
        }
        other => panic!("expected community_role_changed, got {other:?}"),
    }
    // An admin manages channels and the community's name, not roles or the visibility.
    create_channel(&server, &bob, &c, json!({"name": "by-bob"})).await;
    let (status, _) = patch(
        &server,
        &bob,
        &format!("/api/communities/{c}"),
        json!({"name": "Crabs"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = patch(
        &server,
        &bob,
        &format!("/api/communities/{c}"),
        json!({"visibility": "private"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = patch(&server, &bob, &member(&cat), json!({"role": "admin"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = server.delete(&member(&ann), Some(&bob.token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "nobody removes the owner");
    // An admin's role carries into the channels: he deletes a member's message there.
    let general = channel_named(&server, &ann, &c, "general").await;
    let spam = server.post_message(&cat, &general, "spam").await;
    let (status, _) = server
        .delete(
            &format!("/api/rooms/{general}/messages/{}", spam.id),
            Some(&bob.token),
        )
        .await;
    assert!(status.is_success(), "{status}");

    // Ann hands the community to bob: she becomes an admin and may leave.
    let (status, body) = patch(&server, &ann, &member(&bob), json!({"role": "owner"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["role"], "owner");
    let (_, seen) = server
        .get(&format!("/api/communities/{c}"), Some(&ann.token))
        .await;
    assert_eq!(seen["owner_id"], bob.id.as_str());
    assert_eq!(seen["my_role"], "admin");
    // Cat saw the rename first, then the new owner.
    let renamed = cat_ws
        .recv_until(|m| matches!(m, ServerMsg::CommunityUpdated { .. }))
        .await;
    assert!(
        matches!(&renamed, ServerMsg::CommunityUpdated { community } if community.name == "Crabs"),
        "{renamed:?}"
    );
    let handed = cat_ws
        .recv_until(|m| matches!(m, ServerMsg::CommunityUpdated { .. }))
        .await;
    assert!(
        matches!(&handed, ServerMsg::CommunityUpdated { community } if community.owner_id.to_string() == bob.id),
        "{handed:?}"
    );
    let (status, _) = server
        .post(
            &format!("/api/communities/{c}/leave"),
            Some(&ann.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // The channels' owner follows.
    let (_, room) = server
        .get(&format!("/api/rooms/{general}"), Some(&bob.token))
        .await;
    assert_eq!(room["owner_id"], bob.id.as_str());
    server.stop().await;
}

async fn a_kicked_member_leaves_the_channels_and_their_calls(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    let c = id(&create(&server, &ann, "Rustaceans", "public").await);
    join(&server, &bob, &c).await;
    let general = channel_named(&server, &ann, &c, "general").await;
    let mut ann_ws = server.ws(&ann).await;
    let mut bob_ws = server.ws(&bob).await;
    for ws in [&mut ann_ws, &mut bob_ws] {
        ws.send_json(json!({"type": "join_call", "room_id": general}))
            .await;
        ws.recv_until(|m| matches!(m, ServerMsg::CallJoined { .. }))
            .await;
    }
    ann_ws
        .recv_until(|m| matches!(m, ServerMsg::ParticipantJoined { .. }))
        .await;

    let (status, _) = server
        .delete(
            &format!("/api/communities/{c}/members/{}", bob.id),
            Some(&ann.token),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Out of the call at once, and told why.
    bob_ws
        .recv_until(|m| matches!(m, ServerMsg::CallLeft { .. }))
        .await;
    let left = ann_ws
        .recv_until(|m| matches!(m, ServerMsg::ParticipantLeft { .. }))
        .await;
    assert!(
        matches!(left, ServerMsg::ParticipantLeft { user_id, .. } if user_id.to_string() == bob.id)
    );
    let removed = bob_ws
        .recv_until(|m| matches!(m, ServerMsg::CommunityRemoved { .. }))
        .await;
    assert!(matches!(
        removed,
        ServerMsg::CommunityRemoved {
            reason: CommunityExit::Kicked,
            ..
        }
    ));
    // He reads and writes nothing there now, and hears nothing more.
    let (status, _) = server
        .get(&format!("/api/rooms/{general}/messages"), Some(&bob.token))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    bob_ws.drain().await;
    server.post_message(&ann, &general, "after").await;
    bob_ws.expect_silence().await;
    // A kick is not a ban: he may join again.
    join(&server, &bob, &c).await;
    server.stop().await;
}

async fn a_banned_user_cannot_come_back_or_read(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    let c = id(&create(&server, &ann, "Rustaceans", "public").await);
    join(&server, &bob, &c).await;
    let general = channel_named(&server, &ann, &c, "general").await;
    let mut bob_ws = server.ws(&bob).await;
    let (status, invite) = server
        .post(
            &format!("/api/communities/{c}/invites"),
            Some(&ann.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, ban) = server
        .post(
            &format!("/api/communities/{c}/bans"),
            Some(&ann.token),
            json!({"user_id": bob.id, "reason": "spam"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ban}");
    assert_eq!(ban["reason"], "spam");
    assert_eq!(ban["banned_by"], ann.id.as_str());
    let removed = next_event(&mut bob_ws).await;
    assert!(
        matches!(
            removed,
            ServerMsg::CommunityRemoved {
                reason: CommunityExit::Banned,
                ..
            }
        ),
        "{removed:?}"
    );
    let (status, _) = server
        .get(&format!("/api/rooms/{general}/messages"), Some(&bob.token))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "read access is gone at once");
    // Not by id, not by link.
    let (status, body) = server
        .post(
            &format!("/api/communities/{c}/join"),
            Some(&bob.token),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::FORBIDDEN, json!("forbidden"))
    );
    let token = invite["token"].as_str().unwrap();
    let (status, _) = server
        .post(
            &format!("/api/communities/join/{token}"),
            Some(&bob.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, bans) = server
        .get(&format!("/api/communities/{c}/bans"), Some(&ann.token))
        .await;
    assert_eq!(bans[0]["user"]["id"], bob.id.as_str());
    // A refused link keeps its use.
    let (_, invites) = server
        .get(&format!("/api/communities/{c}/invites"), Some(&ann.token))
        .await;
    assert_eq!(invites[0]["uses"], 0);

    // Lifted, he may join again.
    let (status, _) = server
        .delete(
            &format!("/api/communities/{c}/bans/{}", bob.id),
            Some(&ann.token),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    join(&server, &bob, &c).await;
    server.stop().await;
}

async fn deleting_a_community_removes_its_channels(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    let c = id(&create(&server, &ann, "Rustaceans", "public").await);
    join(&server, &bob, &c).await;
    let general = channel_named(&server, &ann, &c, "general").await;
    server.post_message(&ann, &general, "bye").await;
    let mut bob_ws = server.ws(&bob).await;
    let (status, _) = server
        .delete(&format!("/api/communities/{c}"), Some(&bob.token))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the owner only");
    let (status, _) = server
        .delete(&format!("/api/communities/{c}"), Some(&ann.token))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let removed = next_event(&mut bob_ws).await;
    assert!(matches!(
        removed,
        ServerMsg::CommunityRemoved {
            reason: CommunityExit::Deleted,
            ..
        }
    ));
    let (status, _) = server
        .get(&format!("/api/communities/{c}"), Some(&ann.token))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server
        .get(&format!("/api/rooms/{general}/messages"), Some(&ann.token))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, page) = server.get("/api/communities", Some(&bob.token)).await;
    assert_eq!(page["communities"], json!([]));
    server.stop().await;
}

async fn the_member_limit_holds(db: Db) {
    // Far above the group limit of 3 here: communities have their own.
    let server = TestServer::start_with(
        db,
        &["--max-community-members", "5", "--max-group-members", "3"],
    )
    .await;
    let ann = server.user("ann").await;
    let c = id(&create(&server, &ann, "Small", "public").await);
    for name in ["bob", "cat", "dan", "eve"] {
        let u = server.user(name).await;
        join(&server, &u, &c).await;
    }
    let fay = server.user("fay").await;
    let (status, body) = server
        .post(
            &format!("/api/communities/{c}/join"),
            Some(&fay.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // Each channel holds every member.
    let (_, room) = server
        .get(
            &format!(
                "/api/rooms/{}",
                channel_named(&server, &ann, &c, "general").await
            ),
            Some(&ann.token),
        )
        .await;
    assert_eq!(room["member_count"], 5);
    assert_eq!(room["members"].as_array().unwrap().len(), 5);
    // The member list pages too: owner first, then by join time, each once.
    let mut names = Vec::new();
    let mut path = format!("/api/communities/{c}/members?limit=2");
    loop {
        let (status, page) = server.get(&path, Some(&ann.token)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page["members"].as_array().unwrap().len() <= 2);
        names.extend(
            page["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["user"]["username"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/communities/{c}/members?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    // (Joins within one second tie on join time; the order among them is the user id's.)
    assert_eq!(names[0], "ann");
    let mut rest = names[1..].to_vec();
    rest.sort();
    assert_eq!(rest, ["bob", "cat", "dan", "eve"]);
    server.stop().await;
}

async fn bad_input_gets_field_errors(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    for (body, field) in [
        (json!({}), "name"),
        (json!({"name": "  "}), "name"),
        (json!({"name": "x".repeat(101)}), "name"),
        (
            json!({"name": "ok", "description": "x".repeat(1001)}),
            "description",
        ),
        (json!({"name": "a\u{7}b"}), "name"),
    ] {
        let (status, resp) = server
            .post("/api/communities", Some(&ann.token), body.clone())
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(resp["error"]["fields"][field].is_string(), "{body}: {resp}");
    }
    let (status, _) = server
        .post(
            "/api/communities",
            Some(&ann.token),
            json!({"name": "ok", "visibility": "secret"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    for query in ["?limit=0", "?limit=201", "?cursor=nope", "?cursor=1.2:x"] {
        let (status, resp) = server
            .get(&format!("/api/communities{query}"), Some(&ann.token))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {resp}");
    }
    let (status, _) = server
        .get("/api/communities?member=nope", Some(&ann.token))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let c = id(&create(&server, &ann, "Rustaceans", "public").await);
    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "ok", "topic": "x".repeat(1001)}), "topic"),
        (
            json!({"name": "ok", "max_participants": 1}),
            "max_participants",
        ),
        (
            json!({"name": "ok", "category": "x".repeat(101)}),
            "category",
        ),
    ] {
        let (status, resp) = server
            .post(
                &format!("/api/communities/{c}/channels"),
                Some(&ann.token),
                body.clone(),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(resp["error"]["fields"][field].is_string(), "{body}: {resp}");
    }
    let (status, _) = server
        .post(
            &format!("/api/communities/{c}/bans"),
            Some(&ann.token),
            json!({"user_id": ann.id}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "no banning yourself");
    server.stop().await;
}

/// Two nodes on one PostgreSQL and one Redis: community events made on one node reach
/// sockets on the other (they ride the hub's user events over the cluster bus).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn community_events_cross_nodes() {
    use signal_server::testing::{clear_redis, redis_prefix, redis_url};
    let redis = redis_url();
    let prefix = redis_prefix();
    let flags = [
        "--redis-url",
        &redis,
        "--redis-prefix",
        &prefix,
        "--jwt-secret",
        "communities-across-nodes-secret-0123456789",
    ];
    let a = TestServer::start_with(Db::Postgres, &flags).await;
    let b = a.another_node(&[]).await;
    for node in [&a, &b] {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let (_, health) = node.get("/readyz", None).await;
            if health["status"] == "ok" {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "a node never got ready"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    let ann = a.user("ann").await;
    let bob = b.user("bob").await;
    let c = id(&create(&a, &ann, "Rustaceans", "public").await);
    let mut ann_ws = a.ws(&ann).await;
    let mut bob_ws = b.ws(&bob).await;

    // Bob joins on B: ann, on A, sees him come in.
    join(&b, &bob, &c).await;
    assert!(matches!(
        next_event(&mut bob_ws).await,
        ServerMsg::CommunityAdded { .. }
    ));
    match next_event(&mut ann_ws).await {
        ServerMsg::CommunityMemberJoined { member, .. } => {
            assert_eq!(member.user.id.to_string(), bob.id);
        }
        other => panic!("expected community_member_joined, got {other:?}"),
    }
    // A channel made on A reaches bob on B; so does its chat.
    let news = id(&create_channel(&a, &ann, &c, json!({"name": "news"})).await);
    match next_event(&mut bob_ws).await {
        ServerMsg::ChannelCreated { channel } => assert_eq!(channel.id.to_string(), news),
        other => panic!("expected channel_created, got {other:?}"),
    }
    a.post_message(&ann, &news, "across").await;
    let msg = bob_ws
        .recv_until(|m| matches!(m, ServerMsg::MessageCreated { .. }))
        .await;
    assert!(matches!(msg, ServerMsg::MessageCreated { message } if message.body == "across"));
    // Kicked on A, bob's socket on B hears it at once.
    let (status, _) = a
        .delete(
            &format!("/api/communities/{c}/members/{}", bob.id),
            Some(&ann.token),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    match next_event(&mut bob_ws).await {
        ServerMsg::CommunityRemoved { reason, .. } => assert_eq!(reason, CommunityExit::Kicked),
        other => panic!("expected community_removed, got {other:?}"),
    }
    b.stop().await;
    a.stop().await;
    clear_redis(&redis, &prefix).await.unwrap();
}
