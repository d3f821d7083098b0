//! What a file is, from its first bytes (`infer`), never from the client's Content-Type
//! or file name; and the policy for what is shown inline.
//!
//! The policy: anything may be uploaded as an attachment. Markup and scripts (HTML,
//! XHTML, SVG, XML, JavaScript, shell scripts, and text that starts like them) are
//! stored as `application/octet-stream`: a download, never a page. Only PNG, JPEG, GIF
//! and WebP are served inline, and every file response carries `X-Content-Type-Options:
//! nosniff` and `Content-Security-Policy: sandbox`, so even a polyglot (an image that is
//! also valid HTML) cannot run as a page. SVG is accepted only as an avatar or a
//! community icon, checked and rasterized (see `svg.rs`).

/// Raster formats the server decodes, re-encodes and previews.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raster {
    Png,
    Jpeg,
    Gif,
    Webp,
}

impl Raster {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Gif => "image/gif",
            Self::Webp => "image/webp",
        }
    }

    pub fn format(self) -> image::ImageFormat {
        match self {
            Self::Png => image::ImageFormat::Png,
            Self::Jpeg => image::ImageFormat::Jpeg,
            Self::Gif => image::ImageFormat::Gif,
            Self::Webp => image::ImageFormat::WebP,
        }
    }
}

/// The type a download without a safer one gets.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// How many leading bytes the sniffing looks at.
pub const HEAD: usize = 8192;

/// The content type for a file starting with `head`, and the raster format when it
/// claims to be one of the decodable images (decoding decides whether it is).
pub fn sniff(head: &[u8]) -> (String, Option<Raster>) {
    if let Some(t) = infer::get(head) {
        let raster = match t.mime_type() {
            "image/png" => Some(Raster::Png),
            "image/jpeg" => Some(Raster::Jpeg),
            "image/gif" => Some(Raster::Gif),
            "image/webp" => Some(Raster::Webp),
            _ => None,
        };
        if let Some(r) = raster {
            return (r.content_type().to_owned(), Some(r));
        }
        let mime = t.mime_type();
        if is_active_content(mime) {
            return (OCTET_STREAM.to_owned(), None);
        }
        return (mime.to_owned(), None);
    }
    if looks_like_markup_or_script(head) {
        return (OCTET_STREAM.to_owned(), None);
    }
    if is_text(head) {
        return ("text/plain; charset=utf-8".to_owned(), None);
    }
    (OCTET_STREAM.to_owned(), None)
}

/// Types a browser would run or render as a document.
fn is_active_content(mime: &str) -> bool {
    let m = mime.to_ascii_lowercase();
    m.contains("html")
        || m.contains("xml")
        || m.contains("svg")
        || m.contains("javascript")
        || m.contains("ecmascript")
        || m.contains("x-sh")
        || m.contains("shellscript")
}

/// Text that begins like markup (`<`) or a script (`#!`), or holds tags a browser would
/// act on anywhere in its first bytes.
fn looks_like_markup_or_script(head: &[u8]) -> bool {
    let start = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = start
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map_or(&[][..], |i| &start[i..]);
    if start.starts_with(b"<") || start.starts_with(b"#!") {
        return true;
    }
    let lower = head.to_ascii_lowercase();
    const TELLS: [&[u8]; 8] = [
        b"<script",
        b"<html",
        b"<svg",
        b"<!doctype",
        b"<?xml",
        b"<iframe",
        b"<body",
        b"javascript:",
    ];
    TELLS
        .iter()
        .any(|t| lower.windows(t.len()).any(|w| w == *t))
}

/// UTF-8 without control characters but whitespace (the head may end mid-character).
fn is_text(head: &[u8]) -> bool {
    if head.is_empty() {
        return false;
    }
    let valid = match std::str::from_utf8(head) {
        Ok(s) => s,
        Err(e) if e.error_len().is_none() => {
            // Cut in the middle of a character by the head's end.
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    !valid
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\x0c'))
}

/// Whether a file of this type may be shown inline (`Content-Disposition: inline`).
pub fn is_inline_safe(content_type: &str) -> bool {
    matches!(
        content_type,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    )
}

/// A client's file name made safe to keep and to send back in `Content-Disposition`:
/// the last path component, no control characters, at most `FILE_NAME_MAX` characters
/// (the end, with its extension, kept). Empty or dot-only names become `file`.
pub fn clean_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '\u{202e}' | '\u{202d}'))
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() || cleaned.chars().all(|c| c == '.') {
        return "file".to_owned();
    }
    let count = cleaned.chars().count();
    let max = shared::files::FILE_NAME_MAX;
    if count <= max {
        return cleaned.to_owned();
    }
    cleaned.chars().skip(count - max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_bytes() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").1, Some(Raster::Png));
        assert_eq!(sniff(b"%PDF-1.7\n").0, "application/pdf");
        assert_eq!(sniff(b"<!DOCTYPE html><html>").0, OCTET_STREAM);
        assert_eq!(sniff(b"  <svg xmlns=").0, OCTET_STREAM);
        assert_eq!(sniff(b"#!/bin/sh\nrm -rf /").0, OCTET_STREAM);
        assert_eq!(sniff(b"hello <script>x</script>").0, OCTET_STREAM);
        assert_eq!(
            sniff("plain words, ünïcode".as_bytes()).0,
            "text/plain; charset=utf-8"
        );
        assert_eq!(sniff(b"\0\x01\x02binary").0, OCTET_STREAM);
        assert_eq!(sniff(b"").0, OCTET_STREAM);
    }

    #[test]
    fn names_lose_their_folders_and_controls() {
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("C:\\Users\\me\\photo.jpg"), "photo.jpg");
        assert_eq!(clean_name("a\u{0}b\r\n.txt"), "ab.txt");
        assert_eq!(clean_name(".."), "file");
        assert_eq!(clean_name(""), "file");
        let long = format!("{}.pdf", "x".repeat(300));
        let cut = clean_name(&long);
        assert!(cut.ends_with(".pdf") && cut.chars().count() == shared::files::FILE_NAME_MAX);
    }
}
