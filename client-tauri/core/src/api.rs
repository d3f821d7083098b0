//! The REST client: one typed call per endpoint of the server, with the session (access
//! and refresh token) kept and renewed behind the scenes.
//!
//! After [`ApiClient::login`] (or [`ApiClient::resume`]) every authenticated call first
//! makes sure the access token is not about to expire, refreshing it if it is, and when
//! the server still answers 401 it refreshes once and retries once. Refresh tokens rotate
//! on every use and the server revokes the whole session when one is presented twice, so
//! refreshes are serialized and every new refresh token is written to the
//! [`TokenStore`] before anyone can use it.

mod auth;
mod communities;
mod files;
mod search;

pub use communities::CommunityQuery;
pub use files::{MEDIA_MAX, MediaResponse, TransferError, file_name};
pub use search::SearchQuery;

use crate::keystore::{AccountKey, StoreError, TokenStore};
use reqwest::{Method, Response, StatusCode, Url, header};
use serde::Serialize;
use serde::de::DeserializeOwned;
use shared::api::{
    AddMemberRequest, AuthResponse, BlockedUser, ChangePasswordRequest, ChangesPage, Contact,
    ContactRequestOutcome, ContactRequests, CreateInviteRequest, CreateRoomRequest,
    EditMessageRequest, Health, IceServersResponse, Invite, LoginRequest, Me, Message, MessagePage,
    PublicUser, ReadRequest, RefreshRequest, RegisterRequest, Room, RoomDetail, RoomMember,
    RoomRole, RoomSettingsRequest, RoomSummary, SendContactRequest, SendMessageRequest,
    SessionInfo, UpdateMemberRequest, UpdateProfileRequest, UpdateRoomRequest,
};
use shared::{
    ContactRequestId, ErrorBody, ErrorCode, ErrorDetail, MessageId, RoomId, SessionId, UserId,
};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Refresh an access token this long before it expires, so that a request (or a
/// WebSocket handshake) never sets off with a token that dies in flight.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// How long to wait for a TCP + TLS connection to the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a whole request may take; the API has no long-running calls.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What can go wrong talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server refused the request. `detail.code` says why (branch on it, never on the
    /// message); `detail.fields` holds per-field messages for forms.
    #[error("{}", detail.message)]
    Server {
        /// The HTTP status of the answer.
        status: StatusCode,
        /// The server's error body.
        detail: ErrorDetail,
        /// From `Retry-After`, on `rate_limited` answers.
        retry_after: Option<Duration>,
    },
    /// The server could not be reached, or the connection failed or timed out (a
    /// certificate the client does not trust included: the message then says so).
    #[error("could not reach the server: {}", transport_reason(.0))]
    Transport(#[from] reqwest::Error),
    /// The server answered with something that is not what the API describes (a proxy's
    /// error page, a different server, a newer server with an unknown error code).
    #[error("unexpected answer from the server (HTTP {status}): {source}")]
    Decode {
        /// The HTTP status of the answer.
        status: StatusCode,
        /// Why the body did not parse.
        source: serde_json::Error,
    },
    /// The call needs a session and there is none (never signed in, signed out, or the
    /// session ended on the server).
    #[error("not signed in")]
    NotSignedIn,
    /// The server address given to [`ApiClient::new`] is not usable.
    #[error("{url:?} is not a server address: {reason}")]
    InvalidServerUrl {
        /// What was given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The token store failed while reading a saved session.
    #[error(transparent)]
    TokenStore(#[from] StoreError),
    /// The runtime shut down while a token refresh was running.
    #[error("the request was interrupted because the client is shutting down")]
    Interrupted,
}

impl ApiError {
    /// The server's error code, when the server answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Server { detail, .. } => Some(detail.code),
            _ => None,
        }
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Server { status, .. } | Self::Decode { status, .. } => Some(*status),
            Self::Transport(e) => e.status(),
            _ => None,
        }
    }

    /// Per-field messages (field name -> message) for validation errors and conflicts.
    pub fn fields(&self) -> Option<&BTreeMap<String, String>> {
        match self {
            Self::Server { detail, .. } => detail.fields.as_ref(),
            _ => None,
        }
    }

    /// The message for one form field, if the server had something to say about it.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields()?.get(name).map(String::as_str)
    }

    /// True when the user has to sign in (again) before anything else will work: there
    /// is no session, or the server ended it.
    pub fn needs_sign_in(&self) -> bool {
        matches!(self, Self::NotSignedIn)
            || matches!(
                self.code(),
                Some(ErrorCode::Unauthorized | ErrorCode::TokenReused)
            )
    }
}

/// A client for one Confab server. Cheap to clone: clones share the connection pool and
/// the session, so a refresh done by one is seen by all.
#[derive(Clone, Debug)]
pub struct ApiClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    /// Always ends with `/`, so joining `api/...` keeps a path prefix such as
    /// `https://example.com/confab/`.
    base: Url,
    store: Arc<dyn TokenStore>,
    /// Locked for the whole of a refresh, including the store write after it, so that
    /// concurrent callers wait for one refresh instead of each spending the same refresh
    /// token (the second would revoke the session) and store writes land in order.
    session: Mutex<Option<Session>>,
}

/// The signed-in state.
struct Session {
    account: AccountKey,
    id: SessionId,
    user: Me,
    access_token: String,
    refresh_token: String,
    expires_at: Instant,
    /// How early to refresh: the usual margin, but never more than half the token's
    /// lifetime, or a server with short-lived tokens would see a refresh per request.
    margin: Duration,
}

impl Session {
    /// `sent_at` is when the request that returned `auth` left: the server started the
    /// token's lifetime after that, so expiry computed from it errs on the early side.
    fn new(account: AccountKey, auth: AuthResponse, sent_at: Instant) -> Self {
        let lifetime = Duration::from_secs(auth.expires_in);
        Self {
            account,
            id: auth.session_id,
            user: auth.user,
            access_token: auth.access_token,
            refresh_token: auth.refresh_token,
            expires_at: sent_at + lifetime,
            margin: REFRESH_MARGIN.min(lifetime / 2),
        }
    }

    /// The access token, unless it is about to expire or is the one the server just
    /// refused.
    fn usable_token(&self, rejected: Option<&str>) -> Option<&str> {
        let fresh = Instant::now() + self.margin < self.expires_at;
        (fresh && rejected != Some(self.access_token.as_str())).then_some(&self.access_token)
    }
}

impl fmt::Debug for Session {
    // Tokens are secrets and must not end up in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("account", &self.account)
            .field("id", &self.id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    /// A client for the server at `server` (`https://chat.example.com`, optionally with a
    /// path prefix), not signed in. Refresh tokens go to `store`.
    pub fn new(server: &str, store: Arc<dyn TokenStore>) -> Result<Self, ApiError> {
        let invalid = |reason: String| ApiError::InvalidServerUrl {
            url: server.to_owned(),
            reason,
        };
        let mut base = Url::parse(server.trim()).map_err(|e| invalid(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid("it must start with https:// (or http://)".into()));
        }
        if base.cannot_be_a_base() || base.query().is_some() || base.fragment().is_some() {
            return Err(invalid("it must not have a query or fragment".into()));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let tls = match tls_client_config() {
            Ok(tls) => rustls::ClientConfig::clone(&tls),
            Err(e) if base.scheme() == "https" => return Err(invalid(e)),
            // Plain http:// uses no TLS: a machine without CA certificates (or with a
            // broken CA file) still reaches a server on the LAN.
            Err(e) => {
                tracing::debug!(error = %e, "no TLS configuration; plain HTTP only");
                no_tls_config().map_err(|e| invalid(format!("TLS: {e}")))?
            }
        };
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .user_agent(concat!("confab-core/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                store,
                session: Mutex::new(None),
            }),
        })
    }

    /// Restores the session saved for `account` in `store` (one refresh call), as the
    /// app does on start. [`ApiError::NotSignedIn`] when nothing is saved; when the
    /// server no longer accepts the saved token it is deleted and the server's 401 is
    /// returned.
    pub async fn resume(
        server: &str,
        store: Arc<dyn TokenStore>,
        account: &AccountKey,
    ) -> Result<Self, ApiError> {
        let client = Self::new(server, store)?;
        let inner = Arc::clone(&client.inner);
        let account = account.clone();
        // Detached for the same reason as the refresh in `token`.
        detached(async move { inner.resume(account).await }).await?;
        Ok(client)
    }

    /// The server's base URL.
    pub fn server_url(&self) -> &Url {
        &self.inner.base
    }

    /// The WebSocket endpoint of the server (`wss://.../ws`).
    pub fn ws_url(&self) -> Url {
        let mut url = self
            .inner
            .base
            .join("ws")
            .unwrap_or_else(|_| self.inner.base.clone());
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        // Switching between these special schemes is always allowed.
        let _ = url.set_scheme(scheme);
        url
    }

    /// The signed-in user as of the last login, refresh or profile call.
    pub async fn current_user(&self) -> Option<Me> {
        self.inner
            .session
            .lock()
            .await
            .as_ref()
            .map(|s| s.user.clone())
    }

    /// The account the session belongs to: what [`ApiClient::resume`] needs next time.
    pub async fn account(&self) -> Option<AccountKey> {
        self.inner
            .session
            .lock()
            .await
            .as_ref()
            .map(|s| s.account.clone())
    }

    /// The id of this client's session (marked `current` in [`ApiClient::sessions`]).
    pub async fn session_id(&self) -> Option<SessionId> {
        self.inner.session.lock().await.as_ref().map(|s| s.id)
    }

    /// A valid access token, refreshed first if it expires within a minute: what the
    /// WebSocket client authenticates with.
    pub async fn access_token(&self) -> Result<String, ApiError> {
        self.token(None).await
    }

    /// A new access token even though the current one looks valid: for when a server
    /// refused it (a new signing secret, a revoked token). Concurrent callers share one
    /// refresh.
    pub async fn renew_access_token(&self) -> Result<String, ApiError> {
        let current = self
            .inner
            .session
            .lock()
            .await
            .as_ref()
            .map(|s| s.access_token.clone());
        match current {
            Some(token) => self.token(Some(&token)).await,
            None => Err(ApiError::NotSignedIn),
        }
    }

    // --- auth ---------------------------------------------------------------------------

    /// Creates an account. It does not sign in; call [`ApiClient::login`] next.
    pub async fn register(&self, req: &RegisterRequest) -> Result<Me, ApiError> {
        let resp = self.public(Method::POST, &["api", "auth", "register"], Some(req));
        json(resp.await?).await
    }

    /// Asks the server to mail a password-reset link to `email`. The answer is the same
    /// whether or not an account has the address (`Ok` either way); errors are a
    /// malformed address, the rate limit and transport failures.
    pub async fn request_password_reset(&self, email: &str) -> Result<(), ApiError> {
        let body = serde_json::json!({ "email": email });
        let resp = self.public(
            Method::POST,
            &["api", "auth", "password-reset"],
            Some(&body),
        );
        empty(resp.await?).await
    }

    /// Sets a new password with the code from a reset link (its `token` parameter).
    /// Every session of the account is signed out, this client's included: sign in
    /// again with the new password. Field errors name `token`, `password` and
    /// `confirm_password`.
    pub async fn confirm_password_reset(
        &self,
        token: &str,
        password: &str,
        confirm_password: &str,
    ) -> Result<(), ApiError> {
        let body = serde_json::json!({
            "token": token,
            "password": password,
            "confirm_password": confirm_password,
        });
        let resp = self.public(
            Method::POST,
            &["api", "auth", "password-reset", "confirm"],
            Some(&body),
        );
        empty(resp.await?).await
    }

    /// Signs in with an email address or a username, and saves the refresh token. A
    /// session already held by this client is replaced here; it stays saved under its
    /// own account.
    pub async fn login(&self, login: &str, password: &str) -> Result<Me, ApiError> {
        let req = LoginRequest {
            login: login.to_owned(),
            password: password.to_owned(),
        };
        let sent_at = Instant::now();
        let resp = self.public(Method::POST, &["api", "auth", "login"], Some(&req));
        let auth: AuthResponse = json(resp.await?).await?;
        let account = AccountKey::new(&self.inner.base, &auth.user.username);
        let session = Session::new(account, auth, sent_at);
        let user = session.user.clone();
        let mut current = self.inner.session.lock().await;
        self.inner.save_token(&session).await;
        *current = Some(session);
        Ok(user)
    }

    /// Signs out this session on the server and forgets it here, stored token included.
    /// The local sign-out happens even when the server cannot be told (the error is
    /// still returned, so the UI can say so).
    pub async fn logout(&self) -> Result<(), ApiError> {
        // The server wants a valid access token to sign out; refresh first if needed.
        let fresh = self.token(None).await;
        let Some(session) = self.inner.end_session().await else {
            // Already signed out (possibly by the failed refresh just now).
            return Ok(());
        };
        fresh?;
        let body = RefreshRequest {
            refresh_token: session.refresh_token.clone(),
        };
        let resp = self
            .inner
            .http
            .post(self.url(&["api", "auth", "logout"]))
            .bearer_auth(&session.access_token)
            .json(&body)
            .send()
            .await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            // The server had already ended the session.
            return Ok(());
        }
        empty(resp).await
    }

    /// Signs out every session of the account, this one included.
    pub async fn logout_all(&self) -> Result<(), ApiError> {
        self.authed_empty(Method::POST, &["api", "auth", "logout-all"], NO_BODY)
            .await?;
        self.inner.end_session().await;
        Ok(())
    }

    /// The account's live sessions (devices).
    pub async fn sessions(&self) -> Result<Vec<SessionInfo>, ApiError> {
        self.authed_json(Method::GET, &["api", "auth", "sessions"], NO_BODY)
            .await
    }

    /// Signs out one session of the account. Deleting this client's own session is the
    /// same as [`ApiClient::logout`].
    pub async fn delete_session(&self, id: SessionId) -> Result<(), ApiError> {
        let id_text = id.to_string();
        self.authed_empty(
            Method::DELETE,
            &["api", "auth", "sessions", &id_text],
            NO_BODY,
        )
        .await?;
        if self.session_id().await == Some(id) {
            self.inner.end_session().await;
        }
        Ok(())
    }

    /// Changes the password. The server signs out every other session; this one stays.
    pub async fn change_password(&self, req: &ChangePasswordRequest) -> Result<(), ApiError> {
        self.authed_empty(Method::POST, &["api", "auth", "password"], Some(req))
            .await
    }

    // --- users --------------------------------------------------------------------------

    /// The signed-in user's profile.
    pub async fn me(&self) -> Result<Me, ApiError> {
        let me: Me = self
            .authed_json(Method::GET, &["api", "users", "me"], NO_BODY)
            .await?;
        self.remember_user(&me).await;
        Ok(me)
    }

    /// Changes the display name and status text: `None` keeps a field, `Some("")`
    /// clears it.
    pub async fn update_me(&self, req: &UpdateProfileRequest) -> Result<Me, ApiError> {
        let me: Me = self
            .authed_json(Method::PATCH, &["api", "users", "me"], Some(req))
            .await?;
        self.remember_user(&me).await;
        Ok(me)
    }

    /// Another user's public profile.
    pub async fn user(&self, id: UserId) -> Result<PublicUser, ApiError> {
        let id = id.to_string();
        self.authed_json(Method::GET, &["api", "users", &id], NO_BODY)
            .await
    }

    // --- rooms --------------------------------------------------------------------------

    /// Creates a room owned by the signed-in user.
    pub async fn create_room(&self, req: &CreateRoomRequest) -> Result<Room, ApiError> {
        self.authed_json(Method::POST, &["api", "rooms"], Some(req))
            .await
    }

    /// The rooms the user owns or joined, most recently joined first.
    pub async fn rooms(&self) -> Result<Vec<Room>, ApiError> {
        self.authed_json(Method::GET, &["api", "rooms"], NO_BODY)
            .await
    }

    /// A room and its members (members only; anyone else gets `not_found`).
    pub async fn room(&self, id: RoomId) -> Result<RoomDetail, ApiError> {
        let id = id.to_string();
        self.authed_json(Method::GET, &["api", "rooms", &id], NO_BODY)
            .await
    }

    /// Joins a room by id (succeeds for an existing member too).
    pub async fn join_room(&self, id: RoomId) -> Result<Room, ApiError> {
        let id = id.to_string();
        self.authed_json(Method::POST, &["api", "rooms", &id, "join"], NO_BODY)
            .await
    }

    /// Leaves a room (and its call). The owner cannot; they delete it instead.
    pub async fn leave_room(&self, id: RoomId) -> Result<(), ApiError> {
        let id = id.to_string();
        self.authed_empty(Method::POST, &["api", "rooms", &id, "leave"], NO_BODY)
            .await
    }

    /// Deletes a room, ending its call (owner only).
    pub async fn delete_room(&self, id: RoomId) -> Result<(), ApiError> {
        let id = id.to_string();
        self.authed_empty(Method::DELETE, &["api", "rooms", &id], NO_BODY)
            .await
    }

    /// Creates an invite link for a room. The token in the answer is shown only once.
    pub async fn create_invite(
        &self,
        room: RoomId,
        req: &CreateInviteRequest,
    ) -> Result<Invite, ApiError> {
        let room = room.to_string();
        self.authed_json(Method::POST, &["api", "rooms", &room, "invites"], Some(req))
            .await
    }

    /// Joins the room an invite token leads to.
    pub async fn accept_invite(&self, token: &str) -> Result<Room, ApiError> {
        self.authed_json(Method::POST, &["api", "invites", token, "accept"], NO_BODY)
            .await
    }

    // --- room lists and group management -------------------------------------------

    /// Every room of mine as the room list shows it: kind, title, other user and their
    /// presence (direct rooms), last message, unread and mention counts, read marker,
    /// and the room's change counter `rev` (the catch-up cursor).
    pub async fn room_summaries(&self) -> Result<Vec<RoomSummary>, ApiError> {
        self.authed_json(Method::GET, &["api", "rooms"], NO_BODY)
            .await
    }

    /// Renames a group or changes its call capacity (admins).
    pub async fn update_room(&self, id: RoomId, req: &UpdateRoomRequest) -> Result<Room, ApiError> {
        let id = id.to_string();
        self.authed_json(Method::PATCH, &["api", "rooms", &id], Some(req))
            .await
    }

    /// Adds one of my contacts to a group (admins).
    pub async fn add_member(&self, room: RoomId, user: UserId) -> Result<RoomMember, ApiError> {
        let room = room.to_string();
        let req = AddMemberRequest { user_id: user };
        self.authed_json(
            Method::POST,
            &["api", "rooms", &room, "members"],
            Some(&req),
        )
        .await
    }

    /// Removes a member from a group (admins); my own id leaves the room.
    pub async fn remove_member(&self, room: RoomId, user: UserId) -> Result<(), ApiError> {
        let (room, user) = (room.to_string(), user.to_string());
        self.authed_empty(
            Method::DELETE,
            &["api", "rooms", &room, "members", &user],
            NO_BODY,
        )
        .await
    }

    /// Makes a member an admin or a plain member again (the owner).
    pub async fn update_member(
        &self,
        room: RoomId,
        user: UserId,
        role: RoomRole,
    ) -> Result<RoomMember, ApiError> {
        let (room, user) = (room.to_string(), user.to_string());
        let req = UpdateMemberRequest { role };
        self.authed_json(
            Method::PATCH,
            &["api", "rooms", &room, "members", &user],
            Some(&req),
        )
        .await
    }

    /// My own settings for a room (muted); answers with the room as my list shows it.
    pub async fn room_settings(
        &self,
        room: RoomId,
        req: &RoomSettingsRequest,
    ) -> Result<RoomSummary, ApiError> {
        let room = room.to_string();
        self.authed_json(
            Method::PATCH,
            &["api", "rooms", &room, "settings"],
            Some(req),
        )
        .await
    }

    // --- messages -----------------------------------------------------------------------

    /// Sends a message with the client-made idempotency `key`. Returns the stored message
    /// and whether it was stored by this call (false: the key had been used for this same
    /// message already, and the server answered with the original). Retrying with the
    /// same key after any failure never makes a second message.
    pub async fn send_message(
        &self,
        room: RoomId,
        key: &str,
        req: &SendMessageRequest,
    ) -> Result<(Message, bool), ApiError> {
        let room = room.to_string();
        let resp = self
            .authed_with(
                Method::POST,
                &["api", "rooms", &room, "messages"],
                &[],
                Some(key),
                Some(req),
            )
            .await?;
        let created = resp.status() == StatusCode::CREATED;
        Ok((json(resp).await?, created))
    }

    /// A page of a room's timeline, in ascending seq.
    pub async fn messages(
        &self,
        room: RoomId,
        anchor: PageAnchor,
        limit: Option<u32>,
    ) -> Result<MessagePage, ApiError> {
        let room = room.to_string();
        let mut query = Vec::new();
        match anchor {
            PageAnchor::Latest => {}
            PageAnchor::Before(seq) => query.push(("before", seq.to_string())),
            PageAnchor::After(seq) => query.push(("after", seq.to_string())),
            PageAnchor::Around(seq) => query.push(("around", seq.to_string())),
        }
        if let Some(limit) = limit {
            query.push(("limit", limit.to_string()));
        }
        let resp = self
            .authed_with(
                Method::GET,
                &["api", "rooms", &room, "messages"],
                &query,
                None,
                NO_BODY,
            )
            .await?;
        json(resp).await
    }

    /// Every message created or changed after rev `since`, in ascending rev (one page;
    /// ask again from the answer's `rev` while `has_more`).
    pub async fn changes(
        &self,
        room: RoomId,
        since: u64,
        limit: Option<u32>,
    ) -> Result<ChangesPage, ApiError> {
        let room = room.to_string();
        let mut query = vec![("since", since.to_string())];
        if let Some(limit) = limit {
            query.push(("limit", limit.to_string()));
        }
        let resp = self
            .authed_with(
                Method::GET,
                &["api", "rooms", &room, "changes"],
                &query,
                None,
                NO_BODY,
            )
            .await?;
        json(resp).await
    }

    /// Edits my message.
    pub async fn edit_message(
        &self,
        room: RoomId,
        message: MessageId,
        body: &str,
    ) -> Result<Message, ApiError> {
        let (room, message) = (room.to_string(), message.to_string());
        let req = EditMessageRequest {
            body: body.to_owned(),
        };
        self.authed_json(
            Method::PATCH,
            &["api", "rooms", &room, "messages", &message],
            Some(&req),
        )
        .await
    }

    /// Deletes a message (mine, or any in a group I administer); answers the tombstone.
    pub async fn delete_message(
        &self,
        room: RoomId,
        message: MessageId,
    ) -> Result<Message, ApiError> {
        let (room, message) = (room.to_string(), message.to_string());
        self.authed_json(
            Method::DELETE,
            &["api", "rooms", &room, "messages", &message],
            NO_BODY,
        )
        .await
    }

    /// Adds (`add`) or removes my reaction `emoji` (one emoji) on a message.
    pub async fn react(
        &self,
        room: RoomId,
        message: MessageId,
        emoji: &str,
        add: bool,
    ) -> Result<Message, ApiError> {
        let (room, message) = (room.to_string(), message.to_string());
        let method = if add { Method::PUT } else { Method::DELETE };
        self.authed_json(
            method,
            &[
                "api",
                "rooms",
                &room,
                "messages",
                &message,
                "reactions",
                emoji,
            ],
            NO_BODY,
        )
        .await
    }

    /// Moves my read marker forward to `seq`; answers the marker now.
    pub async fn mark_read(&self, room: RoomId, seq: u64) -> Result<u64, ApiError> {
        let room = room.to_string();
        let marker: ReadRequest = self
            .authed_json(
                Method::POST,
                &["api", "rooms", &room, "read"],
                Some(&ReadRequest { seq }),
            )
            .await?;
        Ok(marker.seq)
    }

    // --- contacts -----------------------------------------------------------------------

    /// Users whose username starts with `q` or whose display name contains it (2+
    /// characters; at most 20; the exact username first).
    pub async fn search_users(&self, q: &str) -> Result<Vec<PublicUser>, ApiError> {
        let resp = self
            .authed_with(
                Method::GET,
                &["api", "users", "search"],
                &[("q", q.to_owned())],
                None,
                NO_BODY,
            )
            .await?;
        json(resp).await
    }

    /// My contacts, with presence and our direct room.
    pub async fn contacts(&self) -> Result<Vec<Contact>, ApiError> {
        self.authed_json(Method::GET, &["api", "contacts"], NO_BODY)
            .await
    }

    /// Ends a contact (our direct room stays readable, read-only).
    pub async fn remove_contact(&self, user: UserId) -> Result<(), ApiError> {
        let user = user.to_string();
        self.authed_empty(Method::DELETE, &["api", "contacts", &user], NO_BODY)
            .await
    }

    /// Asks `user` to become my contact; when they had asked me already we are contacts
    /// at once (`accepted`).
    pub async fn send_contact_request(
        &self,
        user: UserId,
    ) -> Result<ContactRequestOutcome, ApiError> {
        let req = SendContactRequest { user_id: user };
        self.authed_json(Method::POST, &["api", "contacts", "requests"], Some(&req))
            .await
    }

    /// Pending contact requests to and from me.
    pub async fn contact_requests(&self) -> Result<ContactRequests, ApiError> {
        self.authed_json(Method::GET, &["api", "contacts", "requests"], NO_BODY)
            .await
    }

    /// Accepts a request to me; answers the new contact.
    pub async fn accept_contact_request(&self, id: ContactRequestId) -> Result<Contact, ApiError> {
        let id = id.to_string();
        self.authed_json(
            Method::POST,
            &["api", "contacts", "requests", &id, "accept"],
            NO_BODY,
        )
        .await
    }

    /// Declines a request to me.
    pub async fn decline_contact_request(&self, id: ContactRequestId) -> Result<(), ApiError> {
        let id = id.to_string();
        self.authed_empty(
            Method::POST,
            &["api", "contacts", "requests", &id, "decline"],
            NO_BODY,
        )
        .await
    }

    /// Withdraws a request I sent.
    pub async fn cancel_contact_request(&self, id: ContactRequestId) -> Result<(), ApiError> {
        let id = id.to_string();
        self.authed_empty(
            Method::DELETE,
            &["api", "contacts", "requests", &id],
            NO_BODY,
        )
        .await
    }

    /// The users I block.
    pub async fn blocks(&self) -> Result<Vec<BlockedUser>, ApiError> {
        self.authed_json(Method::GET, &["api", "blocks"], NO_BODY)
            .await
    }

    /// Blocks a user (also ends our contact). Idempotent.
    pub async fn block(&self, user: UserId) -> Result<(), ApiError> {
        let user = user.to_string();
        self.authed_empty(Method::PUT, &["api", "blocks", &user], NO_BODY)
            .await
    }

    /// Unblocks a user (does not make us contacts again). Idempotent.
    pub async fn unblock(&self, user: UserId) -> Result<(), ApiError> {
        let user = user.to_string();
        self.authed_empty(Method::DELETE, &["api", "blocks", &user], NO_BODY)
            .await
    }

    /// The one direct room with a contact, created on first use.
    pub async fn open_direct(&self, user: UserId) -> Result<Room, ApiError> {
        let user = user.to_string();
        self.authed_json(Method::POST, &["api", "contacts", &user, "direct"], NO_BODY)
            .await
    }

    // --- calls --------------------------------------------------------------------------

    /// The STUN and TURN servers for a call's peer connections, TURN credentials included.
    /// The credentials expire after `ttl` seconds: fetch them for each call rather than
    /// once per session. An empty list means host candidates only (a LAN server).
    pub async fn ice_servers(&self) -> Result<IceServersResponse, ApiError> {
        self.authed_json(Method::GET, &["api", "ice-servers"], NO_BODY)
            .await
    }

    // --- health -------------------------------------------------------------------------

    /// Whether the server is up (`GET /healthz`); needs no session.
    pub async fn health(&self) -> Result<Health, ApiError> {
        json(self.public(Method::GET, &["healthz"], NO_BODY).await?).await
    }

    // --- plumbing -----------------------------------------------------------------------

    fn url(&self, segments: &[&str]) -> Url {
        self.inner.url(segments)
    }

    /// A request without a session.
    async fn public<B: Serialize + ?Sized>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&B>,
    ) -> Result<Response, ApiError> {
        let mut req = self.inner.http.request(method, self.url(segments));
        if let Some(body) = body {
            req = req.json(body);
        }
        Ok(req.send().await?)
    }

    /// A request with the session's access token: refreshed first when it is about to
    /// expire, and once more (with one retry) when the server refuses it anyway. That
    /// happens after the machine slept (`Instant` does not count suspended time on every
    /// platform), with clock skew, or when the server's signing key changed. Retrying is
    /// safe for every method: a 401 comes from the token check, before any effect.
    async fn authed<B: Serialize + ?Sized>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&B>,
    ) -> Result<Response, ApiError> {
        self.authed_with(method, segments, &[], None, body).await
    }

    /// [`ApiClient::authed`] with a query string and an optional `Idempotency-Key`.
    async fn authed_with<B: Serialize + ?Sized>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        idempotency_key: Option<&str>,
        body: Option<&B>,
    ) -> Result<Response, ApiError> {
        let mut url = self.url(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let send = |token: &str| {
            let mut req = self
                .inner
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(token);
            if let Some(key) = idempotency_key {
                req = req.header("idempotency-key", key);
            }
            if let Some(body) = body {
                req = req.json(body);
            }
            req.send()
        };
        let token = self.token(None).await?;
        let resp = send(&token).await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        tracing::debug!(path = url.path(), "access token refused; refreshing once");
        let token = self.token(Some(&token)).await?;
        Ok(send(&token).await?)
    }

    async fn authed_json<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        json(self.authed(method, segments, body).await?).await
    }

    async fn authed_empty<B: Serialize + ?Sized>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&B>,
    ) -> Result<(), ApiError> {
        empty(self.authed(method, segments, body).await?).await
    }

    /// A usable access token; refreshes when the current one is about to expire or is
    /// `rejected` (the server just refused it).
    async fn token(&self, rejected: Option<&str>) -> Result<String, ApiError> {
        if let Some(session) = self.inner.session.lock().await.as_ref() {
            if let Some(token) = session.usable_token(rejected) {
                return Ok(token.to_owned());
            }
        } else {
            return Err(ApiError::NotSignedIn);
        }
        let inner = Arc::clone(&self.inner);
        let rejected = rejected.map(str::to_owned);
        // Detached: once the server has rotated the refresh token, the new one must reach
        // memory and the store even if this caller gives up midway (a UI timeout, a
        // `select!`); otherwise the next refresh would present the spent token and the
        // server would revoke the whole session.
        detached(async move { inner.refresh(rejected.as_deref()).await }).await
    }

    async fn remember_user(&self, me: &Me) {
        if let Some(session) = self.inner.session.lock().await.as_mut() {
            session.user = me.clone();
        }
    }
}

impl Inner {
    /// `base` plus percent-encoded path segments (invite tokens and ids go in paths).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        // `new` refused URLs that cannot be a base, so this always succeeds.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Refreshes the session unless another caller did while this one waited for the
    /// lock. A 401 from the server means the session is over: it is forgotten here and
    /// in the store.
    async fn refresh(&self, rejected: Option<&str>) -> Result<String, ApiError> {
        let mut current = self.session.lock().await;
        let Some(session) = current.as_ref() else {
            return Err(ApiError::NotSignedIn);
        };
        if let Some(token) = session.usable_token(rejected) {
            return Ok(token.to_owned());
        }
        let account = session.account.clone();
        let sent_at = Instant::now();
        match self.post_refresh(&session.refresh_token).await {
            Ok(auth) => {
                let session = Session::new(account, auth, sent_at);
                self.save_token(&session).await;
                let token = session.access_token.clone();
                *current = Some(session);
                tracing::debug!("access token refreshed");
                Ok(token)
            }
            Err(e) if e.status() == Some(StatusCode::UNAUTHORIZED) => {
                tracing::warn!(%account, error = %e, "the server ended the session");
                *current = None;
                self.forget_token(&account).await;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Loads the saved refresh token of `account` and starts a session with it.
    async fn resume(&self, account: AccountKey) -> Result<(), ApiError> {
        let store = Arc::clone(&self.store);
        let key = account.clone();
        let saved = blocking(move || store.load(&key)).await??;
        let Some(refresh_token) = saved else {
            return Err(ApiError::NotSignedIn);
        };
        let mut current = self.session.lock().await;
        let sent_at = Instant::now();
        match self.post_refresh(&refresh_token).await {
            Ok(auth) => {
                let session = Session::new(account, auth, sent_at);
                self.save_token(&session).await;
                *current = Some(session);
                Ok(())
            }
            Err(e) if e.status() == Some(StatusCode::UNAUTHORIZED) => {
                self.forget_token(&account).await;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    async fn post_refresh(&self, refresh_token: &str) -> Result<AuthResponse, ApiError> {
        let body = RefreshRequest {
            refresh_token: refresh_token.to_owned(),
        };
        let url = self.url(&["api", "auth", "refresh"]);
        json(self.http.post(url).json(&body).send().await?).await
    }

    /// Forgets the session here and in the store; returns it, if there was one.
    async fn end_session(&self) -> Option<Session> {
        let mut current = self.session.lock().await;
        let session = current.take()?;
        // Still under the lock, so no refresh can save a token after this delete.
        self.forget_token(&session.account).await;
        Some(session)
    }

    /// Saves the session's refresh token. A failure does not fail the call that got the
    /// token (the session works; it just will not be remembered), but the stale token
    /// that might still be stored is removed: presenting it later would be a reuse, and
    /// the server would revoke the session it belongs to.
    async fn save_token(&self, session: &Session) {
        let store = Arc::clone(&self.store);
        let account = session.account.clone();
        let token = session.refresh_token.clone();
        let saved = blocking(move || store.save(&account, &token)).await;
        if let Err(e) = saved.and_then(|r| r.map_err(ApiError::from)) {
            tracing::warn!(account = %session.account, error = %e, "could not save the refresh token; this session will not be remembered");
            self.forget_token(&session.account).await;
        }
    }

    async fn forget_token(&self, account: &AccountKey) {
        let store = Arc::clone(&self.store);
        let key = account.clone();
        let deleted = blocking(move || store.delete(&key)).await;
        if let Err(e) = deleted.and_then(|r| r.map_err(ApiError::from)) {
            tracing::warn!(%account, error = %e, "could not delete the saved refresh token");
        }
    }
}

/// Where a page of a room's timeline starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PageAnchor {
    /// The newest messages.
    #[default]
    Latest,
    /// Messages with seq below this one.
    Before(u64),
    /// Messages with seq above this one.
    After(u64),
    /// Messages around this seq, it included.
    Around(u64),
}

/// For calls without a body.
const NO_BODY: Option<&()> = None;

/// The environment variable naming a PEM file of extra CA certificates to trust (a
/// private deployment's own CA), besides the operating system's trust store.
pub const CA_FILE_VAR: &str = "CONFAB_CA_FILE";

/// A CA file set by [`trust_ca_file`]; it takes precedence over [`CA_FILE_VAR`].
static CA_FILE: std::sync::Mutex<Option<std::path::PathBuf>> = std::sync::Mutex::new(None);

/// The TLS configuration last built, and the CA file it was built with.
type CachedTls = (Option<std::path::PathBuf>, Arc<rustls::ClientConfig>);
static TLS_CONFIG: std::sync::Mutex<Option<CachedTls>> = std::sync::Mutex::new(None);

/// Trusts the CA certificates in a PEM file too, for every client created from now on
/// (confab-cli's `--ca-file`). The default is [`CA_FILE_VAR`], else none.
pub fn trust_ca_file(path: impl Into<std::path::PathBuf>) {
    let mut set = CA_FILE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *set = Some(path.into());
}

/// The CA file in effect, if any.
fn ca_file() -> Option<std::path::PathBuf> {
    let set = CA_FILE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    set.or_else(|| {
        std::env::var_os(CA_FILE_VAR)
            .filter(|v| !v.is_empty())
            .map(Into::into)
    })
}

/// Whether a CA file is trusted besides the operating system's store: then a webview,
/// which trusts only the latter, cannot load the server's pictures itself.
pub fn extra_ca_in_effect() -> bool {
    ca_file().is_some()
}

/// The TLS client configuration for `https://` and `wss://`: certificates are checked
/// with the operating system's verifier and trust store (rustls-platform-verifier), plus
/// the CA file in effect. Built once per CA file; the error says which file failed.
pub fn tls_client_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let ca = ca_file();
    let mut cache = TLS_CONFIG
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((cached_ca, config)) = cache.as_ref()
        && *cached_ca == ca
    {
        return Ok(Arc::clone(config));
    }
    let extra = match &ca {
        None => Vec::new(),
        Some(path) => read_ca_file(path).map_err(|e| {
            format!(
                "the CA file {} ({CA_FILE_VAR} or --ca-file) cannot be used: {e}",
                path.display()
            )
        })?,
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier =
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra, Arc::clone(&provider))
            .map_err(|e| format!("cannot set up certificate verification: {e}"))?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS protocol versions: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    let config = Arc::new(config);
    *cache = Some((ca, Arc::clone(&config)));
    Ok(config)
}

/// A TLS configuration that trusts nothing, for a client that only speaks plain HTTP.
fn no_tls_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth())
}

fn read_ca_file(
    path: &std::path::Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("it holds no PEM certificate".into());
    }
    Ok(certs)
}

/// A transport error with its causes (reqwest's own message is only the outermost), and
/// a hint when a certificate was the problem.
fn transport_reason(e: &reqwest::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    let mut reason = parts.join(": ");
    if reason.contains("certificate") {
        reason.push_str(&format!(
            " (the server's TLS certificate is not trusted here; for a private CA set \
             {CA_FILE_VAR} or --ca-file)"
        ));
    }
    reason
}

/// Runs `fut` on its own task and waits for it; the task finishes even if the caller
/// stops waiting. A panic in it is passed on to the caller.
async fn detached<T: Send + 'static>(
    fut: impl Future<Output = Result<T, ApiError>> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::spawn(fut).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(ApiError::Interrupted),
    }
}

/// Runs a token-store call on the blocking pool: keyring calls are synchronous IPC.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => Ok(value),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(ApiError::Interrupted),
    }
}

/// The JSON body of a successful answer, or the error.
async fn json<T: DeserializeOwned>(resp: Response) -> Result<T, ApiError> {
    let status = resp.status();
    if !status.is_success() {
        return Err(error_of(resp).await);
    }
    let bytes = resp.bytes().await?;
    serde_json::from_slice(&bytes).map_err(|source| ApiError::Decode { status, source })
}

/// Success without a body (204), or the error.
async fn empty(resp: Response) -> Result<(), ApiError> {
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(error_of(resp).await)
    }
}

/// The error an unsuccessful answer carries.
async fn error_of(resp: Response) -> ApiError {
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .map(Duration::from_secs);
    let bytes = match resp.bytes().await {
        Ok(bytes) => bytes,
        Err(e) => return ApiError::Transport(e),
    };
    match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(body) => ApiError::Server {
            status,
            detail: body.error,
            retry_after,
        },
        Err(source) => ApiError::Decode { status, source },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keystore::MemoryStore;

    fn client(server: &str) -> Result<ApiClient, ApiError> {
        ApiClient::new(server, Arc::new(MemoryStore::new()))
    }

    #[test]
    fn the_client_is_shareable_across_tasks() {
        fn shareable<T: Send + Sync + Clone + 'static>() {}
        shareable::<ApiClient>();
        fn error<T: std::error::Error + Send + Sync + 'static>() {}
        error::<ApiError>();
    }

    #[test]
    fn urls_keep_a_path_prefix_and_encode_segments() -> Result<(), ApiError> {
        let api = client("https://example.com/confab")?;
        assert_eq!(
            api.url(&["api", "invites", "a/b?c", "accept"]).as_str(),
            "https://example.com/confab/api/invites/a%2Fb%3Fc/accept"
        );
        assert_eq!(api.ws_url().as_str(), "wss://example.com/confab/ws");
        let api = client("http://127.0.0.1:8080/")?;
        assert_eq!(
            api.url(&["healthz"]).as_str(),
            "http://127.0.0.1:8080/healthz"
        );
        assert_eq!(api.ws_url().as_str(), "ws://127.0.0.1:8080/ws");
        Ok(())
    }

    #[test]
    fn unusable_server_addresses_are_refused() {
        for bad in [
            "chat.example.com",
            "ftp://example.com",
            "https://x.test/?a=1",
            "",
        ] {
            assert!(
                matches!(client(bad), Err(ApiError::InvalidServerUrl { .. })),
                "{bad} was accepted"
            );
        }
    }

    #[test]
    fn short_lived_tokens_are_not_refreshed_on_every_request() {
        let auth = |expires_in| AuthResponse {
            access_token: "a".into(),
            refresh_token: "r".into(),
            token_type: "Bearer".into(),
            expires_in,
            refresh_expires_in: 3600,
            session_id: SessionId::new(),
            user: Me {
                id: UserId::new(),
                username: "alice".into(),
                email: "alice@example.com".into(),
                display_name: None,
                status_text: None,
                share_read_receipts: true,
                created_at: time::OffsetDateTime::UNIX_EPOCH,
                avatar_url: None,
            },
        };
        let url = Url::parse("http://a.test/").expect("valid");
        let account = AccountKey::new(&url, "alice");
        let long = Session::new(account.clone(), auth(900), Instant::now());
        assert_eq!(long.margin, REFRESH_MARGIN);
        assert_eq!(long.usable_token(None), Some("a"));
        assert_eq!(long.usable_token(Some("a")), None);
        let short = Session::new(account.clone(), auth(2), Instant::now());
        assert_eq!(short.usable_token(None), Some("a"));
        let expired = Session::new(account, auth(2), Instant::now() - Duration::from_secs(2));
        assert_eq!(expired.usable_token(None), None);
        assert!(!format!("{expired:?}").contains("\"a\""));
    }
}
