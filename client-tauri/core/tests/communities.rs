//! Communities through `Connection` against a real server: Alice creates one and a
//! channel, Bob finds it in discover and joins, both see each other's messages in the
//! channel with its unread counts, Alice renames the channel, makes Bob an admin, and
//! finally kicks him: his model loses the community and its channels at once. A client
//! that was offline while a community was created for it finds it after its resync.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Db, PASSWORD, TestServer, on_both_databases, register};
use confab_core::api::{ApiClient, CommunityQuery};
use confab_core::connection::{Connection, ConnectionConfig, ConnectionEvent};
use shared::api::RoomRole;
use shared::communities::{
    CommunityExit, CommunityVisibility, CreateChannelRequest, CreateCommunityRequest,
    UpdateChannelRequest,
};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::broadcast;

on_both_databases!(
    a_community_is_found_joined_talked_in_and_left_by_a_kick,
    a_resync_brings_communities_made_while_offline,
);

const WAIT: Duration = Duration::from_secs(20);

fn outbox_path() -> PathBuf {
    std::env::temp_dir().join(format!(
        "confab-outbox-test-{}.sqlite",
        uuid::Uuid::new_v4()
    ))
}

async fn signed_in(server: &TestServer, prefix: &str) -> ApiClient {
    let (api, name) = register(server, prefix).await;
    api.login(&name, PASSWORD).await.unwrap();
    api
}

async fn open(api: &ApiClient) -> (Connection, broadcast::Receiver<ConnectionEvent>) {
    let (conn, events) = Connection::open(api.clone(), ConnectionConfig::new(outbox_path()))
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
                Err(broadcast::error::RecvError::Closed) => panic!("events ended: {what}"),
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("no {what} within {WAIT:?}"))
}

async fn a_community_is_found_joined_talked_in_and_left_by_a_kick(db: Db) {
    let server = TestServer::start(db).await;
    let alice_api = signed_in(&server, "alice").await;
    let bob_api = signed_in(&server, "bob").await;
    let (a, mut a_events) = open(&alice_api).await;
    let (b, mut b_events) = open(&bob_api).await;

    // Alice creates a public community: it comes with #general, already in her model.
    let created = a
        .create_community(&CreateCommunityRequest {
            name: "Rust Readers".into(),
            description: Some("We read the book together".into()),
            visibility: Some(CommunityVisibility::Public),
        })
        .await
        .unwrap();
    let id = created.summary.community.id;
    assert_eq!(created.summary.my_role, Some(RoomRole::Owner));
    assert_eq!(created.channels.len(), 1);
    let general = created.channels[0].id;
    assert_eq!(a.community_of(general), Some(id));
    let news = a
        .create_channel(
            id,
            &CreateChannelRequest {
                name: "news".into(),
                category: Some("Reading".into()),
                ..CreateChannelRequest::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(a.community(id).unwrap().channels.len(), 2);

    // Bob finds it by a word of its description and joins.
    let found = b
        .find_communities(&CommunityQuery::discover(Some("book".into())))
        .await
        .unwrap();
    assert!(found.communities.iter().any(|c| c.community.id == id));
    let joined = b.join_community(id).await.unwrap();
    assert_eq!(joined.summary.my_role, Some(RoomRole::Member));
    assert_eq!(joined.channels.len(), 2);

    // Alice writes in #general: Bob sees it live and it counts as unread there and in
    // the community.
    a.send_message(general, "chapter 4 tonight", None)
        .await
        .unwrap();
    next(&mut b_events, "Alice's channel message", |e| match e {
        ConnectionEvent::MessageCreated(m) if m.room_id == general => Some(()),
        _ => None,
    })
    .await;
    assert_eq!(b.room(general).unwrap().unread_count, 1);
    assert_eq!(b.community(id).unwrap().summary.unread_count, 1);
    b.mark_read(general, 1).await.unwrap();
    assert_eq!(b.community(id).unwrap().summary.unread_count, 0);

    // A renamed channel and a new role reach Bob.
    a.update_channel(
        id,
        news.id,
        &UpdateChannelRequest {
            name: Some("announcements".into()),
            ..UpdateChannelRequest::default()
        },
    )
    .await
    .unwrap();
    next(&mut b_events, "the renamed channel", |e| match e {
        ConnectionEvent::CommunityChanged(c)
            if c.channels.iter().any(|ch| ch.name == "announcements") =>
        {
            Some(())
        }
        _ => None,
    })
    .await;
    assert_eq!(b.room(news.id).unwrap().room.title, "announcements");
    let bob_id = b.me().id;
    a.set_community_role(id, bob_id, RoomRole::Admin)
        .await
        .unwrap();
    next(&mut b_events, "Bob's new role", |e| match e {
        ConnectionEvent::CommunityRoleChanged { user_id, role, .. } if user_id == bob_id => {
            Some(role)
        }
        _ => None,
    })
    .await;
    assert_eq!(
        b.community(id).unwrap().summary.my_role,
        Some(RoomRole::Admin)
    );
    assert_eq!(b.room(general).unwrap().my_role, RoomRole::Admin);

    // Kicked: the community and both channel rooms leave Bob's model.
    a.kick_community_member(id, bob_id).await.unwrap();
    let reason = next(&mut b_events, "the kick", |e| match e {
        ConnectionEvent::CommunityRemoved {
            community_id,
            reason,
        } if community_id == id => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, CommunityExit::Kicked);
    assert!(b.community(id).is_none());
    assert!(b.room(general).is_none() && b.room(news.id).is_none());
    // Alice hears of it too, with the new count.
    next(
        &mut a_events,
        "Bob leaving Alice's community",
        |e| match e {
            ConnectionEvent::CommunityMemberLeft {
                user_id, reason, ..
            } if user_id == bob_id => Some(reason),
            _ => None,
        },
    )
    .await;
    assert_eq!(a.community(id).unwrap().summary.community.member_count, 1);

    a.close().await;
    b.close().await;
}

async fn a_resync_brings_communities_made_while_offline(db: Db) {
    let server = TestServer::start(db).await;
    let alice_api = signed_in(&server, "alice").await;
    // Made over plain REST before any connection of Alice's runs.
    let made = alice_api
        .create_community(&CreateCommunityRequest {
            name: "Offline Club".into(),
            visibility: Some(CommunityVisibility::Private),
            ..CreateCommunityRequest::default()
        })
        .await
        .unwrap();
    let (a, _events) = open(&alice_api).await;
    let state = a.community(made.community.id).expect("found by the resync");
    assert_eq!(state.channels.len(), 1);
    assert!(
        a.room(state.channels[0].id).is_some(),
        "its channel is a room"
    );
    // Channels are not in the direct-and-group list, yet they are rooms of the model.
    assert!(
        alice_api
            .room_summaries()
            .await
            .unwrap()
            .iter()
            .all(|r| r.room.id != state.channels[0].id)
    );
    a.close().await;
}
