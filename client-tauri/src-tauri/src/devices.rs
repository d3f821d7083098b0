//! Listing cameras, microphones and speakers (confab-core's one device listing), with a
//! note for each kind that is missing (the UI then offers the test pattern or tone).

use crate::views::{AudioDevice, CameraDevice, Devices};
use confab_core::call::setup;

/// Blocks on the OS's device APIs; run it on a blocking thread.
pub fn list() -> Devices {
    let listed = setup::list_devices();
    let audio = |list: Vec<confab_media::audio::device::AudioDeviceInfo>| {
        list.into_iter()
            .map(|d| AudioDevice {
                id: d.id,
                name: d.name,
                is_default: d.is_default,
            })
            .collect()
    };
    Devices {
        cameras: listed
            .cameras
            .into_iter()
            .map(|c| CameraDevice {
                index: c.index,
                name: c.name,
            })
            .collect(),
        microphones: audio(listed.microphones),
        speakers: audio(listed.speakers),
        notes: listed.notes,
    }
}
