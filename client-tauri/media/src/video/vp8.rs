//! VP8 encoder and decoder: a small safe wrapper over libvpx (through `env-libvpx-sys`).
//!
//! # Why VP8
//!
//! - It is royalty-free: Google's patent grant covers every implementation, so a
//!   self-hosted, AGPL project can ship an encoder without a licence fee or a patent
//!   question.
//! - Every WebRTC endpoint we care about decodes it: it is mandatory-to-implement in WebRTC
//!   (RFC 7742), and Chromium and Firefox both ship it, so a browser peer or a future web
//!   client needs no transcoding.
//! - libvpx is BSD-licensed and packaged by every Linux distribution (we link the system
//!   library, nothing is downloaded at build time).
//! - H.264 would need Cisco's binary OpenH264 build, downloaded at runtime, to be covered
//!   by Cisco's patent licence; compiling OpenH264 ourselves would leave us and our users
//!   without that coverage. VP9/AV1 cost several times more CPU for realtime encoding on
//!   the small laptops Confab targets.
//!
//! # Realtime configuration
//!
//! The encoder follows what libwebrtc configures for VP8 calls: one-pass CBR, no lookahead
//! (`g_lag_in_frames = 0`, so each input frame yields its packet immediately), the
//! `VPX_DL_REALTIME` deadline with a fixed high speed (`cpu-used`), error-resilient mode (a
//! lost frame does not poison the entropy contexts of later frames) and a capped keyframe
//! size so a keyframe does not burst the network. Keyframes come on demand through
//! [`Vp8Encoder::force_keyframe`], which the call layer invokes when a peer joins or sends
//! a PLI or FIR (picture loss indication, full intra request); by default there is no
//! periodic keyframe (see [`Vp8Config::keyframe_interval`]).
//!
//! # Safety
//!
//! The libvpx contexts live in `Box`es so their addresses never change after `*_init`,
//! every libvpx call happens through `&mut self` (libvpx contexts are not thread-safe but
//! may move between threads), and `Drop` destroys them exactly once.

use std::ffi::CStr;
use std::fmt;
use std::mem::MaybeUninit;
use std::os::raw::{c_int, c_long, c_uint, c_ulong};
use std::ptr;

use vpx_sys as vpx;

use super::frame::{I420Frame, MAX_DIMENSION};

/// Encoder settings. Build with [`Vp8Config::new`] and adjust fields as needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8Config {
    /// Frame width in pixels; every input frame must have it.
    pub width: u32,
    /// Frame height in pixels; every input frame must have it.
    pub height: u32,
    /// Nominal frame rate, used to size frame durations and the keyframe cap.
    pub fps: u32,
    /// Target bitrate in kilobits per second (CBR).
    pub bitrate_kbps: u32,
    /// Largest number of frames between two keyframes; 0: no periodic keyframes, only the
    /// first frame and those [`Vp8Encoder::force_keyframe`] asks for. Calls use 0: a
    /// receiver that lost its reference asks for a keyframe, so a periodic one would only
    /// spend bits (and hide broken loss recovery behind a freeze of up to one interval).
    pub keyframe_interval: u32,
    /// libvpx `cpu-used` speed: negative values pin a fixed speed `-cpu_used` (higher is
    /// faster and blurrier); libwebrtc uses -6 on desktop and -12 on phones.
    pub cpu_used: i32,
    /// Encoder threads. One is plenty up to 640x480 and keeps encode latency predictable.
    pub threads: u32,
    /// Let rate control skip frames when it runs out of bits. Off by default so every input
    /// frame yields a packet; a congested call may want it on.
    pub frame_dropping: bool,
}

impl Vp8Config {
    /// Realtime defaults for `width` x `height` at `fps` and `bitrate_kbps`, with
    /// keyframes only on request.
    pub fn new(width: u32, height: u32, fps: u32, bitrate_kbps: u32) -> Self {
        Self {
            width,
            height,
            fps,
            bitrate_kbps,
            keyframe_interval: 0,
            cpu_used: -6,
            threads: 1,
            frame_dropping: false,
        }
    }
}

/// One compressed frame, ready to packetize (RFC 7741 payload).
#[derive(Clone, PartialEq, Eq)]
pub struct EncodedFrame {
    /// The VP8 bitstream of one frame.
    pub data: Vec<u8>,
    /// True for a keyframe, which a decoder can start from.
    pub is_keyframe: bool,
    /// Capture time of the source frame, microseconds since the Unix epoch.
    pub timestamp_us: u64,
}

impl fmt::Debug for EncodedFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncodedFrame")
            .field("bytes", &self.data.len())
            .field("is_keyframe", &self.is_keyframe)
            .field("timestamp_us", &self.timestamp_us)
            .finish()
    }
}

/// Errors from the VP8 wrapper.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Vp8Error {
    /// A configuration value is out of range.
    #[error("invalid VP8 configuration: {0}")]
    Config(&'static str),
    /// The input frame does not match the configured size.
    #[error("frame is {got_width}x{got_height}, encoder is configured for {width}x{height}")]
    FrameSize {
        /// Configured width.
        width: u32,
        /// Configured height.
        height: u32,
        /// Frame width.
        got_width: u32,
        /// Frame height.
        got_height: u32,
    },
    /// An empty or oversized packet was given to the decoder.
    #[error("VP8 packet of {0} bytes cannot be decoded")]
    BadPacket(usize),
    /// libvpx reported an error.
    #[error("libvpx {operation} failed: {message}")]
    Codec {
        /// The libvpx call that failed.
        operation: &'static str,
        /// libvpx's message and detail.
        message: String,
    },
    /// libvpx returned something this wrapper does not expect from its configuration.
    #[error("unexpected libvpx output: {0}")]
    Unexpected(&'static str),
}

/// A realtime VP8 encoder: [`I420Frame`] in, [`EncodedFrame`] out.
pub struct Vp8Encoder {
    ctx: Box<vpx::vpx_codec_ctx_t>,
    cfg: Box<vpx::vpx_codec_enc_cfg_t>,
    config: Vp8Config,
    force_keyframe: bool,
    /// Capture time of the first frame; libvpx gets timestamps relative to it.
    first_timestamp_us: Option<u64>,
    /// Smallest pts libvpx will accept next (it needs them strictly increasing).
    next_pts: i64,
}

// SAFETY: the raw pointers inside the libvpx context make the type !Send by default.
// libvpx contexts are not thread-safe but have no thread affinity: they may be used from
// any thread as long as calls do not overlap, which `&mut self` on every call guarantees.
#[allow(unsafe_code)]
unsafe impl Send for Vp8Encoder {}

impl Vp8Encoder {
    /// Creates an encoder with `config`.
    #[allow(unsafe_code)]
    pub fn new(config: Vp8Config) -> Result<Self, Vp8Error> {
        validate(&config)?;
        let iface = vp8_cx();
        let mut cfg = default_encoder_config(iface)?;
        cfg.g_w = config.width;
        cfg.g_h = config.height;
        cfg.g_threads = config.threads.max(1);
        // Microsecond timebase: pts are capture times, so rate control sees real frame
        // spacing even when a camera delivers at an uneven rate.
        cfg.g_timebase = vpx::vpx_rational {
            num: 1,
            den: 1_000_000,
        };
        cfg.g_error_resilient = vpx::VPX_ERROR_RESILIENT_DEFAULT;
        cfg.g_pass = vpx::vpx_enc_pass::VPX_RC_ONE_PASS;
        cfg.g_lag_in_frames = 0;
        cfg.rc_end_usage = vpx::vpx_rc_mode::VPX_CBR;
        cfg.rc_target_bitrate = config.bitrate_kbps;
        cfg.rc_dropframe_thresh = if config.frame_dropping { 30 } else { 0 };
        // A resized stream would change the decoded size mid-call.
        cfg.rc_resize_allowed = 0;
        // libwebrtc's VP8 rate-control settings (buffer sizes in milliseconds).
        cfg.rc_min_quantizer = 2;
        cfg.rc_max_quantizer = 56;
        cfg.rc_undershoot_pct = 100;
        cfg.rc_overshoot_pct = 15;
        cfg.rc_buf_initial_sz = 500;
        cfg.rc_buf_optimal_sz = 600;
        cfg.rc_buf_sz = 1000;
        cfg.kf_min_dist = 0;
        if config.keyframe_interval == 0 {
            // libvpx still makes the first frame a keyframe.
            cfg.kf_mode = vpx::vpx_kf_mode::VPX_KF_DISABLED;
            cfg.kf_max_dist = 0;
        } else {
            cfg.kf_mode = vpx::vpx_kf_mode::VPX_KF_AUTO;
            cfg.kf_max_dist = config.keyframe_interval;
        }

        let mut ctx = Box::new(MaybeUninit::<vpx::vpx_codec_ctx_t>::zeroed());
        // SAFETY: `ctx` points to writable, zeroed memory for a context; `cfg` is a fully
        // initialised config that libvpx copies during init; the ABI version is the one the
        // bindings were generated for (checked against the system headers by the -sys
        // crate's build script, which picks bindings by libvpx version).
        let err = unsafe {
            vpx::vpx_codec_enc_init_ver(
                ctx.as_mut_ptr(),
                iface,
                &*cfg,
                0,
                vpx::VPX_ENCODER_ABI_VERSION as c_int,
            )
        };
        if err != vpx::vpx_codec_err_t::VPX_CODEC_OK {
            // On failure libvpx has already destroyed the context.
            return Err(Vp8Error::Codec {
                operation: "vpx_codec_enc_init",
                message: err_to_string(err),
            });
        }
        // SAFETY: init succeeded, so libvpx filled in the context.
        let ctx = unsafe { ctx.assume_init() };
        let mut encoder = Self {
            ctx,
            cfg,
            config,
            force_keyframe: false,
            first_timestamp_us: None,
            next_pts: 0,
        };

        use vpx::vp8e_enc_control_id::*;
        // Cap a keyframe at this percentage of an average frame, as libwebrtc does
        // (0.5 x optimal buffer x fps / 10, at least 300 %): a keyframe is sent when a
        // peer joins, exactly when the network is least ready for a burst.
        let max_intra_pct = (600 * config.fps / 20).max(300);
        for (control, value, name) in [
            (VP8E_SET_CPUUSED, config.cpu_used, "cpu-used"),
            (VP8E_SET_NOISE_SENSITIVITY, 0, "noise sensitivity"),
            (VP8E_SET_STATIC_THRESHOLD, 1, "static threshold"),
            (VP8E_SET_TOKEN_PARTITIONS, 0, "token partitions"),
            (
                VP8E_SET_MAX_INTRA_BITRATE_PCT,
                i32::try_from(max_intra_pct).unwrap_or(i32::MAX),
                "max intra bitrate",
            ),
        ] {
            encoder.control(control as c_int, value, name)?;
        }
        Ok(encoder)
    }

    /// The configuration the encoder runs with (including bitrate changes).
    pub fn config(&self) -> &Vp8Config {
        &self.config
    }

    /// Makes the next encoded frame a keyframe: call it when a peer joins or a PLI arrives.
    pub fn force_keyframe(&mut self) {
        self.force_keyframe = true;
    }

    /// Changes the target bitrate on the fly (for congestion control).
    #[allow(unsafe_code)]
    pub fn set_bitrate_kbps(&mut self, bitrate_kbps: u32) -> Result<(), Vp8Error> {
        if bitrate_kbps == 0 {
            return Err(Vp8Error::Config("bitrate must be positive"));
        }
        self.cfg.rc_target_bitrate = bitrate_kbps;
        // SAFETY: the context is initialised and `cfg` is a valid config that libvpx
        // copies before returning.
        let err = unsafe { vpx::vpx_codec_enc_config_set(&mut *self.ctx, &*self.cfg) };
        self.check(err, "vpx_codec_enc_config_set")?;
        self.config.bitrate_kbps = bitrate_kbps;
        Ok(())
    }

    /// Encodes one frame. Returns `None` when rate control dropped it (only possible with
    /// [`Vp8Config::frame_dropping`]).
    #[allow(unsafe_code)]
    pub fn encode(&mut self, frame: &I420Frame) -> Result<Option<EncodedFrame>, Vp8Error> {
        if (frame.width(), frame.height()) != (self.config.width, self.config.height) {
            return Err(Vp8Error::FrameSize {
                width: self.config.width,
                height: self.config.height,
                got_width: frame.width(),
                got_height: frame.height(),
            });
        }
        let base = *self.first_timestamp_us.get_or_insert(frame.timestamp_us());
        let relative = i64::try_from(frame.timestamp_us().saturating_sub(base)).unwrap_or(i64::MAX);
        // Capture clocks can repeat or step back; libvpx needs strictly increasing pts.
        let pts = relative.max(self.next_pts);
        self.next_pts = pts.saturating_add(1);
        let duration = c_ulong::from(1_000_000 / self.config.fps);

        let mut image = MaybeUninit::<vpx::vpx_image_t>::zeroed();
        // SAFETY: `image` is writable memory for one vpx_image_t; with a non-null `img`
        // argument vpx_img_wrap only fills in that struct (no allocation, no ownership of
        // the data). The luma pointer is valid for width * height bytes.
        let wrapped = unsafe {
            vpx::vpx_img_wrap(
                image.as_mut_ptr(),
                vpx::vpx_img_fmt::VPX_IMG_FMT_I420,
                frame.width(),
                frame.height(),
                1,
                frame.y().as_ptr().cast_mut(),
            )
        };
        if wrapped.is_null() {
            return Err(Vp8Error::Unexpected("vpx_img_wrap refused the frame"));
        }
        // SAFETY: vpx_img_wrap succeeded, so every field is initialised.
        let mut image = unsafe { image.assume_init() };
        // Our planes are separate allocations, not one contiguous buffer: point libvpx at
        // each one with its real stride.
        image.planes[1] = frame.u().as_ptr().cast_mut();
        image.planes[2] = frame.v().as_ptr().cast_mut();
        image.stride[0] = stride(frame.width());
        image.stride[1] = stride(frame.chroma_width());
        image.stride[2] = stride(frame.chroma_width());

        let flags = if self.force_keyframe {
            vpx::VPX_EFLAG_FORCE_KF as c_long
        } else {
            0
        };
        // SAFETY: the context is initialised; `image` describes three planes that stay
        // borrowed (through `frame`) for the whole call, with strides and sizes matching
        // the frame. libvpx only reads the planes (the pointers are `*mut` only because of
        // the C struct) and copies them into its own buffers before returning, so nothing
        // keeps pointing at them afterwards.
        let err = unsafe {
            vpx::vpx_codec_encode(
                &mut *self.ctx,
                &image,
                pts,
                duration,
                flags,
                c_ulong::from(vpx::VPX_DL_REALTIME),
            )
        };
        self.check(err, "vpx_codec_encode")?;
        self.force_keyframe = false;

        let mut encoded: Option<EncodedFrame> = None;
        let mut iter: vpx::vpx_codec_iter_t = ptr::null();
        loop {
            // SAFETY: the context is initialised and `iter` is the iterator libvpx expects
            // (null at the start, then whatever it stored).
            let packet = unsafe { vpx::vpx_codec_get_cx_data(&mut *self.ctx, &mut iter) };
            if packet.is_null() {
                break;
            }
            // SAFETY: libvpx returned a non-null packet that stays valid until the next
            // call on this context; we copy what we need before that.
            let packet = unsafe { &*packet };
            if packet.kind != vpx::vpx_codec_cx_pkt_kind::VPX_CODEC_CX_FRAME_PKT {
                continue;
            }
            // SAFETY: `kind` says the union holds a frame packet.
            let data = unsafe { packet.data.frame };
            if data.buf.is_null() {
                return Err(Vp8Error::Unexpected("frame packet without data"));
            }
            let len = usize::try_from(data.sz)
                .map_err(|_| Vp8Error::Unexpected("frame packet larger than memory"))?;
            // SAFETY: libvpx guarantees `buf` points to `sz` bytes of compressed frame,
            // valid until the next call on this context.
            let bytes = unsafe { std::slice::from_raw_parts(data.buf.cast::<u8>(), len) };
            if encoded.is_some() {
                // Without lookahead, alt-ref or partitions, libvpx emits one packet per
                // frame; anything else means the configuration above was not applied.
                return Err(Vp8Error::Unexpected("more than one packet for one frame"));
            }
            encoded = Some(EncodedFrame {
                data: bytes.to_vec(),
                is_keyframe: data.flags & vpx::VPX_FRAME_IS_KEY != 0,
                timestamp_us: frame.timestamp_us(),
            });
        }
        Ok(encoded)
    }

    #[allow(unsafe_code)]
    fn control(&mut self, control: c_int, value: i32, name: &'static str) -> Result<(), Vp8Error> {
        // SAFETY: the context is initialised and every VP8E_SET_* control we use takes
        // one `int` argument, which is what we pass through the varargs.
        let err = unsafe { vpx::vpx_codec_control_(&mut *self.ctx, control, value as c_int) };
        self.check(err, name)
    }

    fn check(
        &mut self,
        err: vpx::vpx_codec_err_t,
        operation: &'static str,
    ) -> Result<(), Vp8Error> {
        codec_result(&mut self.ctx, err, operation)
    }
}

impl Drop for Vp8Encoder {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: the context was initialised in `new` and is destroyed only here.
        unsafe { vpx::vpx_codec_destroy(&mut *self.ctx) };
    }
}

impl fmt::Debug for Vp8Encoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vp8Encoder")
            .field("config", &self.config)
            .field("force_keyframe", &self.force_keyframe)
            .finish_non_exhaustive()
    }
}

/// A VP8 decoder: [`EncodedFrame`] bytes in, [`I420Frame`] out.
///
/// It must start at a keyframe; after packet loss, decode errors (or frames the caller
/// knows are incomplete) are the cue to send a PLI and wait for the next keyframe.
pub struct Vp8Decoder {
    ctx: Box<vpx::vpx_codec_ctx_t>,
}

// SAFETY: as for `Vp8Encoder`: no thread affinity, and `&mut self` serialises all calls.
#[allow(unsafe_code)]
unsafe impl Send for Vp8Decoder {}

impl Vp8Decoder {
    /// Creates a decoder. The frame size comes from the stream's keyframes.
    #[allow(unsafe_code)]
    pub fn new() -> Result<Self, Vp8Error> {
        let cfg = vpx::vpx_codec_dec_cfg {
            threads: 1,
            w: 0,
            h: 0,
        };
        let mut ctx = Box::new(MaybeUninit::<vpx::vpx_codec_ctx_t>::zeroed());
        // SAFETY: `ctx` is writable zeroed memory for a context, `cfg` is valid for the
        // call (libvpx copies it) and the ABI version matches the generated bindings.
        let err = unsafe {
            vpx::vpx_codec_dec_init_ver(
                ctx.as_mut_ptr(),
                vp8_dx(),
                &cfg,
                0,
                vpx::VPX_DECODER_ABI_VERSION as c_int,
            )
        };
        if err != vpx::vpx_codec_err_t::VPX_CODEC_OK {
            return Err(Vp8Error::Codec {
                operation: "vpx_codec_dec_init",
                message: err_to_string(err),
            });
        }
        // SAFETY: init succeeded, so libvpx filled in the context.
        let ctx = unsafe { ctx.assume_init() };
        Ok(Self { ctx })
    }

    /// Decodes one frame's bytes. The output frame carries `timestamp_us` (the capture
    /// time the packet came with). `None` means the packet produced no picture.
    #[allow(unsafe_code)]
    pub fn decode(
        &mut self,
        data: &[u8],
        timestamp_us: u64,
    ) -> Result<Option<I420Frame>, Vp8Error> {
        let len = c_uint::try_from(data.len()).map_err(|_| Vp8Error::BadPacket(data.len()))?;
        // An empty buffer would mean "flush" to libvpx, which VP8 never needs.
        if len == 0 {
            return Err(Vp8Error::BadPacket(0));
        }
        // SAFETY: the context is initialised and `data` is valid for `len` bytes for the
        // whole call; libvpx does not keep the pointer.
        let err = unsafe {
            vpx::vpx_codec_decode(&mut *self.ctx, data.as_ptr(), len, ptr::null_mut(), 0)
        };
        codec_result(&mut self.ctx, err, "vpx_codec_decode")?;

        let mut output = None;
        let mut iter: vpx::vpx_codec_iter_t = ptr::null();
        loop {
            // SAFETY: the context is initialised; `iter` starts null as libvpx requires.
            let image = unsafe { vpx::vpx_codec_get_frame(&mut *self.ctx, &mut iter) };
            if image.is_null() {
                break;
            }
            // SAFETY: a non-null image stays valid until the next decode call on this
            // context, and we hold `&mut self` while copying it out.
            let image = unsafe { &*image };
            output = Some(copy_image(image, timestamp_us)?);
        }
        Ok(output)
    }
}

impl Drop for Vp8Decoder {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: the context was initialised in `new` and is destroyed only here.
        unsafe { vpx::vpx_codec_destroy(&mut *self.ctx) };
    }
}

impl fmt::Debug for Vp8Decoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vp8Decoder").finish_non_exhaustive()
    }
}

/// Copies a decoded libvpx image into an owned, tightly packed frame.
#[allow(unsafe_code)]
fn copy_image(image: &vpx::vpx_image_t, timestamp_us: u64) -> Result<I420Frame, Vp8Error> {
    if image.fmt != vpx::vpx_img_fmt::VPX_IMG_FMT_I420 {
        return Err(Vp8Error::Unexpected("decoded image is not I420"));
    }
    let (width, height) = (image.d_w, image.d_h);
    let (chroma_width, chroma_height) = (width.div_ceil(2), height.div_ceil(2));
    let mut planes: [Vec<u8>; 3] = Default::default();
    for (index, plane) in planes.iter_mut().enumerate() {
        let (w, h) = if index == 0 {
            (width as usize, height as usize)
        } else {
            (chroma_width as usize, chroma_height as usize)
        };
        let stride = usize::try_from(image.stride[index])
            .map_err(|_| Vp8Error::Unexpected("negative stride"))?;
        if image.planes[index].is_null() || stride < w {
            return Err(Vp8Error::Unexpected(
                "decoded plane is missing or too narrow",
            ));
        }
        plane.reserve_exact(w * h);
        for row in 0..h {
            // SAFETY: libvpx guarantees each plane holds `h` rows of `stride` bytes, of
            // which the first `w` are pixels; `row < h` and `w <= stride`.
            let pixels =
                unsafe { std::slice::from_raw_parts(image.planes[index].add(row * stride), w) };
            plane.extend_from_slice(pixels);
        }
    }
    let [y, u, v] = planes;
    I420Frame::from_planes(width, height, y, u, v, timestamp_us)
        .map_err(|_| Vp8Error::Unexpected("decoded image has an invalid size"))
}

fn validate(config: &Vp8Config) -> Result<(), Vp8Error> {
    let size_ok = |d: u32| (1..=MAX_DIMENSION).contains(&d);
    if !size_ok(config.width) || !size_ok(config.height) {
        return Err(Vp8Error::Config("width and height must be 1..=16384"));
    }
    if config.fps == 0 || config.fps > 1000 {
        return Err(Vp8Error::Config("fps must be 1..=1000"));
    }
    if config.bitrate_kbps == 0 {
        return Err(Vp8Error::Config("bitrate must be positive"));
    }
    if !(-16..=16).contains(&config.cpu_used) {
        return Err(Vp8Error::Config("cpu_used must be -16..=16"));
    }
    Ok(())
}

#[allow(unsafe_code)]
fn default_encoder_config(
    iface: *mut vpx::vpx_codec_iface_t,
) -> Result<Box<vpx::vpx_codec_enc_cfg_t>, Vp8Error> {
    let mut cfg = Box::new(MaybeUninit::<vpx::vpx_codec_enc_cfg_t>::zeroed());
    // SAFETY: `iface` is libvpx's static VP8 interface and `cfg` is writable memory for a
    // config; usage 0 is the only usage VP8 defines.
    let err = unsafe { vpx::vpx_codec_enc_config_default(iface, cfg.as_mut_ptr(), 0) };
    if err != vpx::vpx_codec_err_t::VPX_CODEC_OK {
        return Err(Vp8Error::Codec {
            operation: "vpx_codec_enc_config_default",
            message: err_to_string(err),
        });
    }
    // SAFETY: libvpx filled in the whole config (and it was zeroed before anyway).
    Ok(unsafe { cfg.assume_init() })
}

#[allow(unsafe_code)]
fn vp8_cx() -> *mut vpx::vpx_codec_iface_t {
    // SAFETY: returns a pointer to libvpx's static interface table; no preconditions.
    unsafe { vpx::vpx_codec_vp8_cx() }
}

#[allow(unsafe_code)]
fn vp8_dx() -> *mut vpx::vpx_codec_iface_t {
    // SAFETY: returns a pointer to libvpx's static interface table; no preconditions.
    unsafe { vpx::vpx_codec_vp8_dx() }
}

fn stride(width: u32) -> c_int {
    // Widths are capped at MAX_DIMENSION, far below c_int::MAX.
    c_int::try_from(width).unwrap_or(c_int::MAX)
}

#[allow(unsafe_code)]
fn err_to_string(err: vpx::vpx_codec_err_t) -> String {
    // SAFETY: vpx_codec_err_to_string returns a pointer to a static NUL-terminated string
    // for every error value.
    unsafe { CStr::from_ptr(vpx::vpx_codec_err_to_string(err)) }
        .to_string_lossy()
        .into_owned()
}

#[allow(unsafe_code)]
fn codec_result(
    ctx: &mut vpx::vpx_codec_ctx_t,
    err: vpx::vpx_codec_err_t,
    operation: &'static str,
) -> Result<(), Vp8Error> {
    if err == vpx::vpx_codec_err_t::VPX_CODEC_OK {
        return Ok(());
    }
    let mut message = err_to_string(err);
    // SAFETY: the context is initialised; the detail is null or a NUL-terminated string
    // owned by the context, valid until the next call on it, and copied right away.
    let detail = unsafe { vpx::vpx_codec_error_detail(ctx) };
    if !detail.is_null() {
        // SAFETY: see above: non-null and NUL-terminated.
        let detail = unsafe { CStr::from_ptr(detail) };
        message = format!("{message} ({})", detail.to_string_lossy());
    }
    Err(Vp8Error::Codec { operation, message })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::video::pattern::{SyntheticVideoSource, read_marker};

    #[test]
    fn rejects_bad_config_and_wrong_frame_size() {
        assert_eq!(
            Vp8Encoder::new(Vp8Config::new(0, 480, 30, 500)).err(),
            Some(Vp8Error::Config("width and height must be 1..=16384"))
        );
        let mut encoder = Vp8Encoder::new(Vp8Config::new(320, 240, 30, 300)).unwrap();
        let frame = I420Frame::black(640, 480, 0).unwrap();
        assert!(matches!(
            encoder.encode(&frame),
            Err(Vp8Error::FrameSize { .. })
        ));
    }

    #[test]
    fn first_frame_is_a_keyframe_and_force_keyframe_makes_another() {
        let mut source = SyntheticVideoSource::new(320, 240, 30).unwrap();
        let mut encoder = Vp8Encoder::new(Vp8Config::new(320, 240, 30, 300)).unwrap();
        let mut keyframes = Vec::new();
        for n in 0..10u64 {
            if n == 6 {
                encoder.force_keyframe();
            }
            let frame = source.next_frame_at(1_000_000 + n * 33_333);
            let encoded = encoder.encode(&frame).unwrap().expect("no frame dropping");
            assert_eq!(encoded.timestamp_us, frame.timestamp_us());
            keyframes.push(encoded.is_keyframe);
        }
        let expected: Vec<bool> = (0..10).map(|n| n == 0 || n == 6).collect();
        assert_eq!(keyframes, expected);
    }

    #[test]
    fn a_decoder_joining_mid_stream_starts_at_the_forced_keyframe() {
        let mut source = SyntheticVideoSource::new(320, 240, 30).unwrap();
        let mut encoder = Vp8Encoder::new(Vp8Config::new(320, 240, 30, 300)).unwrap();
        let mut late_decoder = Vp8Decoder::new().unwrap();
        let mut decoded_counters = Vec::new();
        for n in 0..20u64 {
            // The late peer "joins" at frame 10 and the sender answers with a keyframe.
            if n == 10 {
                encoder.force_keyframe();
            }
            let frame = source.next_frame_at(1_000_000 + n * 33_333);
            let encoded = encoder.encode(&frame).unwrap().expect("no frame dropping");
            if n >= 10 {
                let decoded = late_decoder
                    .decode(&encoded.data, encoded.timestamp_us)
                    .unwrap()
                    .expect("a picture per packet");
                decoded_counters.push(read_marker(&decoded).map(|m| m.counter));
            }
        }
        let expected: Vec<Option<u32>> = (10..20).map(Some).collect();
        assert_eq!(decoded_counters, expected);
    }

    #[test]
    fn odd_frame_sizes_round_trip() {
        let mut source = SyntheticVideoSource::new(321, 241, 30).unwrap();
        let mut encoder = Vp8Encoder::new(Vp8Config::new(321, 241, 30, 300)).unwrap();
        let mut decoder = Vp8Decoder::new().unwrap();
        for n in 0..3u32 {
            let frame = source.next_frame_at(u64::from(n) * 33_333);
            let packet = encoder.encode(&frame).unwrap().unwrap();
            let decoded = decoder
                .decode(&packet.data, packet.timestamp_us)
                .unwrap()
                .unwrap();
            assert_eq!((decoded.width(), decoded.height()), (321, 241));
            assert_eq!(
                (decoded.chroma_width(), decoded.chroma_height()),
                (161, 121)
            );
            assert_eq!(read_marker(&decoded).map(|m| m.counter), Some(n));
        }
    }

    #[test]
    fn decoder_rejects_garbage_without_crashing() {
        let mut decoder = Vp8Decoder::new().unwrap();
        assert_eq!(decoder.decode(&[], 0), Err(Vp8Error::BadPacket(0)));
        assert!(matches!(
            decoder.decode(&[0xff; 64], 0),
            Err(Vp8Error::Codec { .. })
        ));
    }

    #[test]
    fn bitrate_can_change_mid_stream() {
        let mut encoder = Vp8Encoder::new(Vp8Config::new(320, 240, 30, 300)).unwrap();
        encoder.set_bitrate_kbps(150).unwrap();
        assert_eq!(encoder.config().bitrate_kbps, 150);
        assert!(encoder.set_bitrate_kbps(0).is_err());
    }
}
