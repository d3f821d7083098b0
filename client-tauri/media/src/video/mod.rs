//! Video: frames, sources (camera, synthetic pattern) and the VP8 codec.
//!
//! Pipeline: [`camera`] or [`pattern`] -> [`frame::I420Frame`] -> [`vp8::Vp8Encoder`] ->
//! [`vp8::EncodedFrame`] -> (network) -> [`vp8::Vp8Decoder`] -> [`frame::I420Frame`] -> sink.

pub mod camera;
pub mod convert;
pub mod frame;
pub mod pattern;
pub mod screen;
pub mod vp8;
