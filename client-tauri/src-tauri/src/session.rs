//! The signed-in session and everything that goes through the REST API: picking the
//! server, signing up and in (and staying signed in through the keyring), rooms and
//! invites. Tokens stay in here and in the token store; the UI only ever gets views.

use crate::error::AppError;
use crate::messenger::{Messenger, Outlet};
use crate::settings::Settings;
use crate::views::{AppInfo, InviteLink, MeView, RoomView, ServerPick, SignUpForm, rfc3339};
use confab_core::api::{ApiClient, ApiError};
use confab_core::keystore::{AccountKey, OpenedStore};
use shared::RoomId;
use shared::api::{CreateInviteRequest, CreateRoomRequest, RegisterRequest};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{RwLock, RwLockReadGuard};
use url::Url;

/// The user's session with one server.
pub struct Session {
    settings: Settings,
    store: OpenedStore,
    client: RwLock<Option<ApiClient>>,
    /// The messenger connection, open while signed in.
    messenger: RwLock<Option<Messenger>>,
    /// Where outbox files live (one per server and account).
    data_dir: PathBuf,
    outlet: Arc<dyn Outlet>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("settings", &self.settings)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

/// Invite links are valid this long.
const INVITE_TTL_SECS: u64 = 7 * 24 * 3600;

impl Session {
    pub fn new(
        settings: Settings,
        store: OpenedStore,
        data_dir: PathBuf,
        outlet: Arc<dyn Outlet>,
    ) -> Self {
        Self {
            settings,
            store,
            client: RwLock::new(None),
            messenger: RwLock::new(None),
            data_dir,
            outlet,
        }
    }

    /// The open messenger (signed in), for as long as the guard lives.
    pub async fn messenger(&self) -> Result<RwLockReadGuard<'_, Messenger>, AppError> {
        RwLockReadGuard::try_map(self.messenger.read().await, Option::as_ref)
            .map_err(|_| AppError::signed_out())
    }

    /// Opens the messenger for a freshly signed-in `client` (closing an earlier one).
    async fn open_messenger(&self, client: &ApiClient) -> Result<(), AppError> {
        let me = client
            .current_user()
            .await
            .ok_or_else(AppError::signed_out)?;
        let server = client
            .server_url()
            .host_str()
            .unwrap_or("server")
            .to_owned();
        let port = client.server_url().port_or_known_default().unwrap_or(0);
        let file = format!("outbox-{server}-{port}-{}.sqlite", me.id);
        let opened = Messenger::open(
            client.clone(),
            self.data_dir.join(file),
            Arc::clone(&self.outlet),
        )
        .await?;
        let old = self.messenger.write().await.replace(opened);
        if let Some(old) = old {
            old.close().await;
        }
        Ok(())
    }

    async fn close_messenger(&self) {
        let old = self.messenger.write().await.take();
        if let Some(old) = old {
            old.close().await;
        }
    }

    pub fn app_info(&self) -> AppInfo {
        let server_url = self.settings.get().server_url;
        AppInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            secure_storage: self.store.fallback_reason.is_none(),
            storage_note: self.store.fallback_reason.clone(),
            insecure: server_url.as_deref().is_some_and(is_insecure),
            picture_base: server_url
                .as_deref()
                .map(crate::webview_media::picture_base),
            server_url,
        }
    }

    /// Checks that a Confab server answers at `url` and remembers it. Signs out of the
    /// previous server's session in this window (its token stays in the keyring).
    pub async fn set_server(&self, url: &str) -> Result<ServerPick, AppError> {
        let url = url.trim();
        if url.is_empty() {
            return Err(AppError::field("server", "Enter the server's address."));
        }
        let client = ApiClient::new(url, self.store.store.clone())?;
        match client.health().await {
            Ok(_) => {}
            Err(ApiError::Transport(e)) => {
                return Err(AppError::field(
                    "server",
                    format!("No answer from {url}: {e}."),
                ));
            }
            Err(_) => {
                return Err(AppError::field(
                    "server",
                    format!("{url} does not look like a Confab server."),
                ));
            }
        }
        let normalized = client.server_url().to_string();
        self.settings.update(|s| {
            if s.server_url.as_deref() != Some(normalized.as_str()) {
                s.username = None;
            }
            s.server_url = Some(normalized.clone());
        });
        *self.client.write().await = None;
        self.close_messenger().await;
        Ok(ServerPick {
            insecure: is_insecure(&normalized),
            picture_base: crate::webview_media::picture_base(&normalized),
            url: normalized,
        })
    }

    /// Signs in again with the refresh token saved in the keyring, if there is one the
    /// server still accepts. `None`: the user has to sign in.
    pub async fn restore(&self) -> Result<Option<MeView>, AppError> {
        let saved = self.settings.get();
        let (Some(server), Some(username)) = (saved.server_url, saved.username) else {
            return Ok(None);
        };
        let base = Url::parse(&server).map_err(|e| AppError::field("server", e.to_string()))?;
        let account = AccountKey::new(&base, &username);
        match ApiClient::resume(&server, self.store.store.clone(), &account).await {
            Ok(client) => {
                let me = client.current_user().await.map(MeView::from);
                self.open_messenger(&client).await?;
                *self.client.write().await = Some(client);
                Ok(me)
            }
            Err(e) if e.needs_sign_in() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates the account, then signs in with it.
    pub async fn sign_up(&self, form: SignUpForm) -> Result<MeView, AppError> {
        let client = self.new_client()?;
        let request = RegisterRequest {
            username: form.username.trim().to_owned(),
            email: form.email.trim().to_owned(),
            password: form.password,
            confirm_password: form.confirm_password,
        };
        client.register(&request).await?;
        self.sign_in_with(client, &request.username, &request.password)
            .await
    }

    pub async fn log_in(&self, login: &str, password: &str) -> Result<MeView, AppError> {
        let client = self.new_client()?;
        self.sign_in_with(client, login.trim(), password).await
    }

    async fn sign_in_with(
        &self,
        client: ApiClient,
        login: &str,
        password: &str,
    ) -> Result<MeView, AppError> {
        let me = client.login(login, password).await?;
        let username = me.username.clone();
        self.settings.update(|s| s.username = Some(username));
        self.open_messenger(&client).await?;
        *self.client.write().await = Some(client);
        Ok(me.into())
    }

    /// Asks the server to mail a reset link to `email`. The answer is the same whether
    /// or not an account has that address.
    pub async fn request_password_reset(&self, email: &str) -> Result<(), AppError> {
        let email = email.trim();
        if email.is_empty() {
            return Err(AppError::field("email", "Enter your email address."));
        }
        let client = self.new_client()?;
        Ok(client.request_password_reset(email).await?)
    }

    /// Asks the server to mail the address-confirmation link to `email` again. The
    /// answer is the same whether or not an account waits for confirmation there.
    pub async fn resend_email_verification(&self, email: &str) -> Result<(), AppError> {
        let email = email.trim();
        if email.is_empty() {
            return Err(AppError::field("email", "Enter your email address."));
        }
        let client = self.new_client()?;
        Ok(client.resend_email_verification(email).await?)
    }

    /// Sets a new password with the code from the mail (or the whole link). The server
    /// signs the account out everywhere: sign in again with the new password.
    pub async fn confirm_password_reset(
        &self,
        code: &str,
        password: &str,
        confirm_password: &str,
    ) -> Result<(), AppError> {
        let token = reset_token(code)?;
        let client = self.new_client()?;
        client
            .confirm_password_reset(&token, password, confirm_password)
            .await?;
        Ok(())
    }

    /// Ends the session on the server and forgets it here, keyring included. Signed out
    /// locally even when the server cannot be told.
    pub async fn log_out(&self) -> Result<(), AppError> {
        self.close_messenger().await;
        let client = self.client.write().await.take();
        self.settings.update(|s| s.username = None);
        match client {
            Some(client) => Ok(client.logout().await?),
            None => Ok(()),
        }
    }

    /// The signed-in client.
    pub async fn client(&self) -> Result<ApiClient, AppError> {
        self.client
            .read()
            .await
            .clone()
            .ok_or_else(AppError::signed_out)
    }

    fn new_client(&self) -> Result<ApiClient, AppError> {
        let server = self
            .settings
            .get()
            .server_url
            .ok_or_else(|| AppError::field("server", "Pick a server first."))?;
        Ok(ApiClient::new(&server, self.store.store.clone())?)
    }

    async fn me(&self, client: &ApiClient) -> Result<shared::UserId, AppError> {
        client
            .current_user()
            .await
            .map(|me| me.id)
            .ok_or_else(AppError::signed_out)
    }

    pub async fn list_rooms(&self) -> Result<Vec<RoomView>, AppError> {
        let client = self.client().await?;
        let rooms = client.rooms().await?;
        let me = self.me(&client).await?;
        Ok(rooms.into_iter().map(|r| RoomView::new(r, me)).collect())
    }

    pub async fn create_room(
        &self,
        title: &str,
        max_participants: Option<u32>,
    ) -> Result<RoomView, AppError> {
        let client = self.client().await?;
        let request = CreateRoomRequest {
            title: title.trim().to_owned(),
            max_participants,
        };
        let room = client.create_room(&request).await?;
        Ok(RoomView::new(room, self.me(&client).await?))
    }

    /// Joins a room by id, invite link or invite token.
    pub async fn join_room(&self, target: &str) -> Result<RoomView, AppError> {
        let client = self.client().await?;
        let room = match JoinTarget::parse(target)? {
            JoinTarget::Room(id) => client.join_room(id).await?,
            JoinTarget::Invite(token) => client.accept_invite(&token).await?,
        };
        Ok(RoomView::new(room, self.me(&client).await?))
    }

    pub async fn leave_room(&self, room_id: &str) -> Result<(), AppError> {
        let client = self.client().await?;
        Ok(client.leave_room(parse_room_id(room_id)?).await?)
    }

    /// A new invite link to the room: `<server>/invite/<token>`, which the join box
    /// accepts on any Confab app signed in to the same server.
    pub async fn create_invite(&self, room_id: &str) -> Result<InviteLink, AppError> {
        let client = self.client().await?;
        let request = CreateInviteRequest {
            expires_in: Some(INVITE_TTL_SECS),
            max_uses: None,
        };
        let invite = client
            .create_invite(parse_room_id(room_id)?, &request)
            .await?;
        let url = client
            .server_url()
            .join(&format!("invite/{}", invite.token))
            .map_err(|e| AppError::Server {
                message: e.to_string(),
            })?;
        Ok(InviteLink {
            url: url.to_string(),
            token: invite.token,
            expires_at: rfc3339(invite.expires_at),
        })
    }
}

pub fn parse_room_id(id: &str) -> Result<RoomId, AppError> {
    id.trim()
        .parse()
        .map_err(|_| AppError::field("roomId", "Not a room id."))
}

/// The reset code in what the user pasted: the code itself, or the mailed link
/// (`<server>/reset-password?token=CODE`), whose `token` parameter it takes.
pub fn reset_token(input: &str) -> Result<String, AppError> {
    let input = input.trim();
    let invalid = || AppError::field("token", "Paste the code or the link from the mail.");
    let token = match Url::parse(input) {
        Ok(url) => url
            .query_pairs()
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.trim().to_owned())
            .ok_or_else(invalid)?,
        Err(_) => input.to_owned(),
    };
    let token_like = (16..=128).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if token_like {
        Ok(token)
    } else {
        Err(invalid())
    }
}

/// Whether `server` is reached over plain http across a network that may not be the
/// user's own: not localhost/loopback, not a private (10/8, 172.16/12, 192.168/16,
/// fc00::/7) or link-local address, not a `.local` (mDNS) name. An unparsable address
/// counts as not insecure (it is refused elsewhere).
pub fn is_insecure(server: &str) -> bool {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let Ok(url) = Url::parse(server) else {
        return false;
    };
    if !matches!(url.scheme(), "http" | "ws") {
        return false;
    }
    let v4_local = |ip: Ipv4Addr| {
        ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified()
    };
    let v6_local = |ip: Ipv6Addr| {
        let first = ip.segments()[0];
        ip.is_loopback()
            || ip.is_unspecified()
            || (first & 0xfe00) == 0xfc00
            || (first & 0xffc0) == 0xfe80
            || ip.to_ipv4_mapped().is_some_and(v4_local)
    };
    match url.host() {
        None => false,
        Some(url::Host::Ipv4(ip)) => !v4_local(ip),
        Some(url::Host::Ipv6(ip)) => !v6_local(ip),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if let Ok(ip) = name.parse::<IpAddr>() {
                return match ip {
                    IpAddr::V4(ip) => !v4_local(ip),
                    IpAddr::V6(ip) => !v6_local(ip),
                };
            }
            let local =
                name == "localhost" || name.ends_with(".localhost") || name.ends_with(".local");
            !local
        }
    }
}

/// What the user pasted into the join box.
#[derive(Debug, PartialEq, Eq)]
pub enum JoinTarget {
    Room(RoomId),
    Invite(String),
}

impl JoinTarget {
    pub fn parse(input: &str) -> Result<Self, AppError> {
        let input = input.trim();
        let invalid = || {
            AppError::field(
                "target",
                "Paste a room id, an invite link or an invite code.",
            )
        };
        if input.is_empty() {
            return Err(invalid());
        }
        if let Ok(id) = input.parse::<RoomId>() {
            return Ok(Self::Room(id));
        }
        let token = match Url::parse(input) {
            Ok(url) => {
                let segments: Vec<&str> = url
                    .path_segments()
                    .map(Iterator::collect)
                    .unwrap_or_default();
                // The app's own link, `confab://invite/<code>` (crate::links): "invite" is
                // its host.
                if url.scheme() == crate::links::SCHEME {
                    match (url.host_str(), segments.as_slice()) {
                        (Some("invite"), [code]) => (*code).to_owned(),
                        _ => return Err(invalid()),
                    }
                } else {
                    match segments.iter().rposition(|s| *s == "invite") {
                        Some(i) if i + 2 == segments.len() => segments[i + 1].to_owned(),
                        _ => return Err(invalid()),
                    }
                }
            }
            Err(_) => input.to_owned(),
        };
        let token_like = (16..=128).contains(&token.len())
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if token_like {
            Ok(Self::Invite(token))
        } else {
            Err(invalid())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_insecure_only_beyond_the_local_network() {
        for url in [
            "http://chat.example.com",
            "http://chat.example.com:8080/confab/",
            "http://8.8.8.8:8080",
            "http://172.32.0.1",
            "http://192.169.1.1",
            "http://[2001:db8::1]:8080",
            "http://[::ffff:8.8.8.8]",
            "ws://example.org",
            "http://local",
            "http://example.localx",
        ] {
            assert!(is_insecure(url), "{url}");
        }
        for url in [
            "https://chat.example.com",
            "https://8.8.8.8",
            "http://localhost:8080",
            "http://LOCALHOST",
            "http://app.localhost",
            "http://127.0.0.1:8080",
            "http://127.8.9.10",
            "http://10.1.2.3",
            "http://172.16.0.1",
            "http://172.31.255.254",
            "http://192.168.1.20:8080",
            "http://169.254.3.4",
            "http://[::1]:8080",
            "http://[fd12:3456::1]",
            "http://[fc00::1]",
            "http://[fe80::1]",
            "http://[::ffff:192.168.0.1]",
            "http://confab.local:8080",
            "http://Confab.Local.",
            "not a url",
        ] {
            assert!(!is_insecure(url), "{url}");
        }
    }

    #[test]
    fn a_reset_code_may_be_pasted_as_the_mailed_link() {
        let token = "Yq3v_0-abcdefghijklmnopqrstuvwxyzABCDEFGHIJ";
        for pasted in [
            token.to_owned(),
            format!("  {token}\n"),
            format!("https://chat.example.org/reset-password?token={token}"),
            format!("http://127.0.0.1:8080/reset-password?token={token}&x=1"),
        ] {
            assert_eq!(
                reset_token(&pasted).ok().as_deref(),
                Some(token),
                "{pasted}"
            );
        }
        for bad in [
            "",
            "short",
            "https://chat.example.org/reset-password",
            "https://chat.example.org/reset-password?token=",
            "has spaces in it but is long enough",
        ] {
            let err = reset_token(bad).expect_err("refused");
            assert!(
                matches!(&err, AppError::Invalid { fields, .. } if fields.contains_key("token")),
                "{bad:?}: {err:?}"
            );
        }
    }

    #[test]
    fn the_join_box_takes_a_room_id_an_invite_link_or_a_code() {
        let id = "6f1c0a4e-2b7d-4c1e-9a35-0d2f5b8e7c11";
        assert_eq!(
            JoinTarget::parse(&format!("  {id} ")).ok(),
            Some(JoinTarget::Room(id.parse().expect("uuid")))
        );
        let token = "abcDEF123_-abcDEF123_-";
        for link in [
            format!("http://127.0.0.1:8080/invite/{token}"),
            format!("https://chat.example.com/confab/invite/{token}"),
            format!("confab://invite/{token}"),
            token.to_owned(),
        ] {
            assert_eq!(
                JoinTarget::parse(&link).ok(),
                Some(JoinTarget::Invite(token.to_owned())),
                "{link}"
            );
        }
        for bad in [
            "",
            "hello",
            "http://x/rooms/abc",
            "http://x/invite/",
            "has spaces in it for sure",
            "http://x/invite/tok/extra",
            "confab://invite/",
            "confab://rooms/abcDEF123_-abcDEF123_-",
            "confab://invite/abcDEF123_-abcDEF123_-/extra",
            "confab://invite/<script>alert(1)</script>",
        ] {
            assert!(
                matches!(JoinTarget::parse(bad), Err(AppError::Invalid { .. })),
                "{bad:?}"
            );
        }
    }
}
