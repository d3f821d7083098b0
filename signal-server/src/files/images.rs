//! Raster images: decoded with pixel and memory limits (callers run this in a blocking
//! task), turned upright by their EXIF orientation, re-encoded without any metadata (so a
//! photo's location and camera do not travel with it, and bytes appended after the image
//! are gone), and given a WebP preview and thumbnail and a BlurHash placeholder.

use super::sniff::Raster;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageEncoder, ImageReader, Limits};
use std::io::{BufRead, Seek};
use std::path::Path;

/// Longest side of a decodable image, pixels.
pub const MAX_SIDE: u32 = 16_384;
/// Most pixels of a decodable image (about 40 megapixels: a 12 MP photo is far below).
pub const MAX_PIXELS: u64 = 40_000_000;
/// Most memory one decode may allocate.
pub const MAX_ALLOC: u64 = 256 * 1024 * 1024;
/// Longest side of the preview.
pub const PREVIEW_SIDE: u32 = 1280;
/// Longest side of the thumbnail.
pub const THUMBNAIL_SIDE: u32 = 320;
/// Longest side of an avatar or icon.
pub const PICTURE_SIDE: u32 = 256;

/// An image made ready to serve.
#[derive(Debug)]
pub struct Processed {
    /// Upright, after EXIF orientation.
    pub width: u32,
    pub height: u32,
    pub placeholder: String,
    /// The image re-encoded in its own format without metadata; `None` for a GIF, whose
    /// bytes are kept (GIF has no EXIF, and re-encoding would lose its animation).
    pub original: Option<Vec<u8>>,
    pub preview: Vec<u8>,
    pub thumbnail: Vec<u8>,
}

/// Why an image was not processed: then it is kept as a plain download.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("the image is {0}x{1} pixels, over the limit")]
    TooLarge(u32, u32),
    #[error("the image does not decode: {0}")]
    Decode(#[from] image::ImageError),
    #[error("reading the image: {0}")]
    Io(#[from] std::io::Error),
    #[error("no placeholder: {0}")]
    Placeholder(String),
}

fn limits() -> Limits {
    let mut l = Limits::default();
    l.max_image_width = Some(MAX_SIDE);
    l.max_image_height = Some(MAX_SIDE);
    l.max_alloc = Some(MAX_ALLOC);
    l
}

/// Decodes `reader` as `format` within the limits and turns it upright.
pub fn decode<R: BufRead + Seek>(reader: R, format: Raster) -> Result<DynamicImage, ImageError> {
    let mut reader = ImageReader::with_format(reader, format.format());
    reader.limits(limits());
    let mut decoder = reader.into_decoder()?;
    let (w, h) = decoder.dimensions();
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(ImageError::TooLarge(w, h));
    }
    // A broken EXIF block is no reason to refuse the picture: it is just not turned.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder)?;
    img.apply_orientation(orientation);
    Ok(img)
}

/// Processes the image file at `path`.
pub fn process(path: &Path, format: Raster) -> Result<Processed, ImageError> {
    let file = std::io::BufReader::new(std::fs::File::open(path)?);
    let img = decode(file, format)?;
    let original = match format {
        Raster::Gif => None,
        Raster::Jpeg => Some(encode_jpeg(&img)?),
        Raster::Png => Some(encode_png(&img)?),
        Raster::Webp => Some(encode_webp(&img)?),
    };
    let preview = fit(&img, PREVIEW_SIDE);
    let thumbnail = fit(&preview, THUMBNAIL_SIDE);
    Ok(Processed {
        width: img.width(),
        height: img.height(),
        placeholder: placeholder(&thumbnail)?,
        original,
        preview: encode_webp(&preview)?,
        thumbnail: encode_webp(&thumbnail)?,
    })
}

/// An avatar or icon from raster bytes: at most 256 px on its longer side, as WebP.
pub fn picture(path: &Path, format: Raster) -> Result<Vec<u8>, ImageError> {
    let file = std::io::BufReader::new(std::fs::File::open(path)?);
    let img = decode(file, format)?;
    encode_webp(&fit(&img, PICTURE_SIDE))
}

/// The image scaled down to fit a `side` square (as it is when it already fits).
fn fit(img: &DynamicImage, side: u32) -> DynamicImage {
    if img.width() <= side && img.height() <= side {
        img.clone()
    } else {
        img.resize(side, side, FilterType::Triangle)
    }
}

/// A BlurHash of 4x3 components from a 32 px version.
fn placeholder(img: &DynamicImage) -> Result<String, ImageError> {
    let tiny = img.thumbnail(32, 32).to_rgba8();
    blurhash::encode(4, 3, tiny.width(), tiny.height(), tiny.as_raw())
        .map_err(|e| ImageError::Placeholder(format!("{e:?}")))
}

/// Lossless WebP (the `image` crate's encoder is lossless only), RGB or RGBA.
fn encode_webp(img: &DynamicImage) -> Result<Vec<u8>, ImageError> {
    let mut out = Vec::new();
    let encoder = WebPEncoder::new_lossless(&mut out);
    if img.color().has_alpha() {
        let rgba = img.to_rgba8();
        encoder.write_image(
            rgba.as_raw(),
            rgba.width(),
            rgba.height(),
            image::ExtendedColorType::Rgba8,
        )?;
    } else {
        let rgb = img.to_rgb8();
        encoder.write_image(
            rgb.as_raw(),
            rgb.width(),
            rgb.height(),
            image::ExtendedColorType::Rgb8,
        )?;
    }
    Ok(out)
}

fn encode_jpeg(img: &DynamicImage) -> Result<Vec<u8>, ImageError> {
    let mut out = Vec::new();
    let rgb = img.to_rgb8();
    JpegEncoder::new_with_quality(&mut out, 90).write_image(
        rgb.as_raw(),
        rgb.width(),
        rgb.height(),
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}

fn encode_png(img: &DynamicImage) -> Result<Vec<u8>, ImageError> {
    let mut out = Vec::new();
    let encoder = PngEncoder::new(&mut out);
    if img.color().has_alpha() {
        let rgba = img.to_rgba8();
        encoder.write_image(
            rgba.as_raw(),
            rgba.width(),
            rgba.height(),
            image::ExtendedColorType::Rgba8,
        )?;
    } else {
        let rgb = img.to_rgb8();
        encoder.write_image(
            rgb.as_raw(),
            rgb.width(),
            rgb.height(),
            image::ExtendedColorType::Rgb8,
        )?;
    }
    Ok(out)
}
