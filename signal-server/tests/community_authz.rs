//! Who may do what in a community, tried from the outside: every community endpoint,
//! every room endpoint on a channel and every WebSocket room and call message on a
//! channel, as an outsider, a kicked member, a banned user, a member (and owner) of
//! another community, a plain member acting as an admin, and an admin acting as the
//! owner. Each refusal is the exact one (404 where the community or the room is invisible
//! to them, as the rooms code answers, 403 where it is visible), its body is the bare
//! error shape, and nothing of the community reaches their WebSocket, during the tries or
//! while its members go on talking, typing, calling and changing it afterwards.
//! Real server, SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)]

mod common;
mod community;

use common::{Db, TestServer, TestUser, Ws};
use community::{channel_named, create, create_channel, id, join};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared::signal::ServerMsg;
use std::time::Duration;

on_both_databases!(
    an_outsider_finds_nothing,
    a_kicked_member_is_out_at_once,
    a_banned_user_is_out_and_stays_out,
    a_member_of_another_community_cannot_reach_across,
    a_plain_member_cannot_act_as_an_admin,
    an_admin_cannot_act_as_the_owner,
);

/// The text of the private community's secrets: never in anyone else's answers or events.
const SECRET: &str = "secret plans";

/// Two communities of `own`: a private one (P) and a public one (Q), with an admin, a
/// plain member, a kicked and a banned former member, an outsider, and the owner of a
/// third community (O); everyone's WebSocket open.
struct World {
    server: TestServer,
    own: TestUser,
    adm: TestUser,
    mem: TestUser,
    kic: TestUser,
    ban: TestUser,
    out: TestUser,
    oth: TestUser,
    p: Side,
    q: Side,
    o: Side,
    /// The owner's socket, in P's general call.
    own_ws: Ws,
}

/// One community and what is in it.
struct Side {
    id: String,
    general: String,
    news: String,
    /// A message of the owner's in general.
    message: String,
    invite_id: String,
    invite_token: String,
}

impl World {
    async fn new(db: Db) -> Self {
        let server = TestServer::start(db).await;
        let own = server.user("own").await;
        let adm = server.user("adm").await;
        let mem = server.user("mem").await;
        let kic = server.user("kic").await;
        let ban = server.user("ban").await;
        let out = server.user("out").await;
        let oth = server.user("oth").await;
        let p = Side::new(&server, &own, "Private", "private").await;
        let q = Side::new(&server, &own, "Public", "public").await;
        let o = Side::new(&server, &oth, "Elsewhere", "private").await;
        for side in [&p, &q] {
            for u in [&adm, &mem, &kic, &ban] {
                let (status, body) = server
                    .post(
                        &format!("/api/communities/join/{}", side.invite_token),
                        Some(&u.token),
                        json!({}),
                    )
                    .await;
                assert_eq!(status, StatusCode::OK, "{body}");
            }
            let (status, _) = community::patch(
                &server,
                &own,
                &format!("/api/communities/{}/members/{}", side.id, adm.id),
                json!({"role": "admin"}),
            )
            .await;
            assert_eq!(status, StatusCode::OK);
        }
        // The owner and kic are in P's general call when kic is kicked: the call must
        // forget him too.
        let mut own_ws = server.ws(&own).await;
        let mut kic_ws = server.ws(&kic).await;
        for ws in [&mut own_ws, &mut kic_ws] {
            ws.send_json(json!({"type": "join_call", "room_id": p.general}))
                .await;
            ws.recv_until(|m| matches!(m, ServerMsg::CallJoined { .. }))
                .await;
        }
        for side in [&p, &q] {
            let (status, _) = server
                .delete(
                    &format!("/api/communities/{}/members/{}", side.id, kic.id),
                    Some(&own.token),
                )
                .await;
            assert_eq!(status, StatusCode::NO_CONTENT);
            let (status, _) = server
                .post(
                    &format!("/api/communities/{}/bans", side.id),
                    Some(&adm.token),
                    json!({"user_id": ban.id}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED);
        }
        kic_ws
            .recv_until(|m| matches!(m, ServerMsg::CallLeft { .. }))
            .await;
        own_ws.drain().await;
        Self {
            server,
            own,
            adm,
            mem,
            kic,
            ban,
            out,
            oth,
            p,
            q,
            o,
            own_ws,
        }
    }
}

impl Side {
    async fn new(server: &TestServer, owner: &TestUser, name: &str, visibility: &str) -> Self {
        let c = create(server, owner, name, visibility).await;
        let cid = id(&c);
        let general = channel_named(server, owner, &cid, "general").await;
        let news = id(&create_channel(
            server,
            owner,
            &cid,
            json!({"name": "news", "announcement": true}),
        )
        .await);
        let message = server
            .post_message(owner, &general, &format!("{SECRET} of {name}"))
            .await
            .id
            .to_string();
        let (status, invite) = server
            .post(
                &format!("/api/communities/{cid}/invites"),
                Some(&owner.token),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        Self {
            id: cid,
            general,
            news,
            message,
            invite_id: invite["id"].as_str().unwrap().to_owned(),
            invite_token: invite["token"].as_str().unwrap().to_owned(),
        }
    }
}

/// One request to try.
struct Try {
    what: &'static str,
    method: Method,
    path: String,
    body: Option<Value>,
}

fn t(what: &'static str, method: Method, path: String, body: Option<Value>) -> Try {
    Try {
        what,
        method,
        path,
        body,
    }
}

/// What a member of the community may read (and only a member).
fn member_reads(s: &Side) -> Vec<Try> {
    let c = &s.id;
    vec![
        t(
            "list members",
            Method::GET,
            format!("/api/communities/{c}/members"),
            None,
        ),
        t(
            "list channels",
            Method::GET,
            format!("/api/communities/{c}/channels"),
            None,
        ),
    ]
}

/// What only admins (or the owner) may do.
fn admin_actions(w: &World, s: &Side) -> Vec<Try> {
    let c = &s.id;
    vec![
        t(
            "rename",
            Method::PATCH,
            format!("/api/communities/{c}"),
            Some(json!({"name": "pwned"})),
        ),
        t(
            "describe",
            Method::PATCH,
            format!("/api/communities/{c}"),
            Some(json!({"description": "pwned"})),
        ),
        t(
            "create an invite",
            Method::POST,
            format!("/api/communities/{c}/invites"),
            Some(json!({})),
        ),
        t(
            "list invites",
            Method::GET,
            format!("/api/communities/{c}/invites"),
            None,
        ),
        t(
            "revoke an invite",
            Method::DELETE,
            format!("/api/communities/{c}/invites/{}", s.invite_id),
            None,
        ),
        t(
            "kick a member",
            Method::DELETE,
            format!("/api/communities/{c}/members/{}", w.mem.id),
            None,
        ),
        t(
            "list bans",
            Method::GET,
            format!("/api/communities/{c}/bans"),
            None,
        ),
        t(
            "ban a member",
            Method::POST,
            format!("/api/communities/{c}/bans"),
            Some(json!({"user_id": w.mem.id})),
        ),
        t(
            "lift a ban",
            Method::DELETE,
            format!("/api/communities/{c}/bans/{}", w.ban.id),
            None,
        ),
        t(
            "create a channel",
            Method::POST,
            format!("/api/communities/{c}/channels"),
            Some(json!({"name": "pwned"})),
        ),
        t(
            "rename a channel",
            Method::PATCH,
            format!("/api/communities/{c}/channels/{}", s.general),
            Some(json!({"name": "pwned"})),
        ),
        t(
            "open an announcement channel",
            Method::PATCH,
            format!("/api/communities/{c}/channels/{}", s.news),
            Some(json!({"announcement": false})),
        ),
        t(
            "delete a channel",
            Method::DELETE,
            format!("/api/communities/{c}/channels/{}", s.general),
            None,
        ),
        t(
            "reorder channels",
            Method::PUT,
            format!("/api/communities/{c}/channels/order"),
            Some(json!({"channels": [{"channel_id": s.news}, {"channel_id": s.general}]})),
        ),
    ]
}

/// What only the owner may do.
fn owner_actions(w: &World, s: &Side) -> Vec<Try> {
    let c = &s.id;
    vec![
        t(
            "change the visibility",
            Method::PATCH,
            format!("/api/communities/{c}"),
            Some(json!({"visibility": "public"})),
        ),
        t(
            "delete the community",
            Method::DELETE,
            format!("/api/communities/{c}"),
            None,
        ),
        t(
            "make an admin",
            Method::PATCH,
            format!("/api/communities/{c}/members/{}", w.mem.id),
            Some(json!({"role": "admin"})),
        ),
        t(
            "demote an admin",
            Method::PATCH,
            format!("/api/communities/{c}/members/{}", w.adm.id),
            Some(json!({"role": "member"})),
        ),
        t(
            "take the community over",
            Method::PATCH,
            format!("/api/communities/{c}/members/{}", w.mem.id),
            Some(json!({"role": "owner"})),
        ),
        t(
            "kick the owner",
            Method::DELETE,
            format!("/api/communities/{c}/members/{}", w.own.id),
            None,
        ),
        t(
            "ban the owner",
            Method::POST,
            format!("/api/communities/{c}/bans"),
            Some(json!({"user_id": w.own.id})),
        ),
    ]
}

/// Every room endpoint on a channel: for a non-member of the channel, it does not exist.
fn room_actions(s: &Side) -> Vec<Try> {
    let (ch, m) = (&s.general, &s.message);
    vec![
        t(
            "read the room",
            Method::GET,
            format!("/api/rooms/{ch}"),
            None,
        ),
        t(
            "read the timeline",
            Method::GET,
            format!("/api/rooms/{ch}/messages"),
            None,
        ),
        t(
            "read the changes",
            Method::GET,
            format!("/api/rooms/{ch}/changes?since=0"),
            None,
        ),
        t(
            "edit a message",
            Method::PATCH,
            format!("/api/rooms/{ch}/messages/{m}"),
            Some(json!({"body": "pwned"})),
        ),
        t(
            "delete a message",
            Method::DELETE,
            format!("/api/rooms/{ch}/messages/{m}"),
            None,
        ),
        t(
            "react",
            Method::PUT,
            format!("/api/rooms/{ch}/messages/{m}/reactions/%F0%9F%91%8D"),
            None,
        ),
        t(
            "unreact",
            Method::DELETE,
            format!("/api/rooms/{ch}/messages/{m}/reactions/%F0%9F%91%8D"),
            None,
        ),
        t(
            "move the read marker",
            Method::POST,
            format!("/api/rooms/{ch}/read"),
            Some(json!({"seq": 1})),
        ),
        t(
            "mute",
            Method::PATCH,
            format!("/api/rooms/{ch}/settings"),
            Some(json!({"muted": true})),
        ),
        t(
            "join the room",
            Method::POST,
            format!("/api/rooms/{ch}/join"),
            Some(json!({})),
        ),
        t(
            "leave the room",
            Method::POST,
            format!("/api/rooms/{ch}/leave"),
            Some(json!({})),
        ),
        t(
            "invite to the room",
            Method::POST,
            format!("/api/rooms/{ch}/invites"),
            Some(json!({})),
        ),
    ]
}

/// Tries each request as `user` and expects `status` with a bare error body that tells
/// nothing of the community.
async fn refused(w: &World, user: &TestUser, tries: Vec<Try>, status: StatusCode) {
    for one in tries {
        let (got, body) = w
            .server
            .request(
                one.method.clone(),
                &one.path,
                Some(&user.token),
                one.body.clone(),
            )
            .await;
        assert_eq!(
            got, status,
            "{} ({} {} as {}): {body}",
            one.what, one.method, one.path, user.name
        );
        assert_bare_error(&body, one.what);
    }
}

/// Only `{"error": {...}}`, with none of the community's contents.
fn assert_bare_error(body: &Value, what: &str) {
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["error"], "{what}: {body}");
    let text = body.to_string();
    for secret in [SECRET, "Private", "Public", "general", "news"] {
        assert!(!text.contains(secret), "{what} leaked {secret:?}: {body}");
    }
}

/// Sending a message over REST (it needs an Idempotency-Key).
async fn refused_send(w: &World, user: &TestUser, room: &str, status: StatusCode) {
    let (got, body) = w.server.send_message(user, room, "k-authz", "pwned").await;
    assert_eq!(got, status, "send as {}: {body}", user.name);
    assert_bare_error(&body, "send");
}

/// Every room and call message on `room` over the WebSocket: each answered with an
/// error of the given code (`not_found` for room messages from a non-member; relays
/// and call messages from outside the call: `not_in_call`).
async fn ws_refused(ws: &mut Ws, room: &str, to: &str, room_code: &str) {
    let tries = [
        (
            "send_message",
            json!({"type": "send_message", "room_id": room, "client_id": "ws-authz", "body": "pwned"}),
            room_code,
        ),
        (
            "typing",
            json!({"type": "typing", "room_id": room}),
            room_code,
        ),
        (
            "read",
            json!({"type": "read", "room_id": room, "seq": 1}),
            room_code,
        ),
        (
            "delivered",
            json!({"type": "delivered", "room_id": room, "seq": 1}),
            room_code,
        ),
        (
            "join_call",
            json!({"type": "join_call", "room_id": room}),
            room_code,
        ),
        (
            "decline_call",
            json!({"type": "decline_call", "room_id": room}),
            "not_found",
        ),
        (
            "leave_call",
            json!({"type": "leave_call", "room_id": room}),
            "not_in_call",
        ),
        (
            "media_state",
            json!({"type": "media_state", "room_id": room, "audio_muted": true, "video_muted": true}),
            "not_in_call",
        ),
        (
            "offer",
            json!({"type": "offer", "room_id": room, "to": to, "sdp": "v=0"}),
            "not_in_call",
        ),
        (
            "answer",
            json!({"type": "answer", "room_id": room, "to": to, "sdp": "v=0"}),
            "not_in_call",
        ),
        (
            "ice_candidate",
            json!({"type": "ice_candidate", "room_id": room, "to": to, "candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host"}}),
            "not_in_call",
        ),
    ];
    for (i, (kind, mut msg, code)) in tries.into_iter().enumerate() {
        let request_id = 1000 + u64::try_from(i).unwrap();
        msg["request_id"] = json!(request_id);
        ws.send_json(msg).await;
        let reply = ws
            .recv_until(
                |m| matches!(m, ServerMsg::Error { request_id: Some(r), .. } if *r == request_id),
            )
            .await;
        let ServerMsg::Error {
            error, in_reply_to, ..
        } = reply
        else {
            unreachable!()
        };
        let got = serde_json::to_value(error.code).unwrap();
        assert_eq!(got, code, "{kind}: {}", error.message);
        assert_eq!(in_reply_to.as_deref(), Some(kind));
    }
}

/// The members go on: a message and typing in every channel, a call joined, a channel
/// created, the community renamed, a newcomer. `ws` (an outsider's) hears none of it.
async fn hears_nothing(w: &mut World, ws: &mut Ws) {
    for side in [&w.p, &w.q] {
        for room in [&side.general, &side.news] {
            w.server
                .post_message(&w.own, room, &format!("more {SECRET}"))
                .await;
            w.own_ws
                .send_json(json!({"type": "typing", "room_id": room}))
                .await;
        }
        create_channel(&w.server, &w.own, &side.id, json!({"name": "later"})).await;
        community::patch(
            &w.server,
            &w.own,
            &format!("/api/communities/{}", side.id),
            json!({"description": format!("{SECRET} again")}),
        )
        .await;
    }
    let mut adm_ws = w.server.ws(&w.adm).await;
    adm_ws
        .send_json(json!({"type": "join_call", "room_id": w.p.general}))
        .await;
    adm_ws
        .recv_until(|m| matches!(m, ServerMsg::CallJoined { .. }))
        .await;
    let newcomer = w.server.user("new").await;
    join(&w.server, &newcomer, &w.q.id).await;
    // Everything above was sent before this point; give the queues a moment to drain.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(700);
    let forbidden: Vec<String> = [&w.p, &w.q]
        .iter()
        .flat_map(|s| [s.id.clone(), s.general.clone(), s.news.clone()])
        .chain([SECRET.to_owned()])
        .collect();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        let Ok(msg) = tokio::time::timeout(left, ws.recv()).await else {
            break;
        };
        let text = serde_json::to_string(&msg).unwrap();
        for f in &forbidden {
            assert!(
                !text.contains(f.as_str()),
                "leaked on the WebSocket: {text}"
            );
        }
    }
}

/// The community list and lookups as someone outside P: P is nowhere.
async fn p_is_not_listed(w: &World, user: &TestUser) {
    for query in [
        String::new(),
        "?visibility=public".to_owned(),
        "?visibility=private".to_owned(),
        format!("?member={}", w.own.id),
        format!("?member={}&id={}", w.own.id, w.p.id),
        format!("?member={}&visibility=private", w.own.id),
        "?q=private".to_owned(),
    ] {
        let (status, page) = w
            .server
            .get(&format!("/api/communities{query}"), Some(&user.token))
            .await;
        assert_eq!(status, StatusCode::OK, "{query}");
        assert!(
            !page.to_string().contains(&w.p.id),
            "{query} as {} listed the private community: {page}",
            user.name
        );
    }
}

/// What every non-member of P and Q meets: P does not exist; Q is visible but nothing
/// in it is theirs; its channels do not exist for them.
async fn refused_as_outsider(w: &mut World, user: &TestUser, banned: bool) {
    let mut ws = w.server.ws(user).await;
    ws.drain().await;
    p_is_not_listed(w, user).await;

    // P, private: 404 for everything, joining by id included.
    let p = &w.p;
    let mut all = vec![
        t(
            "read the community",
            Method::GET,
            format!("/api/communities/{}", p.id),
            None,
        ),
        t(
            "join by id",
            Method::POST,
            format!("/api/communities/{}/join", p.id),
            Some(json!({})),
        ),
        t(
            "leave",
            Method::POST,
            format!("/api/communities/{}/leave", p.id),
            Some(json!({})),
        ),
    ];
    all.extend(member_reads(p));
    all.extend(admin_actions(w, p));
    all.extend(owner_actions(w, p));
    all.extend(room_actions(p));
    refused(w, user, all, StatusCode::NOT_FOUND).await;
    refused_send(w, user, &p.general, StatusCode::NOT_FOUND).await;

    // Q, public: visible, so its insides answer 403; its channels are rooms they are
    // not in: 404, as the rooms code answers.
    let q = &w.q;
    let (status, seen) = w
        .server
        .get(&format!("/api/communities/{}", q.id), Some(&user.token))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen["my_role"], Value::Null);
    assert_eq!(
        (seen["unread_count"].clone(), seen["mention_count"].clone()),
        (json!(0), json!(0))
    );
    let mut inside = vec![t(
        "leave",
        Method::POST,
        format!("/api/communities/{}/leave", q.id),
        Some(json!({})),
    )];
    inside.extend(member_reads(q));
    inside.extend(admin_actions(w, q));
    inside.extend(owner_actions(w, q));
    refused(w, user, inside, StatusCode::FORBIDDEN).await;
    refused(w, user, room_actions(q), StatusCode::NOT_FOUND).await;
    refused_send(w, user, &q.general, StatusCode::NOT_FOUND).await;
    if banned {
        // Banned: no way back in, by id or by link, to either.
        refused(
            w,
            user,
            vec![
                t(
                    "join by id",
                    Method::POST,
                    format!("/api/communities/{}/join", q.id),
                    Some(json!({})),
                ),
                t(
                    "join by link",
                    Method::POST,
                    format!("/api/communities/join/{}", q.invite_token),
                    Some(json!({})),
                ),
                t(
                    "join by link",
                    Method::POST,
                    format!("/api/communities/join/{}", p.invite_token),
                    Some(json!({})),
                ),
            ],
            StatusCode::FORBIDDEN,
        )
        .await;
    }

    // The WebSocket: every room and call message on both communities' channels.
    // The owner's socket is in P's general call: what a relay would be addressed to.
    let to = w.own_ws.participant.clone();
    for room in [w.p.general.clone(), w.q.general.clone(), w.p.news.clone()] {
        ws_refused(&mut ws, &room, &to, "not_found").await;
    }
    hears_nothing(w, &mut ws).await;
}

async fn an_outsider_finds_nothing(db: Db) {
    let mut w = World::new(db).await;
    let out = w.out.clone();
    refused_as_outsider(&mut w, &out, false).await;
    w.server.stop().await;
}

async fn a_kicked_member_is_out_at_once(db: Db) {
    let mut w = World::new(db).await;
    let kic = w.kic.clone();
    refused_as_outsider(&mut w, &kic, false).await;
    // What he can still do: join the public one again (a kick is not a ban).
    join(&w.server, &kic, &w.q.id).await;
    w.server.stop().await;
}

async fn a_banned_user_is_out_and_stays_out(db: Db) {
    let mut w = World::new(db).await;
    let ban = w.ban.clone();
    refused_as_outsider(&mut w, &ban, true).await;
    // The refused links were not used up by the tries.
    let (_, invites) = w
        .server
        .get(
            &format!("/api/communities/{}/invites", w.q.id),
            Some(&w.own.token),
        )
        .await;
    let uses: Vec<Value> = invites
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["uses"].clone())
        .collect();
    assert_eq!(
        uses,
        [json!(4)],
        "the four who joined by it in the set-up, no more"
    );
    w.server.stop().await;
}

async fn a_member_of_another_community_cannot_reach_across(db: Db) {
    let mut w = World::new(db).await;
    let oth = w.oth.clone();
    refused_as_outsider(&mut w, &oth, false).await;
    // As the owner of O, he names P's channels and members through O: none is O's.
    let (o, p) = (&w.o, &w.p);
    refused(
        &w,
        &oth,
        vec![
            t(
                "rename P's channel via O",
                Method::PATCH,
                format!("/api/communities/{}/channels/{}", o.id, p.general),
                Some(json!({"name": "pwned"})),
            ),
            t(
                "delete P's channel via O",
                Method::DELETE,
                format!("/api/communities/{}/channels/{}", o.id, p.general),
                None,
            ),
            t(
                "kick P's member via O",
                Method::DELETE,
                format!("/api/communities/{}/members/{}", o.id, w.mem.id),
                None,
            ),
            t(
                "promote P's member via O",
                Method::PATCH,
                format!("/api/communities/{}/members/{}", o.id, w.mem.id),
                Some(json!({"role": "admin"})),
            ),
            t(
                "revoke P's invite via O",
                Method::DELETE,
                format!("/api/communities/{}/invites/{}", o.id, p.invite_id),
                None,
            ),
            t(
                "lift P's ban via O",
                Method::DELETE,
                format!("/api/communities/{}/bans/{}", o.id, w.ban.id),
                None,
            ),
        ],
        StatusCode::NOT_FOUND,
    )
    .await;
    let (status, body) = community::put(
        &w.server,
        &oth,
        &format!("/api/communities/{}/channels/order", o.id),
        json!({"channels": [{"channel_id": o.general}, {"channel_id": o.news}, {"channel_id": p.general}]}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // P's channel is untouched and still P's.
    let (_, channels) = w
        .server
        .get(
            &format!("/api/communities/{}/channels", p.id),
            Some(&w.own.token),
        )
        .await;
    assert!(channels.to_string().contains(&p.general));
    assert_eq!(channels[0]["name"], "general");
    w.server.stop().await;
}

async fn a_plain_member_cannot_act_as_an_admin(db: Db) {
    let w = World::new(db).await;
    let mem = w.mem.clone();
    let mut ws = w.server.ws(&mem).await;
    ws.drain().await;
    for side in [&w.p, &w.q] {
        let mut tries = admin_actions(&w, side);
        tries.extend(owner_actions(&w, side));
        tries.retain(|t| {
            !t.path.ends_with(&format!("/members/{}", mem.id)) || t.method == Method::PATCH
        });
        tries.push(t(
            "kick an admin",
            Method::DELETE,
            format!("/api/communities/{}/members/{}", side.id, w.adm.id),
            None,
        ));
        refused(&w, &mem, tries, StatusCode::FORBIDDEN).await;
        // The room endpoints for groups do not manage a channel for anyone.
        refused(
            &w,
            &mem,
            vec![
                t(
                    "rename the channel as a room",
                    Method::PATCH,
                    format!("/api/rooms/{}", side.general),
                    Some(json!({"title": "pwned"})),
                ),
                t(
                    "delete the channel as a room",
                    Method::DELETE,
                    format!("/api/rooms/{}", side.general),
                    None,
                ),
                t(
                    "add a room member",
                    Method::POST,
                    format!("/api/rooms/{}/members", side.general),
                    Some(json!({"user_id": w.out.id})),
                ),
                t(
                    "remove a room member",
                    Method::DELETE,
                    format!("/api/rooms/{}/members/{}", side.general, w.adm.id),
                    None,
                ),
                t(
                    "leave the channel as a room",
                    Method::POST,
                    format!("/api/rooms/{}/leave", side.general),
                    Some(json!({})),
                ),
                t(
                    "invite to the channel as a room",
                    Method::POST,
                    format!("/api/rooms/{}/invites", side.general),
                    Some(json!({})),
                ),
            ],
            StatusCode::CONFLICT,
        )
        .await;
        // Moderation is for admins: not someone else's message, not the announcements.
        refused(
            &w,
            &mem,
            vec![
                t(
                    "delete the owner's message",
                    Method::DELETE,
                    format!("/api/rooms/{}/messages/{}", side.general, side.message),
                    None,
                ),
                t(
                    "edit the owner's message",
                    Method::PATCH,
                    format!("/api/rooms/{}/messages/{}", side.general, side.message),
                    Some(json!({"body": "pwned"})),
                ),
            ],
            StatusCode::FORBIDDEN,
        )
        .await;
        refused_send(&w, &mem, &side.news, StatusCode::FORBIDDEN).await;
        let with_everyone = w
            .server
            .post_message(&mem, &side.general, "@everyone look")
            .await;
        assert!(with_everyone.mentions.is_empty());
        assert!(!with_everyone.mentions_everyone);
    }
    // On the socket too, the announcement channel refuses him.
    ws.send_json(json!({"type": "send_message", "room_id": w.p.news, "client_id": "ws-news", "body": "pwned", "request_id": 7}))
        .await;
    let reply = ws
        .recv_until(|m| {
            matches!(
                m,
                ServerMsg::Error {
                    request_id: Some(7),
                    ..
                }
            )
        })
        .await;
    let ServerMsg::Error { error, .. } = reply else {
        unreachable!()
    };
    assert_eq!(serde_json::to_value(error.code).unwrap(), "forbidden");
    // Nothing he tried happened.
    let (_, channels) = w
        .server
        .get(
            &format!("/api/communities/{}/channels", w.p.id),
            Some(&w.own.token),
        )
        .await;
    let names: Vec<Value> = channels
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(names, [json!("general"), json!("news")]);
    let (_, seen) = w
        .server
        .get(&format!("/api/communities/{}", w.p.id), Some(&w.own.token))
        .await;
    assert_eq!(
        (seen["name"].clone(), seen["member_count"].clone()),
        (json!("Private"), json!(3))
    );
    let (_, bans) = w
        .server
        .get(
            &format!("/api/communities/{}/bans", w.p.id),
            Some(&w.own.token),
        )
        .await;
    assert_eq!(bans.as_array().unwrap().len(), 1);
    w.server.stop().await;
}

async fn an_admin_cannot_act_as_the_owner(db: Db) {
    let w = World::new(db).await;
    let adm = w.adm.clone();
    for side in [&w.p, &w.q] {
        let tries: Vec<Try> = owner_actions(&w, side);
        refused(&w, &adm, tries, StatusCode::FORBIDDEN).await;
    }
    let (_, seen) = w
        .server
        .get(&format!("/api/communities/{}", w.p.id), Some(&w.own.token))
        .await;
    assert_eq!(
        (seen["owner_id"].clone(), seen["visibility"].clone()),
        (json!(w.own.id), json!("private"))
    );
    w.server.stop().await;
}
