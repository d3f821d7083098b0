//! Video for the webview. Capture and decoding keep the newest frame per source (the
//! local camera, each remote participant) on a board; the UI pulls each tile's next
//! frame with `next_frame` when it is ready to draw it. Pulling is the flow control: a
//! busy webview simply asks less often, frames it never asks for are never converted,
//! and nothing queues up. A frame goes out as a 40-byte header plus RGBA pixels
//! (see `ui/src/video/frame.ts` for the reading side):
//!
//! | bytes  | field                                                        |
//! |--------|--------------------------------------------------------------|
//! | 0      | source: 0 local, 1 remote                                    |
//! | 1..4   | reserved, 0                                                  |
//! | 4..8   | width (u32 LE)                                               |
//! | 8..12  | height (u32 LE)                                              |
//! | 12..16 | test-pattern frame counter (u32 LE), `u32::MAX` when none    |
//! | 16..24 | sequence number of the frame for its source (u64 LE)         |
//! | 24..40 | participant id (UUID bytes), zero for local                  |

use confab_core::call::I420Frame;
use confab_media::video::pattern::read_marker;
use specta::Type;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tauri::ipc::{InvokeResponseBody, IpcResponse};
use tokio::sync::watch;
use uuid::Uuid;
use yuv::{YuvPlanarImage, YuvRange, YuvStandardMatrix};

/// Header size in bytes.
pub const HEADER_LEN: usize = 40;
/// The board key of the local preview.
pub const LOCAL: &str = "local";
/// How long `next_frame` waits for a new frame before answering "nothing yet".
pub const WAIT: Duration = Duration::from_secs(1);

/// One frame as it sits on the board, not yet converted for the webview.
#[derive(Debug)]
pub struct BoardFrame {
    pub seq: u64,
    pub participant: Option<Uuid>,
    pub frame: Arc<I420Frame>,
}

/// The newest frame of every source.
#[derive(Debug, Default)]
pub struct FrameBoard {
    sources: Mutex<HashMap<String, watch::Sender<Option<Arc<BoardFrame>>>>>,
}

impl FrameBoard {
    fn sender(&self, key: &str) -> watch::Sender<Option<Arc<BoardFrame>>> {
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        sources
            .entry(key.to_owned())
            .or_insert_with(|| watch::channel(None).0)
            .clone()
    }

    /// Puts a frame up as `key`'s newest.
    pub fn publish(&self, key: &str, participant: Option<Uuid>, frame: Arc<I420Frame>) {
        self.sender(key).send_modify(|slot| {
            let seq = slot.as_ref().map_or(1, |f| f.seq + 1);
            *slot = Some(Arc::new(BoardFrame {
                seq,
                participant,
                frame,
            }));
        });
    }

    /// Takes a source down (a participant left); its waiting readers get nothing.
    pub fn remove(&self, key: &str) {
        self.sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// Takes every source down (the call or preview ended).
    pub fn clear(&self) {
        self.sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// `key`'s first frame newer than `after`, waiting up to `wait` for it.
    pub async fn next(&self, key: &str, after: u64, wait: Duration) -> Option<Arc<BoardFrame>> {
        let mut rx = self.sender(key).subscribe();
        let newer = |f: &Option<Arc<BoardFrame>>| f.as_ref().is_some_and(|f| f.seq > after);
        match tokio::time::timeout(wait, rx.wait_for(newer)).await {
            Ok(Ok(frame)) => frame.clone(),
            _ => None,
        }
    }
}

/// Bytes for the webview, sent as a raw (binary) IPC answer rather than JSON. Empty
/// means "no new frame yet". The bindings type it `unknown`: it arrives as an
/// `ArrayBuffer`, which the UI checks.
#[derive(Debug)]
pub struct FrameBytes(pub Vec<u8>);

impl IpcResponse for FrameBytes {
    fn body(self) -> tauri::Result<InvokeResponseBody> {
        Ok(InvokeResponseBody::Raw(self.0))
    }
}

impl Type for FrameBytes {
    fn definition(types: &mut specta::Types) -> specta::datatype::DataType {
        specta_typescript::Unknown::<()>::definition(types)
    }
}

/// Header plus RGBA pixels of a board frame.
pub fn encode(frame: &BoardFrame) -> FrameBytes {
    let image = &frame.frame;
    let (width, height) = (image.width(), image.height());
    let rgba_len = width as usize * height as usize * 4;
    let mut out = vec![0u8; HEADER_LEN + rgba_len];
    out[0] = u8::from(frame.participant.is_some());
    out[4..8].copy_from_slice(&width.to_le_bytes());
    out[8..12].copy_from_slice(&height.to_le_bytes());
    let counter = read_marker(image).map_or(u32::MAX, |m| m.counter);
    out[12..16].copy_from_slice(&counter.to_le_bytes());
    out[16..24].copy_from_slice(&frame.seq.to_le_bytes());
    if let Some(id) = frame.participant {
        out[24..40].copy_from_slice(id.as_bytes());
    }
    let planar = YuvPlanarImage {
        y_plane: image.y(),
        y_stride: width,
        u_plane: image.u(),
        u_stride: image.chroma_width(),
        v_plane: image.v(),
        v_stride: image.chroma_width(),
        width,
        height,
    };
    // Our frames are BT.601 studio range (what libvpx and the capture conversion use).
    if let Err(e) = yuv::yuv420_to_rgba(
        &planar,
        &mut out[HEADER_LEN..],
        width * 4,
        YuvRange::Limited,
        YuvStandardMatrix::Bt601,
    ) {
        tracing::warn!(error = %e, "cannot convert a frame for display");
    }
    FrameBytes(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_media::video::pattern::SyntheticVideoSource;

    #[tokio::test]
    async fn a_reader_gets_the_newest_frame_and_waits_for_the_next() {
        let board = Arc::new(FrameBoard::default());
        let mut source = SyntheticVideoSource::new(320, 240, 30).expect("pattern");
        let id = Uuid::new_v4();
        assert!(
            board
                .next("p", 0, Duration::from_millis(20))
                .await
                .is_none()
        );
        for _ in 0..3 {
            board.publish("p", Some(id), Arc::new(source.next_frame()));
        }
        let newest = board.next("p", 0, WAIT).await.expect("a frame");
        assert_eq!(newest.seq, 3, "older frames are skipped, not queued");
        let waiter = {
            let board = Arc::clone(&board);
            tokio::spawn(async move { board.next("p", 3, WAIT).await.map(|f| f.seq) })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        board.publish("p", Some(id), Arc::new(source.next_frame()));
        assert_eq!(waiter.await.expect("join"), Some(4));
    }

    #[test]
    fn the_encoded_frame_carries_its_header_and_real_colours() {
        let mut source = SyntheticVideoSource::new(320, 240, 30).expect("pattern");
        source.next_frame();
        let frame = Arc::new(source.next_frame());
        let id = Uuid::new_v4();
        let bytes = encode(&BoardFrame {
            seq: 7,
            participant: Some(id),
            frame: Arc::clone(&frame),
        })
        .0;
        assert_eq!(bytes.len(), HEADER_LEN + 320 * 240 * 4);
        assert_eq!(bytes[0], 1);
        assert_eq!(u32::from_le_bytes(bytes[4..8].try_into().expect("4")), 320);
        assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().expect("4")), 240);
        assert_eq!(
            u32::from_le_bytes(bytes[12..16].try_into().expect("4")),
            read_marker(&frame).expect("marker").counter
        );
        assert_eq!(u64::from_le_bytes(bytes[16..24].try_into().expect("8")), 7);
        assert_eq!(&bytes[24..40], id.as_bytes());
        // Opaque pixels, and a picture rather than one flat colour.
        let pixels = &bytes[HEADER_LEN..];
        assert!(pixels.chunks(4).all(|p| p[3] == 255));
        let distinct: std::collections::HashSet<&[u8]> = pixels.chunks(4).collect();
        assert!(distinct.len() > 8, "{} colours", distinct.len());
    }
}
