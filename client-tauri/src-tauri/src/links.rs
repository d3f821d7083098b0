//! `confab://invite/<code>` links, which the server's invite page offers ("Open the invite
//! in the app"). The OS starts the app with the link as its one argument (the .deb's
//! desktop entry registers the scheme; a release build run from elsewhere registers itself
//! at start); when Confab already runs, the single-instance plugin hands the second start's
//! arguments to the running one, which the deep-link plugin turns into an "opened" event.
//!
//! Either way the link waits here until the signed-in window takes it
//! (`take_invite_link`) and joins through the same path as the join box, so a link opened
//! before signing in is joined after it; a window that is signed in already is told at
//! once ([`MessengerEvent::InviteLinkOpened`]) and brought to the front.

use crate::events::MessengerEvent;
use std::path::PathBuf;
use std::sync::Mutex;
use tauri::{AppHandle, Manager, Runtime};
use tauri_specta::Event as _;
use url::Url;

/// The scheme (tauri.conf.json's `plugins.deep-link.desktop.schemes`).
pub const SCHEME: &str = "confab";

/// Longer than any invite link (an invite code is at most 128 characters).
const MAX_LINK_LEN: usize = 512;

/// The last link opened and not yet taken by the window.
#[derive(Debug, Default)]
pub struct PendingLink(Mutex<Option<String>>);

impl PendingLink {
    /// Keeps `url` if it is one of ours; returns whether it did.
    pub fn offer(&self, url: &Url) -> bool {
        if url.scheme() != SCHEME || url.as_str().len() > MAX_LINK_LEN {
            tracing::warn!(
                len = url.as_str().len(),
                scheme = url.scheme(),
                "not a Confab link"
            );
            return false;
        }
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(url.as_str().to_owned());
        true
    }

    pub fn take(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Links the OS (or a second start) handed over: kept for the window (in the app's
/// [`PendingLink`]), which is told and shown.
pub fn opened<R: Runtime>(app: &AppHandle<R>, urls: Vec<Url>) {
    let pending = app.state::<PendingLink>();
    let mut kept = false;
    for url in &urls {
        kept |= pending.offer(url);
    }
    if kept {
        if let Err(e) = MessengerEvent::InviteLinkOpened.emit(app) {
            tracing::warn!(error = %e, "cannot tell the window about the link");
        }
        crate::notify::show_window(app);
    }
}

/// The single-instance plugin's D-Bus name (Linux): one running app per data directory,
/// i.e. per profile (its settings, cache and outbox). A second start in the same profile
/// hands its link over and exits; one with another `XDG_DATA_HOME` (a second profile, or
/// each desktop test's own) runs beside it rather than handing its window to a stranger.
pub fn instance_id(identifier: &str) -> String {
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_default();
    // FNV-1a: the same in every build, which std's hasher does not promise.
    let hash = data
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("{identifier}.p{hash:016x}")
}

/// Makes this binary the handler of `confab://` links when it is not installed (a release
/// build run from the source tree by scripts/run.sh, or an AppImage): the .deb's desktop
/// entry does it for an installed app. Debug builds (the tests) leave the desktop alone.
pub fn register_when_not_installed<R: Runtime>(app: &AppHandle<R>) {
    #[cfg(target_os = "linux")]
    {
        use tauri_plugin_deep_link::DeepLinkExt;
        let installed = std::env::current_exe().is_ok_and(|exe| exe.starts_with("/usr"));
        if cfg!(debug_assertions) || installed {
            return;
        }
        let app = app.clone();
        // It runs xdg-mime and update-desktop-database: not on the start's path.
        std::thread::spawn(move || {
            if let Err(e) = app.deep_link().register_all() {
                tracing::info!(error = %e, "confab:// links will not open this app");
            }
        });
    }
    #[cfg(not(target_os = "linux"))]
    let _ = app;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_links_wait_for_the_window_and_the_last_one_wins() {
        let pending = PendingLink::default();
        assert_eq!(pending.take(), None);
        let ours = |s: &str| Url::parse(s).expect("a URL");
        assert!(!pending.offer(&ours("https://example.com/invite/abcdefghijklmnop")));
        assert!(!pending.offer(&ours(&format!("confab://invite/{}", "a".repeat(600)))));
        assert_eq!(pending.take(), None);
        assert!(pending.offer(&ours("confab://invite/first-code-0123456789")));
        assert!(pending.offer(&ours("confab://invite/second-code-0123456789")));
        assert_eq!(
            pending.take().as_deref(),
            Some("confab://invite/second-code-0123456789")
        );
        assert_eq!(pending.take(), None, "taken once");
    }

    #[test]
    fn the_instance_name_is_a_dbus_name_per_data_directory() {
        let id = instance_id("org.confab.desktop");
        assert!(id.starts_with("org.confab.desktop.p"), "{id}");
        let last = id.rsplit('.').next().expect("a last element");
        assert_eq!(last.len(), 17, "{id}");
        assert!(last[1..].bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        assert_eq!(id, instance_id("org.confab.desktop"), "stable");
    }
}
