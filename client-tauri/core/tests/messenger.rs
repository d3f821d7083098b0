//! The messenger through `Connection` against a real server: contacts and a direct room
//! made through the connection's API, messages seen as events, unread counts and read
//! markers across two devices of one user, the outbox across a server restart and
//! across a process restart (each message stored once, with the key made before the
//! first attempt), catch-up of a client that was offline while another user wrote,
//! edited, deleted and reacted in several rooms, typing and presence events, and ringing
//! calls that run on the connection's socket.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Db, PASSWORD, TestServer, on_both_databases, unique};
use confab_core::api::{ApiClient, PageAnchor};
use confab_core::call::{CallConfig, CallEvent};
use confab_core::connection::{Connection, ConnectionConfig, ConnectionEvent};
use confab_core::keystore::MemoryStore;
use confab_core::outbox::{Outbox, RetryPolicy};
use confab_core::signaling::SignalingConfig;
use shared::api::{
    ContactRequestStatus, CreateRoomRequest, Me, Message, PresenceStatus, RegisterRequest,
    SendMessageRequest,
};
use shared::signal::{OwnPresence, RingEnd};
use shared::{RoomId, UserId};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

on_both_databases!(
    two_users_become_contacts_and_talk_in_their_direct_room,
    unread_counts_and_read_markers_follow_across_two_devices,
    messages_written_while_the_server_is_down_are_delivered_once_when_it_is_back,
    a_reopened_outbox_resends_pending_messages_with_their_keys,
    an_offline_client_comes_back_with_exactly_the_servers_state,
    typing_and_presence_reach_the_other_side,
    a_ring_is_declined_then_answered_on_the_connections_own_sockets,
);

const WAIT: Duration = Duration::from_secs(20);

async fn server(db: Db) -> TestServer {
    TestServer::start_with(db, &["--message-rate", "100000", "--ws-rate", "100000"]).await
}

/// A registered, signed-in user talking to `base`.
async fn sign_up(server: &TestServer, base: &str, prefix: &str) -> (ApiClient, Me) {
    let api = ApiClient::new(base, Arc::new(MemoryStore::new())).unwrap();
    let name = unique(prefix);
    api.register(&RegisterRequest {
        username: name.clone(),
        email: format!("{name}@example.com"),
        password: PASSWORD.to_owned(),
        confirm_password: PASSWORD.to_owned(),
    })
    .await
    .unwrap();
    let me = api.login(&name, PASSWORD).await.unwrap();
    let _ = server;
    (api, me)
}

/// Another client of an existing account (a second device).
async fn second_device(base: &str, me: &Me) -> ApiClient {
    let api = ApiClient::new(base, Arc::new(MemoryStore::new())).unwrap();
    api.login(&me.username, PASSWORD).await.unwrap();
    api
}

fn outbox_path() -> PathBuf {
    std::env::temp_dir().join(format!(
        "confab-outbox-test-{}.sqlite",
        uuid::Uuid::new_v4()
    ))
}

/// Fast retries, so the tests do not wait out production backoffs.
fn config(api: &ApiClient, outbox: PathBuf) -> ConnectionConfig {
    let mut signaling = SignalingConfig::new(api.ws_url().to_string());
    signaling.min_backoff = Duration::from_millis(100);
    signaling.max_backoff = Duration::from_millis(500);
    let mut config = ConnectionConfig::new(outbox);
    config.signaling = Some(signaling);
    config.retry = RetryPolicy {
        min_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(500),
    };
    config.resync_retry = RetryPolicy {
        min_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
    };
    config
}

async fn open(
    api: &ApiClient,
    outbox: PathBuf,
) -> (Connection, broadcast::Receiver<ConnectionEvent>) {
    let (conn, events) = Connection::open(api.clone(), config(api, outbox))
        .await
        .unwrap();
    tokio::time::timeout(WAIT, conn.wait_synced())
        .await
        .expect("the first resync finishes");
    (conn, events)
}

/// The first event `pick` accepts.
async fn next<T>(
    events: &mut broadcast::Receiver<ConnectionEvent>,
    what: &str,
    mut pick: impl FnMut(ConnectionEvent) -> Option<T>,
) -> T {
    let found = tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let Some(found) = pick(event) {
                        return found;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => {
                    panic!("events ended waiting for {what}")
                }
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("no {what} within {WAIT:?}"))
}

/// Waits until `check` holds.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Makes two users contacts over REST.
async fn befriend(a: &ApiClient, b: &ApiClient, b_id: UserId) {
    a.send_contact_request(b_id).await.unwrap();
    let requests = b.contact_requests().await.unwrap();
    b.accept_contact_request(requests.incoming[0].id)
        .await
        .unwrap();
}

/// Every message of a room as the server holds it, paged from the start.
async fn server_messages(api: &ApiClient, room: RoomId) -> Vec<Message> {
    let mut all: Vec<Message> = Vec::new();
    let mut after = 0;
    loop {
        let page = api
            .messages(room, PageAnchor::After(after), Some(100))
            .await
            .unwrap();
        let more = page.has_more_after;
        if let Some(last) = page.messages.last() {
            after = last.seq;
        }
        all.extend(page.messages);
        if !more {
            return all;
        }
    }
}

async fn two_users_become_contacts_and_talk_in_their_direct_room(db: Db) {
    let server = server(db).await;
    let (alice_api, alice) = sign_up(&server, &server.base, "alice").await;
    let (bob_api, bob) = sign_up(&server, &server.base, "bob").await;
    let (a, mut a_events) = open(&alice_api, outbox_path()).await;
    let (b, mut b_events) = open(&bob_api, outbox_path()).await;

    // Alice finds Bob by name and asks; Bob sees the request and accepts.
    let bob_id = a.resolve_user(&bob.username).await.unwrap();
    assert_eq!(bob_id, bob.id);
    let outcome = a.add_contact(bob_id).await.unwrap();
    assert_eq!(outcome.status, ContactRequestStatus::Pending);
    let request = next(&mut b_events, "the contact request", |e| match e {
        ConnectionEvent::ContactRequest(r) if r.from.id == alice.id => Some(r),
        _ => None,
    })
    .await;
    assert_eq!(b.requests().incoming.len(), 1);
    b.accept_request(request.id).await.unwrap();
    next(&mut a_events, "Bob as a contact", |e| match e {
        ConnectionEvent::ContactAdded(c) if c.user.id == bob.id => Some(()),
        _ => None,
    })
    .await;
    assert!(a.requests().outgoing.is_empty());
    assert_eq!(b.contacts()[0].user.id, alice.id);

    // The direct room appears on both sides.
    let room = a.open_direct(bob.id).await.unwrap().id;
    next(&mut b_events, "the direct room", |e| match e {
        ConnectionEvent::RoomAdded(r) if r.room.id == room => Some(()),
        _ => None,
    })
    .await;

    let sent = a.send_message(room, "hi Bob", None).await.unwrap();
    assert_eq!((sent.seq, sent.author), (1, Some(alice.id)));
    let got = next(&mut b_events, "Alice's message", |e| match e {
        ConnectionEvent::MessageCreated(m) if m.room_id == room => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(got, sent);
    assert_eq!(b.room(room).unwrap().unread_count, 1);
    // Bob's device says it got it.
    let delivered = next(&mut a_events, "Bob's delivery receipt", |e| match e {
        ConnectionEvent::Delivered {
            room_id,
            user_id,
            seq,
        } if room_id == room && user_id == bob.id => Some(seq),
        _ => None,
    })
    .await;
    assert_eq!(delivered, 1);
    assert_eq!(a.delivered_markers(room).get(&bob.id), Some(&1));

    let reply = b
        .send_message(room, "hello Alice", Some(sent.id))
        .await
        .unwrap();
    let got = next(&mut a_events, "Bob's reply", |e| match e {
        ConnectionEvent::MessageCreated(m) if m.room_id == room && m.seq == 2 => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(
        (got.body.as_str(), got.reply_to),
        ("hello Alice", Some(sent.id))
    );
    assert_eq!(got, reply);
    // Bob's own reply moved his read marker past Alice's message.
    eventually("Bob has nothing unread", || async {
        b.room(room).unwrap().unread_count == 0
    })
    .await;
    assert_eq!(a.room(room).unwrap().unread_count, 1);
    assert_eq!(a.messages(room), vec![sent.clone(), reply.clone()]);
    let preview = a.room(room).unwrap().last_message.unwrap();
    assert_eq!(
        (preview.seq, preview.author.map(|u| u.id)),
        (2, Some(bob.id))
    );

    // Edits, reactions and deletions arrive as events too.
    b.edit_message(room, reply.id, "hello, Alice")
        .await
        .unwrap();
    let edited = next(&mut a_events, "the edit", |e| match e {
        ConnectionEvent::MessageUpdated(m) if m.id == reply.id => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(edited.body, "hello, Alice");
    a.react(room, reply.id, "👍").await.unwrap();
    let reactions = next(&mut b_events, "the reaction", |e| match e {
        ConnectionEvent::ReactionChanged {
            message_id,
            reactions,
            ..
        } if message_id == reply.id => Some(reactions),
        _ => None,
    })
    .await;
    assert_eq!(reactions[0].users, vec![alice.id]);
    a.delete_message(room, sent.id).await.unwrap();
    let tombstone = next(&mut b_events, "the deletion", |e| match e {
        ConnectionEvent::MessageDeleted(m) if m.id == sent.id => Some(m),
        _ => None,
    })
    .await;
    assert!(tombstone.deleted && tombstone.body.is_empty());
    for conn in [&a, &b] {
        eventually("both models match the server", || async {
            conn.messages(room) == server_messages(&alice_api, room).await
        })
        .await;
    }
    a.close().await;
    b.close().await;
}

async fn unread_counts_and_read_markers_follow_across_two_devices(db: Db) {
    let server = server(db).await;
    let (alice_api, alice) = sign_up(&server, &server.base, "alice").await;
    let (bob_api, bob) = sign_up(&server, &server.base, "bob").await;
    befriend(&alice_api, &bob_api, bob.id).await;
    let room = alice_api.open_direct(bob.id).await.unwrap().id;
    let bob_phone = second_device(&server.base, &bob).await;
    let (laptop, _laptop_events) = open(&bob_api, outbox_path()).await;
    let (phone, _phone_events) = open(&bob_phone, outbox_path()).await;
    let (a, _a_events) = open(&alice_api, outbox_path()).await;

    for text in ["one", "two", "three"] {
        a.send_message(room, text, None).await.unwrap();
    }
    for device in [&laptop, &phone] {
        eventually("three unread on each device", || async {
            device.room(room).is_some_and(|r| r.unread_count == 3)
        })
        .await;
    }

    // Reading on the laptop updates the phone.
    laptop.mark_read(room, 2).await.unwrap();
    assert_eq!(laptop.room(room).unwrap().unread_count, 1);
    eventually("the phone follows the laptop's marker", || async {
        phone
            .room(room)
            .is_some_and(|r| r.last_read_seq == 2 && r.unread_count == 1)
    })
    .await;
    phone.mark_read(room, 3).await.unwrap();
    eventually("the laptop follows the phone's marker", || async {
        laptop
            .room(room)
            .is_some_and(|r| r.last_read_seq == 3 && r.unread_count == 0)
    })
    .await;
    // Alice sees the receipt; the server agrees with every device.
    eventually("Alice sees Bob's receipt", || async {
        a.read_markers(room).get(&bob.id) == Some(&3)
    })
    .await;
    let server_view = bob_api.room_summaries().await.unwrap();
    let summary = server_view.iter().find(|r| r.room.id == room).unwrap();
    assert_eq!((summary.unread_count, summary.last_read_seq), (0, 3));
    assert_eq!(
        a.room(room).unwrap().unread_count,
        0,
        "Alice's own messages never count"
    );
    let _ = alice;
    for conn in [a, laptop, phone] {
        conn.close().await;
    }
}

async fn messages_written_while_the_server_is_down_are_delivered_once_when_it_is_back(db: Db) {
    let mut server = server(db).await;
    let (alice_api, _alice) = sign_up(&server, &server.base, "alice").await;
    let (bob_api, bob) = sign_up(&server, &server.base, "bob").await;
    befriend(&alice_api, &bob_api, bob.id).await;
    let room = alice_api.open_direct(bob.id).await.unwrap().id;
    let (a, mut events) = open(&alice_api, outbox_path()).await;

    server.stop().await;
    next(&mut events, "the disconnect", |e| {
        matches!(e, ConnectionEvent::Disconnected { .. }).then_some(())
    })
    .await;
    let mut keys = Vec::new();
    for text in ["first", "second", "third"] {
        keys.push(a.queue_message(room, text, None).await.unwrap().client_id);
    }
    // Retries fail while the server is down; the messages wait.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pending = a.pending_messages().await.unwrap();
    assert_eq!(
        pending.iter().map(|p| &p.client_id).collect::<Vec<_>>(),
        keys.iter().collect::<Vec<_>>()
    );
    assert!(pending[0].attempts >= 1);

    server.start_again().await;
    for key in &keys {
        next(&mut events, "a delivery", |e| match e {
            ConnectionEvent::MessageSent { client_id, .. } if client_id == *key => Some(()),
            _ => None,
        })
        .await;
    }
    assert!(a.pending_messages().await.unwrap().is_empty());
    let stored = server_messages(&bob_api, room).await;
    let bodies: Vec<&str> = stored.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["first", "second", "third"], "in order, each once");
    let stored_keys: Vec<String> = stored.iter().filter_map(|m| m.client_id.clone()).collect();
    assert_eq!(
        stored_keys, keys,
        "each with the key made before the first attempt"
    );
    eventually("the model has them", || async {
        a.messages(room).len() == 3
    })
    .await;
    a.close().await;
}

async fn a_reopened_outbox_resends_pending_messages_with_their_keys(db: Db) {
    let mut server = server(db).await;
    let (alice_api, alice) = sign_up(&server, &server.base, "alice").await;
    let (bob_api, bob) = sign_up(&server, &server.base, "bob").await;
    befriend(&alice_api, &bob_api, bob.id).await;
    let room = alice_api.open_direct(bob.id).await.unwrap().id;
    let path = outbox_path();

    // A message whose first attempt reached the server but whose answer was lost: it
    // is still in the outbox when the app starts again.
    let outbox = Outbox::open(&path).await.unwrap();
    let lost_ack = outbox
        .enqueue(alice.id, room, "stored, ack lost", None)
        .await
        .unwrap();
    outbox.close().await;
    let (first, created) = alice_api
        .send_message(
            room,
            &lost_ack.client_id,
            &SendMessageRequest {
                body: lost_ack.body.clone(),
                reply_to: None,
                attachments: Vec::new(),
            },
        )
        .await
        .unwrap();
    assert!(created);

    // And one written while the server was down, by a connection that then closed.
    let (a, mut events) = open(&alice_api, path.clone()).await;
    let replayed = next(&mut events, "the replayed first message", |e| match e {
        ConnectionEvent::MessageSent { client_id, message } if client_id == lost_ack.client_id => {
            Some(message)
        }
        _ => None,
    })
    .await;
    assert_eq!(
        replayed, first,
        "the server answered the retry with the original"
    );
    server.stop().await;
    let offline = a
        .queue_message(room, "written offline", None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.close().await;
    server.start_again().await;

    let (a, mut events) = Connection::open(alice_api.clone(), config(&alice_api, path.clone()))
        .await
        .unwrap();
    next(
        &mut events,
        "the offline message, resent after the restart",
        |e| match e {
            ConnectionEvent::MessageSent { client_id, .. } if client_id == offline.client_id => {
                Some(())
            }
            _ => None,
        },
    )
    .await;
    let stored = server_messages(&bob_api, room).await;
    let keys: Vec<Option<String>> = stored.iter().map(|m| m.client_id.clone()).collect();
    assert_eq!(keys, [Some(lost_ack.client_id), Some(offline.client_id)]);
    assert!(a.pending_messages().await.unwrap().is_empty());
    a.close().await;
}

/// A TCP forwarder that can be unplugged, to take one client offline while the server
/// and everyone else stay up.
struct Cable {
    addr: std::net::SocketAddr,
    plugged: Arc<AtomicBool>,
    cut: Arc<std::sync::Mutex<CancellationToken>>,
    task: tokio::task::JoinHandle<()>,
}

impl Cable {
    async fn to(target: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let plugged = Arc::new(AtomicBool::new(true));
        let cut = Arc::new(std::sync::Mutex::new(CancellationToken::new()));
        let task = tokio::spawn({
            let (plugged, cut) = (plugged.clone(), cut.clone());
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !plugged.load(Ordering::SeqCst) {
                        continue;
                    }
                    let cut = cut.lock().unwrap().clone();
                    tokio::spawn(async move {
                        let Ok(mut outbound) = TcpStream::connect(target).await else {
                            return;
                        };
                        tokio::select! {
                            () = cut.cancelled() => {}
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        }
                    });
                }
            }
        });
        Self {
            addr,
            plugged,
            cut,
            task,
        }
    }

    fn unplug(&self) {
        self.plugged.store(false, Ordering::SeqCst);
        let mut cut = self.cut.lock().unwrap();
        cut.cancel();
        *cut = CancellationToken::new();
    }

    fn plug(&self) {
        self.plugged.store(true, Ordering::SeqCst);
    }
}

impl Drop for Cable {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn an_offline_client_comes_back_with_exactly_the_servers_state(db: Db) {
    let server = server(db).await;
    let cable = Cable::to(server.addr).await;
    let via_cable = format!("http://{}", cable.addr);
    let (alice_api, alice) = sign_up(&server, &via_cable, "alice").await;
    let (bob_api, bob) = sign_up(&server, &server.base, "bob").await;
    befriend(&alice_api, &bob_api, bob.id).await;
    let mut rooms = vec![bob_api.open_direct(alice.id).await.unwrap().id];
    for i in 0..9 {
        let title = format!("group {i}");
        let room = bob_api
            .create_room(&CreateRoomRequest {
                title,
                max_participants: None,
            })
            .await
            .unwrap();
        bob_api.add_member(room.id, alice.id).await.unwrap();
        rooms.push(room.id);
    }
    // Small catch-up pages, so a message changed again later shows up on a later page.
    let mut small_pages = config(&alice_api, outbox_path());
    small_pages.changes_page = Some(7);
    let (a, mut events) = Connection::open(alice_api.clone(), small_pages)
        .await
        .unwrap();
    tokio::time::timeout(WAIT, a.wait_synced()).await.unwrap();
    for room in &rooms {
        assert!(a.room(*room).is_some(), "Alice knows every room");
    }
    // A little live traffic first.
    let hello = bob_api
        .send_message(
            rooms[0],
            "hello-live",
            &SendMessageRequest {
                body: "before the cut".into(),
                reply_to: None,
                attachments: Vec::new(),
            },
        )
        .await
        .unwrap()
        .0;
    next(&mut events, "the live message", |e| match e {
        ConnectionEvent::MessageCreated(m) if m.id == hello.id => Some(()),
        _ => None,
    })
    .await;

    cable.unplug();
    next(&mut events, "the disconnect", |e| {
        matches!(e, ConnectionEvent::Disconnected { .. }).then_some(())
    })
    .await;
    let resyncs = a.resyncs();
    // Alice writes while offline; it waits in her outbox.
    a.queue_message(rooms[1], "written on the train", None)
        .await
        .unwrap();

    // Meanwhile Bob writes, edits, deletes and reacts in every room.
    let mut sent: Vec<Message> = Vec::new();
    for i in 0..500 {
        let room = rooms[i % rooms.len()];
        let (m, _) = bob_api
            .send_message(
                room,
                &format!("k{i}"),
                &SendMessageRequest {
                    body: format!("message {i}"),
                    reply_to: None,
                    attachments: Vec::new(),
                },
            )
            .await
            .unwrap();
        sent.push(m);
    }
    for (i, m) in sent.iter().enumerate() {
        match i % 6 {
            0 => {
                bob_api
                    .edit_message(m.room_id, m.id, "edited")
                    .await
                    .unwrap();
            }
            1 => {
                bob_api.delete_message(m.room_id, m.id).await.unwrap();
            }
            2 => {
                bob_api.react(m.room_id, m.id, "🎉", true).await.unwrap();
            }
            3 => {
                bob_api.react(m.room_id, m.id, "👍", true).await.unwrap();
                bob_api.react(m.room_id, m.id, "👍", false).await.unwrap();
                bob_api
                    .edit_message(m.room_id, m.id, "edited twice")
                    .await
                    .unwrap();
                bob_api.delete_message(m.room_id, m.id).await.unwrap();
            }
            _ => {}
        }
    }
    bob_api.react(rooms[0], hello.id, "❤️", true).await.unwrap();

    cable.plug();
    tokio::time::timeout(WAIT, a.wait_synced_past(resyncs))
        .await
        .expect("a resync after reconnecting");
    eventually("the outbox is empty", || async {
        a.pending_messages().await.unwrap().is_empty()
    })
    .await;
    let summaries = alice_api.room_summaries().await.unwrap();
    for room in &rooms {
        let server_view = server_messages(&alice_api, *room).await;
        eventually("Alice's model equals the server's timeline", || async {
            a.messages(*room) == server_messages(&alice_api, *room).await
        })
        .await;
        assert_eq!(a.messages(*room), server_view);
        let mine = a.room(*room).unwrap();
        let theirs = summaries.iter().find(|s| s.room.id == *room).unwrap();
        assert_eq!(
            (mine.unread_count, mine.last_read_seq, mine.last_seq),
            (theirs.unread_count, theirs.last_read_seq, theirs.last_seq),
            "counts and markers match the server's"
        );
        assert_eq!(
            mine.last_message.as_ref().map(|p| p.message_id),
            theirs.last_message.as_ref().map(|p| p.message_id)
        );
        assert_eq!(a.cursor(*room), Some(theirs.rev));
    }
    a.close().await;
}

async fn typing_and_presence_reach_the_other_side(db: Db) {
    let server = server(db).await;
    let (alice_api, alice) = sign_up(&server, &server.base, "alice").await;
    let (bob_api, bob) = sign_up(&server, &server.base, "bob").await;
    befriend(&alice_api, &bob_api, bob.id).await;
    let room = alice_api.open_direct(bob.id).await.unwrap().id;
    let (b, mut b_events) = open(&bob_api, outbox_path()).await;
    let (a, _a_events) = open(&alice_api, outbox_path()).await;
    next(&mut b_events, "Alice online", |e| match e {
        ConnectionEvent::Presence {
            user_id,
            status: PresenceStatus::Online,
        } if user_id == alice.id => Some(()),
        _ => None,
    })
    .await;

    assert!(a.typing(room).unwrap());
    assert!(!a.typing(room).unwrap(), "at most every 3 s");
    next(&mut b_events, "Alice typing", |e| match e {
        ConnectionEvent::Typing {
            user_id,
            typing: true,
            ..
        } if user_id == alice.id => Some(()),
        _ => None,
    })
    .await;
    assert_eq!(b.typing_in(room), [alice.id]);
    a.send_message(room, "done typing", None).await.unwrap();
    next(&mut b_events, "Alice stopped typing", |e| match e {
        ConnectionEvent::Typing {
            user_id,
            typing: false,
            ..
        } if user_id == alice.id => Some(()),
        _ => None,
    })
    .await;
    assert!(b.typing_in(room).is_empty());

    a.set_presence(OwnPresence::Idle).unwrap();
    next(&mut b_events, "Alice idle", |e| match e {
        ConnectionEvent::Presence {
            user_id,
            status: PresenceStatus::Idle,
        } if user_id == alice.id => Some(()),
        _ => None,
    })
    .await;
    assert_eq!(b.presence(alice.id), PresenceStatus::Idle);
    assert_eq!(b.contacts()[0].presence, PresenceStatus::Idle);
    a.close().await;
    next(&mut b_events, "Alice offline", |e| match e {
        ConnectionEvent::Presence {
            user_id,
            status: PresenceStatus::Offline,
        } if user_id == alice.id => Some(()),
        _ => None,
    })
    .await;
    assert_eq!(
        b.room(room).unwrap().other_presence,
        Some(PresenceStatus::Offline)
    );
    b.close().await;
}

/// An audio call with a tone, on loopback.
fn audio_call(room: RoomId) -> CallConfig {
    let mut config = CallConfig::synthetic(room);
    config.video = None;
    config.udp_addrs = vec!["127.0.0.1:0".to_owned()];
    config
}

async fn a_ring_is_declined_then_answered_on_the_connections_own_sockets(db: Db) {
    let server = server(db).await;
    let (alice_api, alice) = sign_up(&server, &server.base, "alice").await;
    let (bob_api, bob) = sign_up(&server, &server.base, "bob").await;
    befriend(&alice_api, &bob_api, bob.id).await;
    let (a, mut a_events) = open(&alice_api, outbox_path()).await;
    let (b, mut b_events) = open(&bob_api, outbox_path()).await;

    let (room, call, _calls) = a.ring(bob.id, audio_call(RoomId::new())).await.unwrap();
    let ring = next(&mut b_events, "the ring", |e| match e {
        ConnectionEvent::CallRinging(r) if r.room_id == room => Some(r),
        _ => None,
    })
    .await;
    assert_eq!((ring.from, ring.video), (alice.id, false), "an audio call");
    assert_eq!(b.ringing().len(), 1);
    b.decline(room).unwrap();
    let by = next(&mut a_events, "the decline", |e| match e {
        ConnectionEvent::CallDeclined { room_id, by } if room_id == room => Some(by),
        _ => None,
    })
    .await;
    assert_eq!(by, bob.id);
    call.leave().await;

    let (again, call, mut calls) = a.ring(bob.id, audio_call(RoomId::new())).await.unwrap();
    assert_eq!(again, room, "one direct room per pair");
    next(&mut b_events, "the second ring", |e| match e {
        ConnectionEvent::CallRinging(r) if r.room_id == room => Some(()),
        _ => None,
    })
    .await;
    let (answered, mut answered_events) = b.answer(room, audio_call(room)).unwrap();
    let others = loop {
        match tokio::time::timeout(WAIT, answered_events.recv())
            .await
            .unwrap()
        {
            Some(CallEvent::Joined { participants, .. }) => break participants,
            Some(_) => {}
            None => panic!("the answering call ended"),
        }
    };
    assert_eq!(
        others.iter().map(|p| p.user_id).collect::<Vec<_>>(),
        [alice.id]
    );
    loop {
        match tokio::time::timeout(WAIT, calls.recv()).await.unwrap() {
            Some(CallEvent::ParticipantJoined(p)) if p.user_id == bob.id => break,
            Some(_) => {}
            None => panic!("the calling call ended"),
        }
    }
    let reason = next(&mut b_events, "the ring stopping", |e| match e {
        ConnectionEvent::CallRingStopped { room_id, reason } if room_id == room => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, RingEnd::Answered);
    assert!(b.ringing().is_empty());

    // Chat goes on over the same sockets during the call.
    let sent = a
        .send_message(room, "can you hear me?", None)
        .await
        .unwrap();
    next(&mut b_events, "a message during the call", |e| match e {
        ConnectionEvent::MessageCreated(m) if m.id == sent.id => Some(()),
        _ => None,
    })
    .await;
    answered.leave().await;
    call.leave().await;
    a.close().await;
    b.close().await;
}
