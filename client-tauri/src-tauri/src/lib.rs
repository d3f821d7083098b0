//! Confab's desktop app: a thin Tauri shell over `confab-core`. The webview draws; the
//! commands here hand every request to the session (REST API, keyring) or the media
//! state (preview, call, frames), and events carry call news back to the window.

mod commands;
mod devices;
mod error;
pub mod events;
pub mod frames;
pub mod links;
mod media;
pub mod messenger;
pub mod notify;
mod screens;
pub mod session;
pub mod settings;
mod video_socket;
pub mod views;
mod webview_media;

use media::Media;
use notify::{AppOutlet, Attention};
use session::Session;
use settings::Settings;
use std::sync::Arc;
use tauri::Manager;
use tauri_specta::{Builder, collect_commands, collect_events};

pub use error::AppError;

/// Everything the commands share. Each part has its own lock.
#[derive(Debug)]
pub struct AppState {
    session: Session,
    media: Media,
    attention: Arc<Attention>,
    /// Where the window's tiles take their VP8 frames from, if it runs.
    video_socket: Option<video_socket::VideoSocket>,
}

/// The commands and events, for Tauri and for the TypeScript bindings.
pub fn specta_builder() -> Builder<tauri::Wry> {
    Builder::<tauri::Wry>::new()
        .commands(collect_commands![
            commands::app_info,
            commands::set_server,
            commands::restore_session,
            commands::sign_up,
            commands::log_in,
            commands::request_password_reset,
            commands::confirm_password_reset,
            commands::auth::resend_email_verification,
            commands::log_out,
            commands::list_rooms,
            commands::create_room,
            commands::join_room,
            commands::leave_room,
            commands::create_invite,
            commands::list_devices,
            commands::start_preview,
            commands::stop_preview,
            commands::next_frame,
            commands::call::watch_video,
            commands::call::unwatch_video,
            commands::call::video_socket,
            commands::call::request_keyframe,
            commands::join_call,
            commands::leave_call,
            commands::set_muted,
            commands::set_camera_off,
            commands::switch_video,
            commands::switch_audio,
            commands::switch_speaker,
            commands::list_screens,
            commands::share_screen,
            commands::stop_screen_share,
            commands::set_voice_processing,
            commands::list_conversations,
            commands::open_conversation,
            commands::close_conversation,
            commands::load_messages,
            commands::send_message,
            commands::retry_message,
            commands::discard_message,
            commands::edit_message,
            commands::delete_message,
            commands::react,
            commands::unreact,
            commands::mark_read,
            commands::typing,
            commands::set_presence,
            commands::update_profile,
            commands::set_room_muted,
            commands::create_group,
            commands::rename_group,
            commands::room_members,
            commands::add_member,
            commands::remove_member,
            commands::search_users,
            commands::contacts,
            commands::send_contact_request,
            commands::accept_request,
            commands::decline_request,
            commands::cancel_request,
            commands::remove_contact,
            commands::block,
            commands::unblock,
            commands::blocked_users,
            commands::open_direct,
            commands::connection_state,
            commands::set_notifications_muted,
            commands::notifications_muted,
            commands::take_invite_link,
            commands::ring_user,
            commands::answer_call,
            commands::decline_call,
            commands::ringing,
            commands::call_status,
            commands::open_link,
            commands::communities::list_communities,
            commands::communities::discover_communities,
            commands::communities::create_community,
            commands::communities::update_community,
            commands::communities::delete_community,
            commands::communities::join_community,
            commands::communities::join_community_invite,
            commands::communities::leave_community,
            commands::communities::community_members,
            commands::communities::set_community_role,
            commands::communities::kick_community_member,
            commands::communities::community_bans,
            commands::communities::ban_community_member,
            commands::communities::unban_community_member,
            commands::communities::community_invites,
            commands::communities::create_community_invite,
            commands::communities::revoke_community_invite,
            commands::communities::create_channel,
            commands::communities::update_channel,
            commands::communities::delete_channel,
            commands::communities::reorder_channels,
            commands::files::upload_file,
            commands::files::upload_bytes,
            commands::files::cancel_transfer,
            commands::files::file_links,
            commands::files::download_file,
            commands::search::search_messages,
            commands::drafts::drafts,
            commands::drafts::set_draft,
            commands::files::set_avatar,
            commands::files::clear_avatar,
            commands::files::set_community_icon,
        ])
        .events(collect_events![
            events::CallEvent,
            events::MicLevel,
            events::MessengerEvent,
            events::TransferEvent
        ])
        .typ::<views::PeerState>()
        .typ::<shared::ParticipantId>()
        .constant("LIMITS", views::LIMITS)
        .constant("LOCAL_FRAME_SOURCE", frames::LOCAL)
        .dangerously_cast_bigints_to_number()
}

/// Where the generated bindings live, relative to this crate.
pub const BINDINGS_PATH: &str = "../ui/src/bindings.ts";

/// Writes the TypeScript bindings to `path`.
pub fn export_bindings(path: &std::path::Path) -> Result<(), String> {
    specta_builder()
        .export(
            specta_typescript::Typescript::default().header(
                "// Generated by confab-app (cargo test -p confab-app bindings). Do not edit.\n",
            ),
            path,
        )
        .map_err(|e| e.to_string())
}

/// Draws the window without WebKitGTK's GPU compositing. The UI is flat DOM plus 2D
/// canvases, which WebKit's CPU path draws well; the GPU path drew each video frame through
/// a GL upload (on machines without a GPU driver, Mesa's software GL) and, measured with
/// the desktop bench, tripled the web process's CPU for the same frames.
fn software_rendering(webview: tauri::webview::PlatformWebview) {
    #[cfg(target_os = "linux")]
    {
        use webkit2gtk::{HardwareAccelerationPolicy, SettingsExt, WebViewExt};
        if let Some(settings) = webview.inner().settings() {
            settings.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = webview;
}

/// Runs the app until its window closes.
pub fn run() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("warn,rtc=error,rtc_ice=error,rtc_dtls=error")
            }),
        )
        .init();
    let builder = specta_builder();
    let context = tauri::generate_context!();
    let instance = links::instance_id(&context.config().identifier);
    let result = tauri::Builder::default()
        // First: a second start in this profile hands its arguments (a `confab://` link)
        // to this one, which the deep-link plugin turns into an "opened" event, and exits.
        .plugin(
            tauri_plugin_single_instance::Builder::new()
                .callback(|app, _args, _cwd| notify::show_window(app))
                .dbus_id(instance)
                .build(),
        )
        .plugin(tauri_plugin_deep_link::init())
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_clipboard_manager::init())
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_opener::init())
        .invoke_handler(builder.invoke_handler())
        .register_asynchronous_uri_scheme_protocol(webview_media::SCHEME, webview_media::handle)
        .on_window_event(|window, event| {
            if let tauri::WindowEvent::Focused(focused) = event
                && let Some(state) = window.try_state::<AppState>()
            {
                state.attention.set_focused(*focused);
            }
        })
        .setup(move |app| {
            builder.mount_events(app);
            {
                use tauri_plugin_deep_link::DeepLinkExt;
                app.manage(links::PendingLink::default());
                let handle = app.handle().clone();
                app.deep_link()
                    .on_open_url(move |event| links::opened(&handle, event.urls()));
                // Started by a link: it waits for the window.
                if let Ok(Some(urls)) = app.deep_link().get_current() {
                    links::opened(app.handle(), urls);
                }
                links::register_when_not_installed(app.handle());
            }
            if let Some(window) = app.get_webview_window("main") {
                window.with_webview(software_rendering)?;
            }
            let config = app.path().app_config_dir()?;
            let data = app.path().app_data_dir()?;
            let store = confab_core::keystore::open_default();
            let attention = Arc::new(Attention::default());
            let outlet = Arc::new(AppOutlet::new(app.handle().clone(), Arc::clone(&attention)));
            match notify::tray(app.handle(), Arc::clone(&attention)) {
                Ok((tray, mute)) => {
                    app.manage(tray);
                    app.manage(notify::TrayMute(mute));
                }
                Err(e) => tracing::warn!(error = %e, "no tray icon"),
            }
            let media = Media::default();
            app.manage(AppState {
                session: Session::new(
                    Settings::load(config.join("settings.json")),
                    store,
                    data,
                    outlet,
                ),
                video_socket: video_socket::VideoSocket::start(media.video_handle()),
                media,
                attention,
            });
            Ok(())
        })
        .run(context);
    if let Err(e) = result {
        eprintln!("confab: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    /// The committed bindings match the Rust side. `CONFAB_UPDATE_BINDINGS=1` rewrites
    /// them instead (run it after changing a command, event or view).
    #[test]
    fn bindings() {
        let committed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(super::BINDINGS_PATH);
        if std::env::var_os("CONFAB_UPDATE_BINDINGS").is_some() {
            super::export_bindings(&committed).expect("export");
            return;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let fresh = dir.path().join("bindings.ts");
        super::export_bindings(&fresh).expect("export");
        let fresh = std::fs::read_to_string(fresh).expect("read fresh");
        let old = std::fs::read_to_string(&committed).unwrap_or_default();
        assert!(
            fresh == old,
            "ui/src/bindings.ts is out of date: run CONFAB_UPDATE_BINDINGS=1 cargo test -p confab-app bindings"
        );
    }
}
