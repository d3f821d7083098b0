//! Listing cameras, microphones and speakers, with a note for each kind that is missing
//! (the UI then offers the test pattern or tone).

use crate::views::{AudioDevice, CameraDevice, Devices};
use confab_media::audio::device::{AudioDeviceInfo, list_input_devices, list_output_devices};
use confab_media::video::camera::list_cameras;

/// Blocks on the OS's device APIs; run it on a blocking thread.
pub fn list() -> Devices {
    let mut notes = Vec::new();
    let cameras = match list_cameras() {
        Ok(cameras) => cameras
            .into_iter()
            .map(|c| CameraDevice {
                index: c.index,
                name: c.name,
            })
            .collect(),
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
    Devices {
        cameras,
        microphones,
        speakers,
        notes,
    }
}

fn audio(
    listed: Result<Vec<AudioDeviceInfo>, confab_media::audio::device::AudioError>,
    kind: &str,
    notes: &mut Vec<String>,
) -> Vec<AudioDevice> {
    match listed {
        Ok(list) if list.is_empty() => {
            notes.push(format!("No {kind} found."));
            Vec::new()
        }
        Ok(list) => list
            .into_iter()
            .map(|d| AudioDevice {
                id: d.id,
                name: d.name,
                is_default: d.is_default,
            })
            .collect(),
        Err(e) => {
            notes.push(format!("No {kind} can be used: {e}."));
            Vec::new()
        }
    }
}
