//! A local preview before a call: the chosen camera (or test pattern) and microphone (or
//! tone) run without encoding, so the user sees themselves and a level meter. The
//! pre-join screen uses it; a call has the same tap on its own capture threads.

use crate::call::local::{AudioInput, AudioRead, Capture, LocalTap, Pacer, peak_level};
use crate::call::{AudioSource, VideoSource};
use confab_media::{AUDIO_FRAME_SAMPLES, I420Frame};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::thread;
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// Why a preview could not start.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error("cannot open the camera: {0}")]
    Camera(String),
    #[error("cannot open the microphone: {0}")]
    Microphone(String),
    #[error("cannot start a capture thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Running local capture for a preview. Dropping it (or [`Preview::stop`]) stops it.
#[derive(Debug)]
pub struct Preview {
    tap: LocalTap,
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Preview {
    /// Opens the sources (each on its own thread) and waits until both are open, so a
    /// missing device is reported here rather than as a silent preview.
    pub fn start(
        video: Option<VideoSource>,
        audio: Option<AudioSource>,
    ) -> Result<Self, PreviewError> {
        let mut preview = Self {
            tap: LocalTap::new(),
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
        };
        if let Some(source) = video {
            let (tap, stop) = (preview.tap.clone(), Arc::clone(&preview.stop));
            let opened = spawn_opened(
                &mut preview.threads,
                "confab-preview-video",
                move |opened| {
                    video_preview(&source, &tap, &stop, &opened);
                },
            )?;
            opened.map_err(PreviewError::Camera)?;
        }
        if let Some(source) = audio {
            let (tap, stop) = (preview.tap.clone(), Arc::clone(&preview.stop));
            let opened = spawn_opened(
                &mut preview.threads,
                "confab-preview-audio",
                move |opened| {
                    audio_preview(&source, &tap, &stop, &opened);
                },
            )?;
            opened.map_err(PreviewError::Microphone)?;
        }
        Ok(preview)
    }

    /// Captured frames, as they come (a slow reader skips the oldest).
    pub fn frames(&self) -> broadcast::Receiver<Arc<I420Frame>> {
        self.tap.video.subscribe()
    }

    /// The microphone's peak level (0..1) over the last 20 ms.
    pub fn level(&self) -> watch::Receiver<f32> {
        self.tap.level.subscribe()
    }

    /// Stops capture and waits for the threads (at most one frame interval).
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Preview {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Starts a capture thread (kept in `threads`) and waits until it says whether its
/// source opened.
fn spawn_opened(
    threads: &mut Vec<thread::JoinHandle<()>>,
    name: &str,
    body: impl FnOnce(std_mpsc::Sender<Result<(), String>>) + Send + 'static,
) -> std::io::Result<Result<(), String>> {
    let (opened_tx, opened_rx) = std_mpsc::channel();
    threads.push(
        thread::Builder::new()
            .name(name.into())
            .spawn(move || body(opened_tx))?,
    );
    Ok(opened_rx
        .recv()
        .unwrap_or_else(|_| Err("the capture thread ended".to_owned())))
}

fn video_preview(
    source: &VideoSource,
    tap: &LocalTap,
    stop: &AtomicBool,
    opened: &std_mpsc::Sender<Result<(), String>>,
) {
    let (mut capture, _, _, fps) = match Capture::open(source) {
        Ok(c) => {
            let _ = opened.send(Ok(()));
            c
        }
        Err(e) => {
            let _ = opened.send(Err(e));
            return;
        }
    };
    let interval = Duration::from_secs(1) / fps.max(1);
    let mut pacer = Pacer::new(interval);
    while !stop.load(Ordering::Relaxed) {
        if capture.paced_by_us() {
            pacer.wait();
        }
        match capture.next() {
            Ok(frame) => tap.frame(&Arc::new(frame)),
            Err(e) => {
                tracing::warn!(error = %e, "preview capture failed");
                thread::sleep(interval);
            }
        }
    }
}

fn audio_preview(
    source: &AudioSource,
    tap: &LocalTap,
    stop: &AtomicBool,
    opened: &std_mpsc::Sender<Result<(), String>>,
) {
    let mut input = match AudioInput::open(source) {
        Ok(input) => {
            let _ = opened.send(Ok(()));
            input
        }
        Err(e) => {
            let _ = opened.send(Err(e));
            return;
        }
    };
    let mut pcm = [0i16; 2 * AUDIO_FRAME_SAMPLES];
    while !stop.load(Ordering::Relaxed) {
        // The level before any voice processing: the meter shows what the mic hears.
        match input.read(&mut pcm, None) {
            AudioRead::Frame => {
                tap.level.send_replace(peak_level(&pcm));
            }
            AudioRead::Late => {}
            AudioRead::Ended => break,
        }
    }
    tap.level.send_replace(0.0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_test_pattern_and_tone_preview_shows_frames_and_a_level() -> Result<(), PreviewError> {
        let preview = Preview::start(
            Some(VideoSource::TestPattern {
                width: 320,
                height: 240,
                fps: 30,
            }),
            Some(AudioSource::Tone { frequency: 440.0 }),
        )?;
        let mut frames = preview.frames();
        let level = preview.level();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut seen = 0;
        while seen < 3 && Instant::now() < deadline {
            match frames.try_recv() {
                Ok(frame) => {
                    assert_eq!((frame.width(), frame.height()), (320, 240));
                    seen += 1;
                }
                Err(_) => thread::sleep(Duration::from_millis(10)),
            }
        }
        assert_eq!(seen, 3, "the preview delivered frames");
        // The tone is generated at half scale.
        let peak = *level.borrow();
        assert!((0.45..=0.55).contains(&peak), "tone level {peak}");
        preview.stop();
        Ok(())
    }

    #[test]
    fn a_missing_camera_is_an_error_not_a_silent_preview() {
        let result = Preview::start(
            Some(VideoSource::Camera {
                index: 99,
                width: 640,
                height: 480,
                fps: 30,
            }),
            None,
        );
        assert!(matches!(result, Err(PreviewError::Camera(_))), "{result:?}");
    }
}
