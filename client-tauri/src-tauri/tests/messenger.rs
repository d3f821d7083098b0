//! The desktop shell's messenger layer against a real server (SQLite; the Connection
//! under it runs on both databases in confab-core's own suite): A signs up through the
//! app's session, which opens the messenger; B is another person on a plain
//! confab-core Connection. The story: a contact request reaches A as an event and a
//! notice, A accepts; B writes, A's rail shows the unread count and a notice asks for a
//! notification; A opens the room (cached messages first), reads it, B sees the read
//! marker; A replies (pending at once, then sent with the same key) and B gets it; B's
//! receipts reach A as ticks; B types and A sees who; B rings, A sees the ring and
//! declines, B hears it; B blocks A, A's next message fails, retry fails again, discard
//! drops it; log out closes the messenger.

#![allow(clippy::unwrap_used)]

use confab_app::events::MessengerEvent;
use confab_app::messenger::{Notice, Outlet};
use confab_app::session::Session;
use confab_app::settings::Settings;
use confab_app::views::{ConnectionState, DeliveryState, PageAnchor, SignUpForm};
use confab_core::api::ApiClient;
use confab_core::call::CallConfig;
use confab_core::connection::{Connection, ConnectionConfig, ConnectionEvent};
use confab_core::keystore::{MemoryStore, OpenedStore};
use shared::api::RegisterRequest;
use shared::signal::RingEnd;
use signal_server::testing::{Db, TestServer};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

const PASSWORD: &str = "Correct-Horse-Battery-9";
const WAIT: Duration = Duration::from_secs(30);

fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &id[..10])
}

/// What the messenger sent out, as the window and the OS would get it.
#[derive(Clone)]
// A test's log: boxing the big variant would only make the matches noisier.
#[allow(clippy::large_enum_variant)]
enum Out {
    Event(MessengerEvent),
    Notice(Notice),
}

struct Channel(mpsc::UnboundedSender<Out>);

impl Outlet for Channel {
    fn event(&self, event: MessengerEvent) {
        let _ = self.0.send(Out::Event(event));
    }
    fn notice(&self, notice: Notice) {
        let _ = self.0.send(Out::Notice(notice));
    }
}

/// Everything the outlet got, kept: a wait looks at what came before too, so the
/// order of an event and its notice does not matter.
struct Seen {
    rx: mpsc::UnboundedReceiver<Out>,
    log: Vec<Out>,
}

/// The first output (old or new) that `pick` accepts.
async fn until<T>(seen: &mut Seen, what: &str, pick: impl Fn(&Out) -> Option<T>) -> T {
    if let Some(found) = seen.log.iter().find_map(&pick) {
        return found;
    }
    tokio::time::timeout(WAIT, async {
        loop {
            let out = seen.rx.recv().await.expect("the outlet is gone");
            let found = pick(&out);
            seen.log.push(out);
            if let Some(found) = found {
                return found;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Reads B's connection events until `pick` returns something.
async fn b_until<T>(
    rx: &mut broadcast::Receiver<ConnectionEvent>,
    what: &str,
    pick: impl Fn(&ConnectionEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            match rx.recv().await {
                Ok(event) => {
                    if let Some(found) = pick(&event) {
                        return found;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("B's connection closed"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    tokio::time::timeout(WAIT, async {
        loop {
            if let Some(v) = check().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desktop_session_lives_through_contacts_chat_receipts_typing_ringing_and_failures() {
    let server = TestServer::start_with(
        Db::Sqlite,
        &["--message-rate", "100000", "--ws-rate", "100000"],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let mut rx = Seen {
        rx,
        log: Vec::new(),
    };
    let session = Session::new(
        Settings::load(dir.path().join("settings.json")),
        OpenedStore {
            store: Arc::new(MemoryStore::new()),
            fallback_reason: None,
        },
        dir.path().join("data"),
        Arc::new(Channel(tx)),
    );

    // Before signing in there is no messenger.
    assert!(session.messenger().await.is_err());

    // A signs up in the app; the messenger opens and comes online.
    session.set_server(&server.base).await.unwrap();
    let a_name = unique("ana");
    let a = session
        .sign_up(SignUpForm {
            username: a_name.clone(),
            email: format!("{a_name}@example.com"),
            password: PASSWORD.into(),
            confirm_password: PASSWORD.into(),
        })
        .await
        .unwrap();
    until(&mut rx, "A online", |o| match o {
        Out::Event(MessengerEvent::Synced) => Some(()),
        _ => None,
    })
    .await;
    assert!(
        dir.path().join("data").read_dir().unwrap().next().is_some(),
        "the outbox lives in the app's data dir"
    );

    // B, another person on a plain connection.
    let b_api = ApiClient::new(&server.base, Arc::new(MemoryStore::new())).unwrap();
    let b_name = unique("bo");
    b_api
        .register(&RegisterRequest {
            username: b_name.clone(),
            email: format!("{b_name}@example.com"),
            password: PASSWORD.into(),
            confirm_password: PASSWORD.into(),
        })
        .await
        .unwrap();
    let b_me = b_api.login(&b_name, PASSWORD).await.unwrap();
    let b_outbox = dir.path().join("b-outbox.sqlite");
    let (b, mut b_events) = Connection::open(b_api.clone(), ConnectionConfig::new(b_outbox))
        .await
        .unwrap();
    b.wait_synced().await;

    // B asks A to be a contact: A's contacts change live and a notice comes.
    b.add_contact(a.id).await.unwrap();
    let request = until(&mut rx, "the incoming request", |o| match o {
        Out::Event(MessengerEvent::ContactsChanged { contacts }) => contacts
            .incoming
            .iter()
            .find(|r| r.user.username == b_name)
            .map(|r| r.id),
        _ => None,
    })
    .await;
    until(&mut rx, "the request notice", |o| match o {
        Out::Notice(Notice::ContactRequest { from }) if *from == b_name => Some(()),
        _ => None,
    })
    .await;
    let contacts = session
        .messenger()
        .await
        .unwrap()
        .accept_request(request)
        .await
        .unwrap();
    assert!(contacts.incoming.is_empty());
    assert_eq!(contacts.contacts.len(), 1);
    assert_eq!(contacts.contacts[0].user.id, b_me.id);

    // B writes in the direct room: A's rail shows it unread, and a notice asks for an
    // OS notification titled with B's name.
    let room = b.open_direct(a.id).await.unwrap().id;
    let hello = b.send_message(room, "hello from B", None).await.unwrap();
    let row = until(&mut rx, "the room with one unread", |o| match o {
        Out::Event(MessengerEvent::RoomUpserted { room: r }) if r.id == room && r.unread == 1 => {
            Some(r.clone())
        }
        _ => None,
    })
    .await;
    assert_eq!(
        row.title, b_name,
        "a direct room is titled with the other person"
    );
    assert_eq!(
        row.last_message.as_ref().map(|m| m.body.as_str()),
        Some("hello from B")
    );
    until(&mut rx, "the message notice", |o| match o {
        Out::Notice(Notice::Message {
            room_id,
            title,
            body,
            muted: false,
        }) if *room_id == room && *title == b_name && body == "hello from B" => Some(()),
        _ => None,
    })
    .await;
    until(&mut rx, "the unread total", |o| match o {
        Out::Notice(Notice::Unread { total: 1 }) => Some(()),
        _ => None,
    })
    .await;

    // A opens the room: the message is there, B's, not mine.
    let messenger = session.messenger().await.unwrap();
    let rail = messenger.conversations();
    assert_eq!(rail.iter().find(|c| c.id == room).unwrap().unread, 1);
    let page = eventually("the message in the model", || async {
        let page = messenger.open_room(room).await.unwrap();
        page.messages
            .iter()
            .any(|m| m.id == Some(hello.id))
            .then_some(page)
    })
    .await;
    let seen = page
        .messages
        .iter()
        .find(|m| m.id == Some(hello.id))
        .unwrap();
    assert!(!seen.mine);
    assert_eq!(seen.author_name.as_deref(), Some(b_name.as_str()));
    assert_eq!(seen.state, DeliveryState::Sent);
    assert!(!page.has_more_before);

    // A reads it; B sees the marker.
    messenger.mark_read(room, hello.seq).await.unwrap();
    b_until(&mut b_events, "A's read marker", |e| match e {
        ConnectionEvent::Read {
            room_id,
            user_id,
            seq,
        } if *room_id == room && *user_id == a.id => (*seq >= hello.seq).then_some(()),
        _ => None,
    })
    .await;

    // A replies: pending at once, then sent under the same key; B gets it.
    let reply = messenger
        .send(room, "hi B, A here", Some(hello.id), Vec::new())
        .await
        .unwrap();
    assert_eq!(reply.state, DeliveryState::Pending);
    assert!(reply.mine && reply.id.is_none());
    let client_id = reply.client_id.clone().unwrap();
    let sent = until(&mut rx, "the reply sent", |o| match o {
        Out::Event(MessengerEvent::MessageSent {
            client_id: c,
            message,
        }) if *c == client_id => Some(message.clone()),
        _ => None,
    })
    .await;
    assert_eq!(sent.key, reply.key, "the list key survives pending -> sent");
    assert_eq!(sent.state, DeliveryState::Sent);
    assert_eq!(sent.reply_to, Some(hello.id));
    let reply_seq = sent.seq.unwrap();
    b_until(&mut b_events, "A's reply at B", |e| match e {
        ConnectionEvent::MessageCreated(m) if m.body == "hi B, A here" => Some(()),
        _ => None,
    })
    .await;

    // B reads it: A's ticks turn to read.
    b.mark_read(room, reply_seq).await.unwrap();
    let receipts = until(&mut rx, "B's read receipt", |o| match o {
        Out::Event(MessengerEvent::Receipts { receipts })
            if receipts.room_id == room && receipts.read_up_to >= Some(reply_seq) =>
        {
            Some(receipts.clone())
        }
        _ => None,
    })
    .await;
    assert!(
        receipts.delivered_up_to >= Some(reply_seq),
        "read implies delivered"
    );

    // Older pages come from the cache when it holds them (here: the start).
    let older = messenger
        .load(room, PageAnchor::Before { seq: reply_seq }, Some(10))
        .await
        .unwrap();
    assert_eq!(
        older
            .messages
            .iter()
            .filter_map(|m| m.seq)
            .collect::<Vec<_>>(),
        (1..reply_seq).collect::<Vec<_>>()
    );

    // B types: A hears who.
    b.typing(room).unwrap();
    let typers = until(&mut rx, "B typing", |o| match o {
        Out::Event(MessengerEvent::Typing { room_id, typing })
            if *room_id == room && !typing.is_empty() =>
        {
            Some(typing.clone())
        }
        _ => None,
    })
    .await;
    assert_eq!(typers[0].username, b_name);

    // B rings (a real call on B's socket): A's ring shows, with a notice; A declines on
    // the messenger and B hears it.
    let mut config = CallConfig::synthetic(room);
    config.video = None;
    config.udp_addrs = vec!["127.0.0.1:0".into()];
    let (_, call, _calls) = b.ring(a.id, config).await.unwrap();
    let ring = until(&mut rx, "the ring", |o| match o {
        Out::Event(MessengerEvent::Ringing { ring }) if ring.room_id == room => Some(ring.clone()),
        _ => None,
    })
    .await;
    assert_eq!(ring.from.username, b_name);
    assert!(!ring.video);
    assert_eq!(messenger.ringing().len(), 1);
    messenger.decline(room).unwrap();
    b_until(&mut b_events, "the decline at B", |e| match e {
        ConnectionEvent::CallDeclined { room_id, by } if *room_id == room && *by == a.id => {
            Some(())
        }
        _ => None,
    })
    .await;
    until(&mut rx, "the ring stopped at A", |o| match o {
        Out::Event(MessengerEvent::RingStopped {
            room_id,
            reason: RingEnd::Declined,
        }) if *room_id == room => Some(()),
        _ => None,
    })
    .await;
    call.leave().await;

    // B blocks A: A's next message is refused for good, shows failed, fails again on
    // retry (under a new key), and can be discarded.
    b.block(a.id).await.unwrap();
    let doomed = messenger
        .send(room, "are you there?", None, Vec::new())
        .await
        .unwrap();
    let failed = until(&mut rx, "the failure", |o| match o {
        Out::Event(MessengerEvent::MessageFailed { message }) if message.key == doomed.key => {
            Some(message.clone())
        }
        _ => None,
    })
    .await;
    assert_eq!(failed.state, DeliveryState::Failed);
    assert!(failed.error.is_some());
    let page = messenger.open_room(room).await.unwrap();
    let last = page.messages.last().unwrap();
    assert_eq!(
        (last.key.as_str(), last.state),
        (doomed.key.as_str(), DeliveryState::Failed)
    );
    let again = messenger.retry(&doomed.key).await.unwrap();
    assert_ne!(again.key, doomed.key);
    until(&mut rx, "the retry's failure", |o| match o {
        Out::Event(MessengerEvent::MessageFailed { message }) if message.key == again.key => {
            Some(())
        }
        _ => None,
    })
    .await;
    messenger.discard(&again.key).unwrap();
    assert!(messenger.discard(&again.key).is_err(), "gone already");
    let page = messenger.open_room(room).await.unwrap();
    assert!(page.messages.iter().all(|m| m.state == DeliveryState::Sent));
    drop(messenger);

    // The REST fallback of sends is the same key: B stored the reply once.
    let all = b_api
        .messages(room, confab_core::api::PageAnchor::Latest, Some(100))
        .await
        .unwrap();
    assert_eq!(
        all.messages
            .iter()
            .filter(|m| m.body == "hi B, A here")
            .count(),
        1
    );

    // Log out: the messenger closes.
    session.log_out().await.unwrap();
    assert!(session.messenger().await.is_err());
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_the_banner_shows_the_message_waits_and_goes_out_and_a_restart_restores() {
    let mut server = TestServer::start(Db::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let mut rx = Seen {
        rx,
        log: Vec::new(),
    };
    // The keyring, kept across the app's restart below.
    let store = OpenedStore {
        store: Arc::new(MemoryStore::new()),
        fallback_reason: None,
    };
    let session = Session::new(
        Settings::load(dir.path().join("settings.json")),
        store.clone(),
        dir.path().join("data"),
        Arc::new(Channel(tx)),
    );
    session.set_server(&server.base).await.unwrap();
    let name = unique("solo");
    session
        .sign_up(SignUpForm {
            username: name.clone(),
            email: format!("{name}@example.com"),
            password: PASSWORD.into(),
            confirm_password: PASSWORD.into(),
        })
        .await
        .unwrap();
    let messenger = session.messenger().await.unwrap();
    let room = messenger.create_group("Notes", &[]).await.unwrap().id;
    // Listed at once, whether or not the live `room_added` has come yet.
    assert_eq!(messenger.conversation(room).unwrap().title, "Notes");
    until(&mut rx, "online", |o| match o {
        Out::Event(MessengerEvent::Connection {
            state: ConnectionState::Online,
            ..
        }) => Some(()),
        _ => None,
    })
    .await;

    // The server goes away: the UI hears offline (the banner), then reconnect attempts.
    server.stop().await;
    until(&mut rx, "offline", |o| match o {
        Out::Event(MessengerEvent::Connection {
            state: ConnectionState::Offline,
            ..
        }) => Some(()),
        _ => None,
    })
    .await;
    until(&mut rx, "reconnecting", |o| match o {
        Out::Event(MessengerEvent::Connection {
            state: ConnectionState::Reconnecting,
            attempt: Some(_),
        }) => Some(()),
        _ => None,
    })
    .await;
    assert_eq!(messenger.connection_state(), ConnectionState::Offline);

    // A message written meanwhile waits, pending, in the outbox and in the page.
    let pending = messenger
        .send(room, "written offline", None, Vec::new())
        .await
        .unwrap();
    assert_eq!(pending.state, DeliveryState::Pending);
    let page = messenger.open_room(room).await;
    // (Opening needs the server for the markers only; the page comes from the model.)
    let page = page.unwrap();
    assert_eq!(
        page.messages.last().map(|m| (m.key.clone(), m.state)),
        Some((pending.key.clone(), DeliveryState::Pending))
    );

    // Back: online again, and the message goes out under its key.
    server.start_again().await;
    let sent = until(
        &mut rx,
        "the message sent after the reconnect",
        |o| match o {
            Out::Event(MessengerEvent::MessageSent { client_id, message })
                if Some(client_id) == pending.client_id.as_ref() =>
            {
                Some(message.clone())
            }
            _ => None,
        },
    )
    .await;
    assert_eq!(sent.body, "written offline");
    until(&mut rx, "online again", |o| match o {
        Out::Event(MessengerEvent::Connection {
            state: ConnectionState::Online,
            ..
        }) => Some(()),
        _ => None,
    })
    .await;
    // The model catches up with it (the live event or the resync).
    let stored = eventually("the message in the room's page", || async {
        let page = messenger.open_room(room).await.ok()?;
        let found: Vec<_> = page
            .messages
            .iter()
            .filter(|m| m.body == "written offline")
            .map(|m| m.state)
            .collect();
        found.contains(&DeliveryState::Sent).then_some(found)
    })
    .await;
    assert_eq!(stored, vec![DeliveryState::Sent], "once, stored");

    // The catch-up after the reconnect saved the room list beside the outbox ...
    let saved = eventually("the saved room list", || async {
        let file = std::fs::read_dir(dir.path().join("data"))
            .ok()?
            .filter_map(Result::ok)
            .find(|e| e.file_name().to_string_lossy().ends_with(".rooms.json"))?;
        let text = std::fs::read_to_string(file.path()).ok()?;
        text.contains("Notes").then_some(text)
    })
    .await;
    assert!(saved.contains(&room.to_string()));
    drop(messenger);

    // ... and the app's next start (same settings, same keyring) signs in again by
    // itself and shows the rooms.
    drop(session);
    let (tx, _rx) = mpsc::unbounded_channel();
    let again = Session::new(
        Settings::load(dir.path().join("settings.json")),
        store,
        dir.path().join("data"),
        Arc::new(Channel(tx)),
    );
    let me = again.restore().await.unwrap().expect("still signed in");
    assert_eq!(me.username, name);
    let rail = again.messenger().await.unwrap().conversations();
    assert!(rail.iter().any(|c| c.id == room && c.title == "Notes"));
    again.log_out().await.unwrap();
}
