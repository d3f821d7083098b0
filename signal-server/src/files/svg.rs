//! SVG avatars and community icons: checked, then rasterized by resvg to a PNG, which is
//! all that is ever served (the SVG itself is not kept).
//!
//! Refused: a document type declaration (so no entities, so no "billion laughs"), more
//! than 10,000 elements, scripts, `foreignObject`, any `on*` event attribute, any
//! reference that is not to an element of the same document (`href`/`xlink:href` other
//! than `#id`, `url(...)` other than `url(#id)`, `@import`), and a declared size over
//! 70x70 (the `width`/`height` of the root, or its `viewBox` without them).

use resvg::tiny_skia;
use resvg::usvg::{self, roxmltree};
use shared::files::SVG_MAX_SIZE;

/// The rendered PNG's longest side, pixels.
pub const RENDER_SIDE: u32 = 256;
/// Most elements an icon may have.
const NODES_LIMIT: u32 = 10_000;

/// Why an SVG was refused (the message goes to the client).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SvgError {
    #[error("the SVG is not UTF-8")]
    NotUtf8,
    #[error("the SVG does not parse: {0}")]
    Parse(String),
    #[error("the SVG declares a document type (entities are not allowed)")]
    Dtd,
    #[error("the root element is not <svg>")]
    NotSvg,
    #[error("the SVG contains <{0}>, which is not allowed")]
    Forbidden(String),
    #[error("the SVG has an event handler attribute ({0})")]
    EventHandler(String),
    #[error("the SVG refers to something outside itself ({0})")]
    External(String),
    #[error("the SVG's declared size is over 70x70 (or not given in pixels)")]
    TooLarge,
}

/// Checks `data` and renders it to a PNG at most 256 px on its longer side.
pub fn render(data: &[u8]) -> Result<Vec<u8>, SvgError> {
    let text = std::str::from_utf8(data).map_err(|_| SvgError::NotUtf8)?;
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: NODES_LIMIT,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, options).map_err(|e| match e {
        roxmltree::Error::DtdDetected => SvgError::Dtd,
        e => SvgError::Parse(e.to_string()),
    })?;
    check(&doc)?;
    let opt = usvg::Options {
        resources_dir: None,
        image_href_resolver: usvg::ImageHrefResolver {
            resolve_data: Box::new(|_, _, _| None),
            resolve_string: Box::new(|_, _| None),
        },
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_xmltree(&doc, &opt).map_err(|e| SvgError::Parse(e.to_string()))?;
    let size = tree.size();
    let scale = RENDER_SIDE as f32 / size.width().max(size.height());
    let w = ((size.width() * scale).round() as u32).clamp(1, RENDER_SIDE);
    let h = ((size.height() * scale).round() as u32).clamp(1, RENDER_SIDE);
    let mut pixmap =
        tiny_skia::Pixmap::new(w, h).ok_or_else(|| SvgError::Parse("empty size".into()))?;
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    pixmap
        .encode_png()
        .map_err(|e| SvgError::Parse(e.to_string()))
}

/// The document rules (see the module comment).
fn check(doc: &roxmltree::Document) -> Result<(), SvgError> {
    let root = doc.root_element();
    if root.tag_name().name() != "svg" {
        return Err(SvgError::NotSvg);
    }
    declared_size(root)?;
    for node in doc.descendants() {
        if node.is_element() {
            let name = node.tag_name().name();
            if name.eq_ignore_ascii_case("script") || name.eq_ignore_ascii_case("foreignObject") {
                return Err(SvgError::Forbidden(name.to_owned()));
            }
            for attr in node.attributes() {
                let local = attr.name();
                if local.len() > 2 && local[..2].eq_ignore_ascii_case("on") {
                    return Err(SvgError::EventHandler(local.to_owned()));
                }
                let value = attr.value();
                if local.eq_ignore_ascii_case("href") && !value.trim_start().starts_with('#') {
                    return Err(SvgError::External(short(value)));
                }
                external_in_css(value)?;
            }
        }
        if node.is_text() && node.parent().is_some_and(|p| p.has_tag_name("style")) {
            external_in_css(node.text().unwrap_or_default())?;
        }
    }
    Ok(())
}

/// `url(...)` to anything but `#id`, and `@import`, in an attribute or a stylesheet.
fn external_in_css(value: &str) -> Result<(), SvgError> {
    let lower = value.to_ascii_lowercase();
    if lower.contains("@import") {
        return Err(SvgError::External("@import".into()));
    }
    let mut rest = lower.as_str();
    while let Some(i) = rest.find("url(") {
        let arg = rest[i + 4..].trim_start().trim_start_matches(['\'', '"']);
        if !arg.starts_with('#') {
            return Err(SvgError::External(short(
                &value[value.len() - rest.len() + i..],
            )));
        }
        rest = &rest[i + 4..];
    }
    Ok(())
}

fn short(s: &str) -> String {
    s.chars().take(60).collect()
}

/// Width and height of the root (or its viewBox), each at most 70 user units.
fn declared_size(root: roxmltree::Node) -> Result<(), SvgError> {
    let length = |name: &str| -> Result<Option<f32>, SvgError> {
        match root.attribute(name) {
            None => Ok(None),
            Some(v) => {
                let v = v.trim();
                let number = v.strip_suffix("px").unwrap_or(v).trim();
                number
                    .parse::<f32>()
                    .ok()
                    .filter(|n| n.is_finite() && *n > 0.0)
                    .map(Some)
                    .ok_or(SvgError::TooLarge)
            }
        }
    };
    let (w, h) = match (length("width")?, length("height")?) {
        (Some(w), Some(h)) => (w, h),
        (w, h) => {
            let view_box: Vec<f32> = root
                .attribute("viewBox")
                .unwrap_or_default()
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|s| !s.is_empty())
                .filter_map(|s| s.parse().ok())
                .collect();
            let (vw, vh) = match view_box[..] {
                [_, _, vw, vh] if vw.is_finite() && vh.is_finite() && vw > 0.0 && vh > 0.0 => {
                    (vw, vh)
                }
                _ => return Err(SvgError::TooLarge),
            };
            (w.unwrap_or(vw), h.unwrap_or(vh))
        }
    };
    if w > SVG_MAX_SIZE || h > SVG_MAX_SIZE {
        return Err(SvgError::TooLarge);
    }
    Ok(())
}

/// Whether bytes look like an SVG document (for avatars and icons, whose type is
/// sniffed before this parser decides).
pub fn looks_like_svg(head: &[u8]) -> bool {
    let lower = head.to_ascii_lowercase();
    lower.windows(4).any(|w| w == b"<svg")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn svg(body: &str) -> String {
        format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="64" height="64">{body}</svg>"#
        )
    }

    #[test]
    fn a_plain_icon_renders() {
        let png = render(svg(r##"<defs><linearGradient id="g"/></defs><circle cx="32" cy="32" r="30" fill="url(#g)"/>"##).as_bytes()).unwrap();
        assert!(png.starts_with(b"\x89PNG"));
    }

    #[test]
    fn dangerous_svgs_are_refused() {
        let cases = [
            (svg("<script>alert(1)</script>"), "script"),
            (
                svg(r#"<rect width="5" height="5" onclick="x()"/>"#),
                "handler",
            ),
            (
                svg(r#"<image href="http://example.org/a.png" width="5" height="5"/>"#),
                "external",
            ),
            (
                svg(r#"<image xlink:href="file:///etc/passwd" width="5" height="5"/>"#),
                "external",
            ),
            (
                svg(r#"<image href="data:image/png;base64,AAAA" width="5" height="5"/>"#),
                "external",
            ),
            (
                svg(r#"<rect style="fill: url(http://x/y)" width="5" height="5"/>"#),
                "external",
            ),
            (svg("<style>@import 'http://x/y.css';</style>"), "external"),
            (svg("<foreignObject><div/></foreignObject>"), "foreign"),
        ];
        for (doc, what) in cases {
            assert!(render(doc.as_bytes()).is_err(), "{what}: {doc}");
        }
        let onload =
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10" onload="alert(1)"/>"#;
        assert!(matches!(
            render(onload.as_bytes()),
            Err(SvgError::EventHandler(_))
        ));
        let big = r#"<svg xmlns="http://www.w3.org/2000/svg" width="10000" height="10000"/>"#;
        assert_eq!(render(big.as_bytes()), Err(SvgError::TooLarge));
        let big_box = r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10000 10000"/>"#;
        assert_eq!(render(big_box.as_bytes()), Err(SvgError::TooLarge));
        let laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text>&lol2;</text></svg>"#;
        assert_eq!(render(laughs.as_bytes()), Err(SvgError::Dtd));
    }
}
