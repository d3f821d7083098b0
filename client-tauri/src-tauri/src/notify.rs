//! The messenger's way out to the user: its events to the window, OS notifications
//! (new messages when the window is unfocused or another room is open, contact requests,
//! incoming calls; muted rooms and "mute notifications" respected), the total unread in
//! the window title, and the tray icon with its menu (open, mute notifications, quit).

use crate::events::MessengerEvent;
use crate::messenger::{Notice, Outlet};
use shared::RoomId;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use tauri::menu::{CheckMenuItem, Menu, MenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_notification::NotificationExt;
use tauri_specta::Event;

/// What decides whether a notice becomes a notification.
#[derive(Debug, Default)]
pub struct Attention {
    focused: AtomicBool,
    open_room: Mutex<Option<RoomId>>,
    muted: AtomicBool,
    unread: AtomicU32,
}

impl Attention {
    pub fn set_focused(&self, focused: bool) {
        self.focused.store(focused, Ordering::Relaxed);
    }

    pub fn set_open_room(&self, room: Option<RoomId>) {
        *self.open_room.lock().unwrap_or_else(|e| e.into_inner()) = room;
    }

    pub fn set_muted(&self, muted: bool) {
        self.muted.store(muted, Ordering::Relaxed);
    }

    pub fn muted(&self) -> bool {
        self.muted.load(Ordering::Relaxed)
    }

    /// A message in `room` notifies unless notifications or the room are muted, or the
    /// user is looking at that room right now.
    pub fn notifies_message(&self, room: RoomId, room_muted: bool) -> bool {
        if self.muted() || room_muted {
            return false;
        }
        let open = *self.open_room.lock().unwrap_or_else(|e| e.into_inner());
        !(self.focused.load(Ordering::Relaxed) && open == Some(room))
    }
}

/// The window title with `unread` messages waiting.
pub fn title(unread: u32) -> String {
    if unread == 0 {
        "Confab".to_owned()
    } else {
        format!("Confab ({unread})")
    }
}

/// The app's [`Outlet`]: the window and the OS.
pub struct AppOutlet<R: Runtime> {
    app: AppHandle<R>,
    attention: std::sync::Arc<Attention>,
}

impl<R: Runtime> std::fmt::Debug for AppOutlet<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppOutlet").finish_non_exhaustive()
    }
}

impl<R: Runtime> AppOutlet<R> {
    pub fn new(app: AppHandle<R>, attention: std::sync::Arc<Attention>) -> Self {
        Self { app, attention }
    }

    /// A notification that opens `room` when clicked (Linux: through the notification
    /// service's default action; elsewhere the plugin, without the click).
    fn show_room(&self, title: &str, body: &str, room: RoomId) {
        #[cfg(target_os = "linux")]
        {
            use std::sync::atomic::AtomicUsize;
            /// Threads waiting for clicks at most; past that, notifications still show.
            const WAITING_MAX: usize = 8;
            static WAITING: AtomicUsize = AtomicUsize::new(0);
            tracing::info!(title, "notification");
            let shown = notify_rust::Notification::new()
                .appname("Confab")
                .summary(title)
                .body(body)
                .action("default", "Open")
                .show();
            match shown {
                Ok(handle) => {
                    if WAITING.fetch_add(1, Ordering::Relaxed) >= WAITING_MAX {
                        WAITING.fetch_sub(1, Ordering::Relaxed);
                        return;
                    }
                    let app = self.app.clone();
                    // Ends when the notification is clicked, dismissed or expires.
                    let spawned = std::thread::Builder::new()
                        .name("notification".into())
                        .spawn(move || {
                            handle.wait_for_action(|action| {
                                if action == "default" {
                                    show_window(&app);
                                    let _ = (MessengerEvent::OpenRoom { room_id: room }).emit(&app);
                                }
                            });
                            WAITING.fetch_sub(1, Ordering::Relaxed);
                        });
                    if spawned.is_err() {
                        WAITING.fetch_sub(1, Ordering::Relaxed);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot show a notification"),
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = room;
            self.show(title, body);
        }
    }

    fn show(&self, title: &str, body: &str) {
        tracing::info!(title, "notification");
        if let Err(e) = self
            .app
            .notification()
            .builder()
            .title(title)
            .body(body)
            .show()
        {
            tracing::warn!(error = %e, "cannot show a notification");
        }
    }

    fn set_unread(&self, total: u32) {
        if self.attention.unread.swap(total, Ordering::Relaxed) == total {
            return;
        }
        if let Some(window) = self.app.get_webview_window("main")
            && let Err(e) = window.set_title(&title(total))
        {
            tracing::warn!(error = %e, "cannot set the window title");
        }
        if let Some(tray) = self.app.tray_by_id(TRAY_ID) {
            let tip = match total {
                0 => "Confab".to_owned(),
                n => format!("Confab: {n} unread"),
            };
            let _ = tray.set_tooltip(Some(&tip));
            let _ = tray.set_title((total > 0).then(|| total.to_string()).as_deref());
        }
    }
}

impl<R: Runtime> Outlet for AppOutlet<R> {
    fn event(&self, event: MessengerEvent) {
        if let Err(e) = event.emit(&self.app) {
            tracing::warn!(error = %e, "cannot send a messenger event to the window");
        }
    }

    fn transfer(&self, event: crate::events::TransferEvent) {
        if let Err(e) = event.emit(&self.app) {
            tracing::debug!(error = %e, "cannot send a transfer event to the window");
        }
    }

    fn notice(&self, notice: Notice) {
        match notice {
            Notice::Message {
                room_id,
                muted,
                title,
                body,
            } => {
                if self.attention.notifies_message(room_id, muted) {
                    self.show_room(&title, &body, room_id);
                }
            }
            Notice::ContactRequest { from } => {
                if !self.attention.muted() {
                    self.show(
                        "Contact request",
                        &format!("{from} wants to be your contact"),
                    );
                }
            }
            Notice::Ringing {
                room_id,
                from,
                video,
            } => {
                if !self.attention.muted() {
                    let what = if video { "video call" } else { "call" };
                    self.show_room(
                        &format!("{from} is calling"),
                        &format!("Incoming {what}"),
                        room_id,
                    );
                }
            }
            Notice::Unread { total } => self.set_unread(total),
        }
    }
}

const TRAY_ID: &str = "confab";

/// Adds the tray icon and its menu. A desktop without a tray (no status notifier host)
/// only loses the icon.
pub fn tray<R: Runtime>(
    app: &AppHandle<R>,
    attention: std::sync::Arc<Attention>,
) -> tauri::Result<(TrayIcon<R>, CheckMenuItem<R>)> {
    let open = MenuItem::with_id(app, "open", "Open Confab", true, None::<&str>)?;
    let mute = CheckMenuItem::with_id(
        app,
        "mute",
        "Mute notifications",
        true,
        attention.muted(),
        None::<&str>,
    )?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&open, &mute, &quit])?;
    let mut builder = TrayIconBuilder::with_id(TRAY_ID)
        .tooltip("Confab")
        .menu(&menu)
        .on_menu_event(move |app, event| match event.id().as_ref() {
            "open" => show_window(app),
            "mute" => {
                // The item toggled itself.
                let muted = !attention.muted();
                attention.set_muted(muted);
                let _ = (MessengerEvent::NotificationsMuted { muted }).emit(app);
            }
            "quit" => app.exit(0),
            _ => {}
        });
    if let Some(icon) = app.default_window_icon() {
        builder = builder.icon(icon.clone());
    }
    Ok((builder.build(app)?, mute))
}

/// Shows and focuses the main window.
pub fn show_window<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}

/// The tray's "Mute notifications" item, to follow changes made elsewhere.
pub struct TrayMute<R: Runtime>(pub CheckMenuItem<R>);

impl<R: Runtime> std::fmt::Debug for TrayMute<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TrayMute")
    }
}

/// Mutes or unmutes notifications and tells the window and the tray.
pub fn set_muted<R: Runtime>(app: &AppHandle<R>, attention: &Attention, muted: bool) {
    attention.set_muted(muted);
    if let Some(item) = app.try_state::<TrayMute<R>>() {
        let _ = item.0.set_checked(muted);
    }
    let _ = (MessengerEvent::NotificationsMuted { muted }).emit(app);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_notifies_unless_muted_or_looked_at() {
        let a = Attention::default();
        let (room, other) = (RoomId::new(), RoomId::new());
        assert!(a.notifies_message(room, false), "unfocused");
        assert!(!a.notifies_message(room, true), "the room is muted");
        a.set_focused(true);
        a.set_open_room(Some(room));
        assert!(!a.notifies_message(room, false), "looking at it");
        assert!(a.notifies_message(other, false), "another room is open");
        a.set_focused(false);
        assert!(a.notifies_message(room, false), "open but unfocused");
        a.set_muted(true);
        assert!(!a.notifies_message(other, false), "notifications muted");
        assert_eq!(title(0), "Confab");
        assert_eq!(title(3), "Confab (3)");
    }
}
