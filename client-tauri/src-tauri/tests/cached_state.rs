//! The last state shown, kept across a restart, against a real server (SQLite) and the
//! real outbox file: A writes in a group and leaves a draft; the app stops; the server
//! goes away; the app starts again without it and still shows the rail, the room's
//! newest messages (marked cached) and the draft; the server comes back, the catch-up
//! arrives and the room's page is the server's again, with what was written meanwhile.

#![allow(clippy::unwrap_used)]

use confab_app::events::MessengerEvent;
use confab_app::messenger::{Messenger, Notice, Outlet};
use confab_app::views::DeliveryState;
use confab_core::api::ApiClient;
use confab_core::keystore::MemoryStore;
use shared::api::{RegisterRequest, SendMessageRequest};
use signal_server::testing::{Db, TestServer};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const PASSWORD: &str = "Correct-Horse-Battery-9";
const WAIT: Duration = Duration::from_secs(30);

struct Events(mpsc::UnboundedSender<MessengerEvent>);

impl Outlet for Events {
    fn event(&self, event: MessengerEvent) {
        let _ = self.0.send(event);
    }
    fn notice(&self, _: Notice) {}
}

async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn synced(rx: &mut mpsc::UnboundedReceiver<MessengerEvent>) {
    tokio::time::timeout(WAIT, async {
        while let Some(e) = rx.recv().await {
            if matches!(e, MessengerEvent::Synced) {
                return;
            }
        }
        panic!("the messenger closed before it synced");
    })
    .await
    .expect("a catch-up");
}

fn bodies(page: &confab_app::views::TimelinePage) -> Vec<String> {
    page.messages.iter().map(|m| m.body.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_without_the_server_shows_the_cached_room_and_draft_until_the_catch_up() {
    let mut server = TestServer::start(Db::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox.sqlite");
    let api = ApiClient::new(&server.base, Arc::new(MemoryStore::new())).unwrap();
    let name = format!("ana_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    api.register(&RegisterRequest {
        username: name.clone(),
        email: format!("{name}@example.com"),
        password: PASSWORD.into(),
        confirm_password: PASSWORD.into(),
    })
    .await
    .unwrap();
    api.login(&name, PASSWORD).await.unwrap();

    // A writes three messages in a group and starts a fourth.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let messenger = Messenger::open(api.clone(), outbox.clone(), Arc::new(Events(tx)))
        .await
        .unwrap();
    synced(&mut rx).await;
    let room = messenger.create_group("Notes", &[]).await.unwrap().id;
    for body in ["one", "two", "three"] {
        messenger.send(room, body, None, Vec::new()).await.unwrap();
    }
    eventually("the three messages stored", || async {
        let page = messenger.open_room(room).await.ok()?;
        (page.messages.len() == 3
            && page
                .messages
                .iter()
                .all(|m| m.state != DeliveryState::Pending))
        .then_some(())
    })
    .await;
    messenger.set_draft(room, "half a thought").await.unwrap();
    // Longer than a message may be, and a room that is not mine: refused, not kept.
    assert!(
        messenger
            .set_draft(room, &"x".repeat(shared::api::MESSAGE_BODY_MAX + 1))
            .await
            .is_err()
    );
    assert!(
        messenger
            .set_draft(shared::RoomId::new(), "elsewhere")
            .await
            .is_err()
    );
    // The app stops (closing writes what the cache had not written yet).
    messenger.close().await;

    // It starts again while the server is away.
    server.stop().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let messenger = Messenger::open(api.clone(), outbox.clone(), Arc::new(Events(tx)))
        .await
        .unwrap();
    let rail = messenger.conversations();
    assert!(rail.iter().any(|c| c.id == room && c.title == "Notes"));
    let page = messenger.open_room(room).await.unwrap();
    assert!(page.cached, "the page is the one kept by the last run");
    assert_eq!(bodies(&page), ["one", "two", "three"]);
    assert!(!page.has_more_before);
    assert!(
        page.messages
            .iter()
            .all(|m| m.state == DeliveryState::Sent && m.seq.is_some())
    );
    let drafts = messenger.drafts().await.unwrap();
    assert_eq!(drafts.len(), 1);
    assert_eq!(
        (drafts[0].room_id, drafts[0].body.as_str()),
        (room, "half a thought")
    );

    // Meanwhile another device of A's writes once the server is back ...
    server.start_again().await;
    let other = ApiClient::new(&server.base, Arc::new(MemoryStore::new())).unwrap();
    other.login(&name, PASSWORD).await.unwrap();
    other
        .send_message(
            room,
            &uuid::Uuid::new_v4().to_string(),
            &SendMessageRequest {
                body: "four, from the phone".into(),
                reply_to: None,
                attachments: Vec::new(),
            },
        )
        .await
        .unwrap();
    // ... and after the catch-up the room's page is the server's, with it.
    synced(&mut rx).await;
    let page = eventually("the caught-up page", || async {
        let page = messenger.open_room(room).await.ok()?;
        (bodies(&page).len() == 4).then_some(page)
    })
    .await;
    assert!(!page.cached);
    assert_eq!(
        bodies(&page),
        ["one", "two", "three", "four, from the phone"]
    );

    // An emptied draft is gone for the next start too.
    messenger.set_draft(room, "").await.unwrap();
    messenger.close().await;
    let (tx, _rx) = mpsc::unbounded_channel();
    let messenger = Messenger::open(api, outbox, Arc::new(Events(tx)))
        .await
        .unwrap();
    assert!(messenger.drafts().await.unwrap().is_empty());
    messenger.close().await;
}
