//! Generates the Tauri context and one `allow-<command>` permission per command listed
//! here, so the window's capability (capabilities/main.json) can grant exactly these.

/// Every command the UI calls (keep in step with `commands::handlers`).
const COMMANDS: &[&str] = &[
    "app_info",
    "set_server",
    "restore_session",
    "sign_up",
    "log_in",
    "log_out",
    "list_rooms",
    "create_room",
    "join_room",
    "leave_room",
    "create_invite",
    "list_devices",
    "start_preview",
    "stop_preview",
    "next_frame",
    "join_call",
    "leave_call",
    "set_muted",
    "set_camera_off",
    "switch_video",
    "switch_audio",
    "switch_speaker",
];

fn main() {
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .expect("tauri-build failed");
}
