//! `ApiClient` against a real server: accounts, rooms and invites, typed errors, and the
//! session machinery (refresh before expiry, refresh-and-retry after a 401, one refresh
//! for many callers, logout, resume from the token store).

mod common;

use common::{Db, PASSWORD, TestServer, on_both_databases, unique};
use confab_core::api::{ApiClient, ApiError};
use confab_core::keystore::{AccountKey, MemoryStore, TokenStore};
use reqwest::StatusCode;
use shared::ErrorCode;
use shared::api::{
    ChangePasswordRequest, CreateInviteRequest, CreateRoomRequest, Me, RegisterRequest, RoomRole,
    UpdateProfileRequest,
};
use std::sync::Arc;
use std::time::Duration;

on_both_databases!(
    alice_signs_up_opens_a_room_and_bob_joins_by_invite,
    refusals_come_back_as_typed_errors_with_field_messages,
    an_expiring_access_token_is_refreshed_before_the_request,
    many_callers_share_one_refresh,
    a_refused_access_token_is_refreshed_once_and_the_request_retried,
    a_session_ended_on_another_device_signs_this_client_out,
    logout_forgets_the_saved_token_and_the_server_revokes_it,
    the_next_start_resumes_the_saved_session,
    changing_the_password_signs_out_the_other_sessions,
    a_call_gets_its_ice_servers_with_turn_credentials,
);

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn registration(name: &str) -> RegisterRequest {
    RegisterRequest {
        username: name.to_owned(),
        email: format!("{name}@example.com"),
        password: PASSWORD.to_owned(),
        confirm_password: PASSWORD.to_owned(),
    }
}

/// A client with a store of its own.
fn client(server: &TestServer) -> Result<(ApiClient, Arc<MemoryStore>), ApiError> {
    let store = Arc::new(MemoryStore::new());
    Ok((ApiClient::new(&server.base, store.clone())?, store))
}

/// Registers a new user and signs in with a client of its own.
async fn signed_up(
    server: &TestServer,
    prefix: &str,
) -> Result<(ApiClient, Arc<MemoryStore>, Me), ApiError> {
    let (api, store) = client(server)?;
    let name = unique(prefix);
    api.register(&registration(&name)).await?;
    let me = api.login(&name, PASSWORD).await?;
    Ok((api, store, me))
}

/// The refresh token the client saved for its account.
async fn stored_token(api: &ApiClient, store: &MemoryStore) -> Result<Option<String>, ApiError> {
    let Some(account) = api.account().await else {
        return Ok(None);
    };
    Ok(store.load(&account)?)
}

fn account_of(server: &TestServer, me: &Me) -> AccountKey {
    AccountKey::new(
        &reqwest::Url::parse(&server.base).expect("the test server's URL parses"),
        &me.username,
    )
}

async fn alice_signs_up_opens_a_room_and_bob_joins_by_invite(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let (alice, alice_store) = client(&server)?;
    assert_eq!(alice.health().await?.status, "ok");

    // Alice registers, then signs in with her email address.
    let name = unique("alice");
    let registered = alice.register(&registration(&name)).await?;
    assert_eq!(registered.username, name);
    let me = alice
        .login(&format!("{}@EXAMPLE.com", name.to_uppercase()), PASSWORD)
        .await?;
    assert_eq!(me.id, registered.id);

    // The refresh token is saved under her username, not under what she typed.
    let account = alice.account().await.expect("signed in");
    assert_eq!(account.username, name);
    assert!(alice_store.load(&account)?.is_some());
    assert_eq!(alice.me().await?.id, me.id);

    let me = alice
        .update_me(&UpdateProfileRequest {
            display_name: Some("Alice".into()),
            status_text: None,
            share_read_receipts: None,
        })
        .await?;
    assert_eq!(me.display_name.as_deref(), Some("Alice"));
    assert_eq!(alice.current_user().await, Some(me.clone()));

    // She opens a room and makes a single-use invite.
    let room = alice
        .create_room(&CreateRoomRequest {
            title: "Standup".into(),
            max_participants: Some(4),
        })
        .await?;
    assert_eq!(room.owner_id, me.id);
    assert_eq!(alice.rooms().await?, vec![room.clone()]);
    let invite = alice
        .create_invite(
            room.id,
            &CreateInviteRequest {
                expires_in: Some(3600),
                max_uses: Some(1),
            },
        )
        .await?;
    assert_eq!(invite.room_id, room.id);

    // Bob accepts it.
    let (bob, _, bob_me) = signed_up(&server, "bob").await?;
    let joined = bob.accept_invite(&invite.token).await?;
    assert_eq!((joined.id, joined.member_count), (room.id, 2));
    let detail = alice.room(room.id).await?;
    let roles: Vec<_> = detail
        .members
        .iter()
        .map(|m| (m.user.username.clone(), m.role))
        .collect();
    assert!(
        roles.contains(&(name.clone(), RoomRole::Owner)),
        "{roles:?}"
    );
    assert!(
        roles.contains(&(bob_me.username.clone(), RoomRole::Member)),
        "{roles:?}"
    );
    assert_eq!(alice.user(bob_me.id).await?.username, bob_me.username);

    // The invite was for one person: Carol is too late, but can still join by id.
    let (carol, _, _) = signed_up(&server, "carol").await?;
    let late = carol
        .accept_invite(&invite.token)
        .await
        .expect_err("the invite is used up");
    assert_eq!(late.code(), Some(ErrorCode::Gone));
    assert_eq!(late.status(), Some(StatusCode::GONE));
    assert_eq!(carol.join_room(room.id).await?.member_count, 3);

    // Bob leaves; only the owner can delete the room, and then it is gone for everyone.
    bob.leave_room(room.id).await?;
    let refused = carol
        .delete_room(room.id)
        .await
        .expect_err("only the owner may delete");
    assert_eq!(refused.code(), Some(ErrorCode::Forbidden));
    alice.delete_room(room.id).await?;
    assert!(alice.rooms().await?.is_empty());
    let gone = carol.room(room.id).await.expect_err("the room is deleted");
    assert_eq!(gone.code(), Some(ErrorCode::NotFound));
    Ok(())
}

async fn refusals_come_back_as_typed_errors_with_field_messages(db: Db) -> TestResult {
    let mut server = TestServer::start(db).await;
    let (api, _) = client(&server)?;
    let name = unique("dora");
    api.register(&registration(&name)).await?;

    // Registering the same name and email again: 409 with a message per field.
    let taken = api
        .register(&registration(&name))
        .await
        .expect_err("the name is taken");
    assert_eq!(taken.status(), Some(StatusCode::CONFLICT));
    assert_eq!(taken.code(), Some(ErrorCode::Conflict));
    assert_eq!(taken.field("username"), Some("is already taken"));
    assert_eq!(taken.field("email"), Some("is already registered"));

    // A weak password: 422, and the form knows which field to mark.
    let mut weak = registration(&unique("eve"));
    weak.password = "password".into();
    weak.confirm_password = "password".into();
    let invalid = api.register(&weak).await.expect_err("the password is weak");
    assert_eq!(invalid.status(), Some(StatusCode::UNPROCESSABLE_ENTITY));
    assert_eq!(invalid.code(), Some(ErrorCode::ValidationFailed));
    assert!(
        invalid.field("password").is_some(),
        "{:?}",
        invalid.fields()
    );

    // A wrong password.
    let wrong = api
        .login(&name, "Not-The-Password-1")
        .await
        .expect_err("the password is wrong");
    assert_eq!(wrong.status(), Some(StatusCode::UNAUTHORIZED));
    assert_eq!(wrong.code(), Some(ErrorCode::InvalidCredentials));
    assert!(!wrong.needs_sign_in());

    // Nothing that needs a session works before signing in, and the server is not asked.
    let anonymous = api.me().await.expect_err("not signed in");
    assert!(matches!(anonymous, ApiError::NotSignedIn), "{anonymous:?}");
    assert!(anonymous.needs_sign_in());

    // A server that is down is a transport error; the same client works once it is back.
    server.stop().await;
    let down = api.health().await.expect_err("the server is down");
    assert!(matches!(down, ApiError::Transport(_)), "{down:?}");
    server.start_again().await;
    api.login(&name, PASSWORD).await?;
    assert_eq!(api.me().await?.username, name);
    Ok(())
}

async fn an_expiring_access_token_is_refreshed_before_the_request(db: Db) -> TestResult {
    let server = TestServer::start_with(db, &["--access-token-ttl", "2"]).await;
    let (api, store, me) = signed_up(&server, "frank").await?;
    let first = stored_token(&api, &store).await?.expect("saved at login");

    // A fresh token is used as it is: no refresh per request, even with a short lifetime.
    let access = api.access_token().await?;
    api.me().await?;
    assert_eq!(api.access_token().await?, access);
    assert_eq!(stored_token(&api, &store).await?.as_ref(), Some(&first));

    // Once it has expired, the next call refreshes first and succeeds; the rotated
    // refresh token replaces the saved one.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(api.me().await?.id, me.id);
    let second = stored_token(&api, &store).await?.expect("still saved");
    assert_ne!(second, first);
    let renewed = api.access_token().await?;
    assert_ne!(renewed, access);

    // Asking for a token (as the WebSocket client does before connecting) refreshes it
    // too, without a request being refused first.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_ne!(api.access_token().await?, renewed);
    assert_ne!(stored_token(&api, &store).await?, Some(second));
    assert_eq!(api.me().await?.id, me.id);
    Ok(())
}

async fn many_callers_share_one_refresh(db: Db) -> TestResult {
    let server = TestServer::start_with(db, &["--access-token-ttl", "2"]).await;
    let (api, _, me) = signed_up(&server, "grace").await?;
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // Eight requests at once with an expired token. Had two of them refreshed with the
    // same refresh token, the server would have revoked the session.
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let api = api.clone();
            tokio::spawn(async move { api.me().await })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await??.id, me.id);
    }
    let sessions = api.sessions().await?;
    assert_eq!(sessions.len(), 1);
    assert!(sessions[0].current);
    Ok(())
}

async fn a_refused_access_token_is_refreshed_once_and_the_request_retried(db: Db) -> TestResult {
    let mut server = TestServer::start(db).await;
    let (api, store, me) = signed_up(&server, "heidi").await?;
    let first = stored_token(&api, &store).await?.expect("saved at login");

    // The server comes back with a new signing key: the client's access token, valid for
    // another 15 minutes by the clock, is refused; the refresh token still works.
    server
        .restart_with(&[
            "--jwt-secret",
            "a-completely-different-secret-of-32-bytes-or-more",
        ])
        .await;
    assert_eq!(api.me().await?.id, me.id);
    assert_ne!(stored_token(&api, &store).await?, Some(first));
    Ok(())
}

async fn a_session_ended_on_another_device_signs_this_client_out(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let (laptop, _, me) = signed_up(&server, "ivan").await?;
    let (phone, phone_store) = client(&server)?;
    phone.login(&me.username, PASSWORD).await?;
    let phone_session = phone.session_id().await.expect("signed in");

    // From the laptop, Ivan signs his phone out.
    let sessions = laptop.sessions().await?;
    assert_eq!(sessions.len(), 2);
    assert!(sessions.iter().any(|s| s.id == phone_session && !s.current));
    laptop.delete_session(phone_session).await?;

    // The phone's next call is refused, its refresh too: one retry, then it gives up,
    // forgets the session and its saved token, and says the user must sign in.
    let ended = phone.me().await.expect_err("the session was ended");
    assert_eq!(ended.status(), Some(StatusCode::UNAUTHORIZED));
    assert!(ended.needs_sign_in());
    assert_eq!(phone_store.load(&account_of(&server, &me))?, None);
    assert!(matches!(phone.me().await, Err(ApiError::NotSignedIn)));
    assert_eq!(laptop.me().await?.id, me.id);

    // Signing out everywhere ends the laptop's session too.
    let (tablet, tablet_store) = client(&server)?;
    tablet.login(&me.username, PASSWORD).await?;
    tablet.logout_all().await?;
    assert_eq!(tablet_store.load(&account_of(&server, &me))?, None);
    assert!(
        laptop
            .me()
            .await
            .expect_err("every session was ended")
            .needs_sign_in()
    );
    Ok(())
}

async fn logout_forgets_the_saved_token_and_the_server_revokes_it(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let (api, store, me) = signed_up(&server, "judy").await?;
    let account = api.account().await.expect("signed in");
    let token = store.load(&account)?.expect("saved at login");

    api.logout().await?;
    assert_eq!(store.load(&account)?, None);
    assert!(matches!(api.me().await, Err(ApiError::NotSignedIn)));
    api.logout().await?;

    // The old refresh token is dead on the server too: resuming with it fails and the
    // copy is deleted.
    let copy = Arc::new(MemoryStore::new());
    copy.save(&account, &token)?;
    let refused = ApiClient::resume(&server.base, copy.clone(), &account)
        .await
        .expect_err("the token was revoked");
    assert_eq!(refused.code(), Some(ErrorCode::Unauthorized));
    assert_eq!(copy.load(&account)?, None);

    // Signing in again works.
    api.login(&me.email, PASSWORD).await?;
    assert_eq!(api.me().await?.id, me.id);
    Ok(())
}

async fn the_next_start_resumes_the_saved_session(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let store = Arc::new(MemoryStore::new());
    let me = {
        let api = ApiClient::new(&server.base, store.clone())?;
        let name = unique("ken");
        api.register(&registration(&name)).await?;
        api.login(&name, PASSWORD).await?
    };
    let account = account_of(&server, &me);
    let saved = store.load(&account)?.expect("saved at login");

    // A new client (the app started again) picks the session up from the store.
    let api = ApiClient::resume(&server.base, store.clone(), &account).await?;
    assert_eq!(api.current_user().await.map(|u| u.id), Some(me.id));
    assert_eq!(api.me().await?.id, me.id);
    assert_ne!(store.load(&account)?, Some(saved));
    assert_eq!(api.sessions().await?.len(), 1);

    // Nothing saved for another account: not signed in.
    let nobody = AccountKey {
        username: "nobody".into(),
        ..account.clone()
    };
    let missing = ApiClient::resume(&server.base, store, &nobody)
        .await
        .expect_err("nothing is saved");
    assert!(matches!(missing, ApiError::NotSignedIn), "{missing:?}");
    Ok(())
}

async fn changing_the_password_signs_out_the_other_sessions(db: Db) -> TestResult {
    let server = TestServer::start(db).await;
    let (api, _, me) = signed_up(&server, "liam").await?;
    let (other, _) = client(&server)?;
    other.login(&me.username, PASSWORD).await?;
    let new_password = "Another-Staple-Battery-7";

    let wrong = api
        .change_password(&ChangePasswordRequest {
            current_password: "Not-The-Password-1".into(),
            new_password: new_password.into(),
            confirm_password: new_password.into(),
        })
        .await
        .expect_err("the current password is wrong");
    assert_eq!(wrong.code(), Some(ErrorCode::ValidationFailed));
    assert_eq!(wrong.field("current_password"), Some("is incorrect"));

    api.change_password(&ChangePasswordRequest {
        current_password: PASSWORD.into(),
        new_password: new_password.into(),
        confirm_password: new_password.into(),
    })
    .await?;
    assert_eq!(api.me().await?.id, me.id);
    assert!(
        other
            .me()
            .await
            .expect_err("the other session was ended")
            .needs_sign_in()
    );
    other.login(&me.username, new_password).await?;
    Ok(())
}

async fn a_call_gets_its_ice_servers_with_turn_credentials(db: Db) -> TestResult {
    let server = TestServer::start_with(
        db,
        &[
            "--stun-urls",
            "stun:stun.example.org:3478",
            "--turn-urls",
            "turn:turn.example.org:3478?transport=udp",
            "--turn-secret",
            "s3cr3t",
            "--turn-credential-ttl",
            "3600",
        ],
    )
    .await;
    let (api, _) = client(&server)?;
    let anonymous = api.ice_servers().await.expect_err("not signed in");
    assert!(matches!(anonymous, ApiError::NotSignedIn), "{anonymous:?}");

    let (api, _, me) = signed_up(&server, "mia").await?;
    let ice = api.ice_servers().await?;
    assert_eq!(ice.ttl, 3600);
    let [stun, turn] = ice.ice_servers.as_slice() else {
        panic!("expected a STUN and a TURN entry: {ice:?}");
    };
    assert_eq!(stun.urls, ["stun:stun.example.org:3478"]);
    assert_eq!((&stun.username, &stun.credential), (&None, &None));
    assert_eq!(turn.urls, ["turn:turn.example.org:3478?transport=udp"]);
    let username = turn.username.as_deref().expect("TURN has a username");
    assert!(username.ends_with(&format!(":{}", me.id)), "{username}");
    assert!(turn.credential.as_deref().is_some_and(|c| !c.is_empty()));
    Ok(())
}
