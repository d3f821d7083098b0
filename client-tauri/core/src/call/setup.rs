//! Setting up a call and listing devices, the one way the desktop shell and `confab-cli`
//! both use: the server's ICE servers, then [`Call`] on the messenger connection's
//! WebSocket ([`start_on`]) or on a socket of its own ([`start_alone`]).

use super::{Call, CallConfig, CallError, CallEvent, RTCIceServer, rtc_ice_servers};
use crate::api::ApiClient;
use crate::connection::{Connection, ConnectionError};
use crate::signaling::{SignalingClient, SignalingConfig};
use confab_media::audio::device::{
    AudioDeviceInfo, AudioError, list_input_devices, list_output_devices,
};
use confab_media::video::camera::{CameraInfo, list_cameras};
use std::sync::Arc;
use tokio::sync::mpsc;

/// A started call and its events.
pub type StartedCall = (Call, mpsc::UnboundedReceiver<CallEvent>);

/// The server's STUN and TURN servers; none (host candidates only, which suffice on a
/// LAN or loopback) when it has none or cannot be asked.
pub async fn ice_servers(api: &ApiClient) -> Vec<RTCIceServer> {
    match api.ice_servers().await {
        Ok(response) => rtc_ice_servers(response.ice_servers),
        Err(e) => {
            tracing::warn!(error = %e, "no ICE servers from the server; host candidates only");
            Vec::new()
        }
    }
}

/// Starts `config`'s call on the connection's WebSocket (it stays up however long the
/// call runs), with the server's ICE servers unless `config` names some.
pub async fn start_on(
    conn: &Connection,
    mut config: CallConfig,
) -> Result<StartedCall, ConnectionError> {
    if config.ice_servers.is_empty() {
        config.ice_servers = ice_servers(conn.api()).await;
    }
    conn.start_call(config)
}

/// Starts `config`'s call on a signaling connection of its own (for a call without a
/// messenger session), with the server's ICE servers unless `config` names some.
pub async fn start_alone(
    api: &ApiClient,
    mut config: CallConfig,
) -> Result<StartedCall, CallError> {
    if config.ice_servers.is_empty() {
        config.ice_servers = ice_servers(api).await;
    }
    let (signaling, events) = SignalingClient::start(
        SignalingConfig::new(api.ws_url().to_string()),
        Arc::new(api.clone()),
    );
    Call::start(signaling, events, config)
}

/// Cameras, microphones and speakers, and a note for the user on each kind that is
/// missing or cannot be listed.
#[derive(Clone, Debug, Default)]
pub struct DeviceList {
    pub cameras: Vec<CameraInfo>,
    pub microphones: Vec<AudioDeviceInfo>,
    pub speakers: Vec<AudioDeviceInfo>,
    pub notes: Vec<String>,
}

/// Lists the devices. Blocks on the OS's device APIs: run it on a blocking thread.
pub fn list_devices() -> DeviceList {
    let mut notes = Vec::new();
    let cameras = match list_cameras() {
        Ok(cameras) => cameras,
        Err(e) => {
            notes.push(format!("Cameras could not be listed: {e}."));
            Vec::new()
        }
    };
    if cameras.is_empty() && notes.is_empty() {
        notes.push("No camera found: the test pattern will be sent instead.".to_owned());
    }
    let microphones = audio(list_input_devices(), "microphone", &mut notes);
    let speakers = audio(list_output_devices(), "speaker", &mut notes);
    DeviceList {
        cameras,
        microphones,
        speakers,
        notes,
    }
}

fn audio(
    listed: Result<Vec<AudioDeviceInfo>, AudioError>,
    kind: &str,
    notes: &mut Vec<String>,
) -> Vec<AudioDeviceInfo> {
    match listed {
        Ok(list) => {
            if list.is_empty() {
                notes.push(format!("No {kind} found."));
            }
            list
        }
        Err(e) => {
            notes.push(format!("No {kind} can be used: {e}."));
            Vec::new()
        }
    }
}
