//! Files over real HTTP and WebSocket, on SQLite and PostgreSQL, with the local store:
//! uploads of every kind, types sniffed from the bytes, oversized and zero-byte files,
//! polyglots, EXIF applied then stripped, ranges, who may read what, signed links,
//! attaching once, the sweep, and SVG avatars (see files_s3.rs for the S3 store).

#![allow(clippy::unwrap_used)]

mod common;

use common::{Db, TestServer, TestUser};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use shared::files::Upload;
use shared::signal::{ClientMsg, ServerMsg};
use shared::{UploadId, UserId};
use signal_server::files::{self, Variant};
use std::io::Cursor;

on_both_databases!(
    every_kind_of_upload_is_typed_by_its_bytes,
    oversized_uploads_are_refused_and_25_mib_pass,
    photos_are_turned_upright_and_lose_their_exif,
    ranges_let_video_seek,
    only_room_members_get_files_and_links_are_checked,
    an_upload_is_attached_once_by_its_uploader,
    unattached_uploads_are_swept_after_an_hour,
    avatars_accept_images_and_safe_svgs_only,
    community_icons_are_set_by_admins,
);

/// Uploads raw bytes as `name`, with a Content-Type that may lie.
async fn upload_as(
    server: &TestServer,
    user: &TestUser,
    name: &str,
    claimed_type: &str,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    let resp = server
        .http
        .post(format!(
            "{}/api/uploads?name={}",
            server.base,
            name.bytes()
                .map(|b| if b.is_ascii_alphanumeric() || b == b'.' {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                })
                .collect::<String>()
        ))
        .bearer_auth(&user.token)
        .header("content-type", claimed_type)
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn upload(server: &TestServer, user: &TestUser, name: &str, bytes: Vec<u8>) -> Upload {
    let (status, body) = upload_as(server, user, name, "application/octet-stream", bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    serde_json::from_value(body).unwrap()
}

/// GETs a path without a token (signed links need none).
async fn fetch(
    server: &TestServer,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = server.http.get(format!("{}{}", server.base, path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    (status, headers, resp.bytes().await.unwrap().to_vec())
}

/// Sends `chunks` chunks of `size` bytes to `method path` over a plain socket, with a
/// Content-Length or (`chunked`) without one, and reads the answer even when the server
/// answers before taking it all (a refused upload); returns the status and the text.
async fn raw_upload(
    server: &TestServer,
    user: &TestUser,
    method: &str,
    path: &str,
    chunks: usize,
    size: usize,
    chunked: bool,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        format!("Content-Length: {}", chunks * size)
    };
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n{framing}\r\n\
         Connection: close\r\n\r\n",
        user.token
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'x'; size];
    for _ in 0..chunks {
        // The server may answer and close before all of it is sent.
        let sent = if chunked {
            tcp.write_all(format!("{size:x}\r\n").as_bytes())
                .await
                .is_ok()
                && tcp.write_all(&chunk).await.is_ok()
                && tcp.write_all(b"\r\n").await.is_ok()
        } else {
            tcp.write_all(&chunk).await.is_ok()
        };
        if !sent {
            break;
        }
    }
    if chunked {
        let _ = tcp.write_all(b"0\r\n\r\n").await;
    }
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).map_or("", |v| v.to_str().unwrap())
}

/// Every file answer says: do not sniff, run nothing.
fn assert_protected(h: &HeaderMap) {
    assert_eq!(header(h, "x-content-type-options"), "nosniff");
    assert_eq!(header(h, "content-security-policy"), "sandbox");
}

fn encoded(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A 40x20 picture: left half red, right half blue.
fn halves() -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(40, 20, |x, _| {
        if x < 20 {
            Rgb([220, 20, 20])
        } else {
            Rgb([20, 20, 220])
        }
    }))
}

/// A group room of `owner` that `members` joined.
async fn room_with(server: &TestServer, owner: &TestUser, members: &[&TestUser]) -> String {
    let room = server.room(owner, 8).await;
    for m in members {
        let (status, body) = server.join(m, &room).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    room
}

async fn send_with(
    server: &TestServer,
    user: &TestUser,
    room: &str,
    body: &str,
    attachments: &[UploadId],
) -> (StatusCode, Value) {
    let resp = server
        .http
        .post(format!("{}/api/rooms/{room}/messages", server.base))
        .bearer_auth(&user.token)
        .header("idempotency-key", uuid::Uuid::new_v4().to_string())
        .json(&json!({ "body": body, "attachments": attachments }))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn links(server: &TestServer, user: &TestUser, id: UploadId) -> (StatusCode, Value) {
    server
        .get(&format!("/api/uploads/{id}"), Some(&user.token))
        .await
}

async fn every_kind_of_upload_is_typed_by_its_bytes(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;

    // Ann sends the four image formats; each is sniffed, measured and previewed.
    let picture = halves();
    for (format, mime) in [
        (ImageFormat::Png, "image/png"),
        (ImageFormat::Jpeg, "image/jpeg"),
        (ImageFormat::Gif, "image/gif"),
        (ImageFormat::WebP, "image/webp"),
    ] {
        let up = upload(&server, &ann, "picture", encoded(&picture, format)).await;
        assert_eq!(up.file.content_type, mime);
        assert_eq!(up.file.kind, shared::files::FileKind::Image);
        assert_eq!((up.file.width, up.file.height), (Some(40), Some(20)));
        assert!(up.file.placeholder.as_deref().is_some_and(|p| p.len() >= 6));
        assert!(!up.attached);
        // The original is shown inline; the preview and thumbnail are WebP.
        let (status, h, bytes) = fetch(&server, &up.links.url, &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_protected(&h);
        assert_eq!(header(&h, "content-type"), mime);
        assert_eq!(header(&h, "content-disposition"), "inline");
        assert!(header(&h, "cache-control").starts_with("private, max-age="));
        assert!(!header(&h, "etag").is_empty());
        assert_eq!(image::guess_format(&bytes).unwrap(), format);
        for variant in [
            up.links.preview_url.unwrap(),
            up.links.thumbnail_url.unwrap(),
        ] {
            let (status, h, bytes) = fetch(&server, &variant, &[]).await;
            assert_eq!(status, StatusCode::OK);
            assert_protected(&h);
            assert_eq!(header(&h, "content-type"), "image/webp");
            let img = image::load_from_memory_with_format(&bytes, ImageFormat::WebP).unwrap();
            assert_eq!((img.width(), img.height()), (40, 20));
        }
    }

    // A PDF is a PDF whatever it is called, and a download.
    let pdf = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n".to_vec();
    let up = upload(&server, &ann, "report.exe", pdf.clone()).await;
    assert_eq!(up.file.content_type, "application/pdf");
    assert_eq!(up.file.kind, shared::files::FileKind::File);
    assert!(up.links.preview_url.is_none());
    let (_, h, bytes) = fetch(&server, &up.links.url, &[]).await;
    assert_eq!(bytes, pdf);
    assert_protected(&h);
    assert_eq!(
        header(&h, "content-disposition"),
        "attachment; filename*=UTF-8''report.exe"
    );

    // HTML claiming to be a PNG (by name and by Content-Type) is stored as a plain
    // download: never text/html, never inline.
    let html = b"<!doctype html><html><script>alert(document.cookie)</script></html>".to_vec();
    let (status, body) = upload_as(&server, &ann, "cat.png", "image/png", html).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let up: Upload = serde_json::from_value(body).unwrap();
    assert_eq!(up.file.content_type, "application/octet-stream");
    let (_, h, _) = fetch(&server, &up.links.url, &[]).await;
    assert_eq!(header(&h, "content-type"), "application/octet-stream");
    assert!(header(&h, "content-disposition").starts_with("attachment"));
    assert_protected(&h);

    // So are an SVG and a script sent as attachments.
    for (name, bytes) in [
        (
            "icon.svg",
            br#"<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>"#.to_vec(),
        ),
        ("run.sh", b"#!/bin/sh\necho hi\n".to_vec()),
        (
            "page.xhtml",
            br#"<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"/>"#.to_vec(),
        ),
    ] {
        let up = upload(&server, &ann, name, bytes).await;
        assert_eq!(up.file.content_type, "application/octet-stream", "{name}");
    }

    // Plain text stays text, as a download.
    let up = upload(
        &server,
        &ann,
        "notes.txt",
        "grocery list: milk, ünïcode".into(),
    )
    .await;
    assert_eq!(up.file.content_type, "text/plain; charset=utf-8");

    // A zero-byte file is a file of zero bytes.
    let up = upload(&server, &ann, "empty", Vec::new()).await;
    assert_eq!(
        (up.file.size, up.file.content_type.as_str()),
        (0, "application/octet-stream")
    );
    let (status, h, bytes) = fetch(&server, &up.links.url, &[]).await;
    assert_eq!((status, bytes.len()), (StatusCode::OK, 0));
    assert_eq!(header(&h, "content-length"), "0");

    // Polyglots: a JPEG with a script appended is re-encoded, so the script is gone; a
    // GIF header in front of HTML does not decode and is a plain download.
    let mut jpeg = encoded(&picture, ImageFormat::Jpeg);
    jpeg.extend_from_slice(b"<script>alert(1)</script>");
    let up = upload(&server, &ann, "poly.jpg", jpeg).await;
    assert_eq!(up.file.content_type, "image/jpeg");
    let (_, _, bytes) = fetch(&server, &up.links.url, &[]).await;
    assert!(
        !bytes.windows(7).any(|w| w == b"<script"),
        "the appended script is served"
    );
    let gifar = b"GIF89a<html><body><script>alert(1)</script></body></html>".to_vec();
    let up = upload(&server, &ann, "poly.gif", gifar).await;
    assert_eq!(up.file.content_type, "application/octet-stream");
    assert_eq!(up.file.kind, shared::files::FileKind::File);

    // Uploads need an account and a name.
    let resp = server
        .http
        .post(format!("{}/api/uploads?name=x", server.base))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = upload_as(&server, &ann, "   ", "text/plain", b"x".to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["fields"]["name"].is_string());
    server.stop().await;
}

async fn oversized_uploads_are_refused_and_25_mib_pass(db: Db) {
    // A server that takes at most 1 MiB.
    let small = TestServer::start_with(db, &["--max-upload-size", "1048576"]).await;
    let ann = small.user("ann").await;
    let (status, body) = raw_upload(
        &small,
        &ann,
        "POST",
        "/api/uploads?name=big.bin",
        1,
        1024 * 1024 + 1,
        false,
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("payload_too_large"), "{body}");
    // The same without a Content-Length (a chunked stream): refused as it arrives.
    let (status, body) = raw_upload(
        &small,
        &ann,
        "POST",
        "/api/uploads?name=stream.bin",
        17,
        64 * 1024,
        true,
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("payload_too_large"), "{body}");
    // Exactly the limit passes, and nothing of the refused ones was left behind.
    let up = upload(&small, &ann, "fits.bin", vec![7; 1024 * 1024]).await;
    assert_eq!(up.file.size, 1024 * 1024);
    let leftovers = std::fs::read_dir(small.data_dir().join("uploads-tmp"))
        .unwrap()
        .count();
    assert_eq!(leftovers, 0, "temporary files left behind");
    small.stop().await;

    // The default limit takes a 25 MiB file, and gives it back byte for byte.
    let server = TestServer::start(db).await;
    let bob = server.user("bob").await;
    let big: Vec<u8> = (0..25 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let up = upload(&server, &bob, "video.bin", big.clone()).await;
    assert_eq!(up.file.size, big.len() as u64);
    let (status, _, bytes) = fetch(&server, &up.links.url, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(bytes == big, "the 25 MiB file came back different");
    let (status, _) = raw_upload(
        &server,
        &bob,
        "POST",
        "/api/uploads?name=over.bin",
        1,
        25 * 1024 * 1024 + 1,
        false,
    )
    .await;
    assert_eq!(status, 413);
    server.stop().await;
}

/// An EXIF APP1 segment: Orientation 6 (rotate 90° clockwise to view) and a GPS IFD
/// holding a latitude reference, in big-endian TIFF.
fn exif_app1() -> Vec<u8> {
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"MM\0\x2a\0\0\0\x08");
    // IFD0 at 8: two entries.
    tiff.extend_from_slice(&2u16.to_be_bytes());
    tiff.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0]);
    let gps_at: u32 = 8 + 2 + 2 * 12 + 4;
    tiff.extend_from_slice(&[0x88, 0x25, 0, 4, 0, 0, 0, 1]);
    tiff.extend_from_slice(&gps_at.to_be_bytes());
    tiff.extend_from_slice(&0u32.to_be_bytes());
    // GPS IFD: GPSLatitudeRef "N".
    tiff.extend_from_slice(&1u16.to_be_bytes());
    tiff.extend_from_slice(&[0, 1, 0, 2, 0, 0, 0, 2, b'N', 0, 0, 0]);
    tiff.extend_from_slice(&0u32.to_be_bytes());
    let mut app1 = vec![0xFF, 0xE1];
    let len = (2 + 6 + tiff.len()) as u16;
    app1.extend_from_slice(&len.to_be_bytes());
    app1.extend_from_slice(b"Exif\0\0");
    app1.extend_from_slice(&tiff);
    app1
}

async fn photos_are_turned_upright_and_lose_their_exif(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    // A camera JPEG: stored sideways with EXIF saying "rotate 90°", and where it was.
    let plain = encoded(&halves(), ImageFormat::Jpeg);
    let mut photo = plain[..2].to_vec();
    photo.extend_from_slice(&exif_app1());
    photo.extend_from_slice(&plain[2..]);
    assert!(photo.windows(6).any(|w| w == b"Exif\0\0"));

    let up = upload(&server, &ann, "IMG_0001.JPG", photo).await;
    // Upright: 20 wide, 40 high.
    assert_eq!((up.file.width, up.file.height), (Some(20), Some(40)));
    let (_, _, bytes) = fetch(&server, &up.links.url, &[]).await;
    assert!(
        !bytes.windows(4).any(|w| w == b"Exif"),
        "EXIF still in the served photo"
    );
    assert!(
        !bytes.windows(2).any(|w| w == [0xFF, 0xE1]),
        "an APP1 segment is left"
    );
    let img = image::load_from_memory_with_format(&bytes, ImageFormat::Jpeg)
        .unwrap()
        .to_rgb8();
    assert_eq!(img.dimensions(), (20, 40));
    // The left (red) half of the sensor is now on top.
    assert!(img.get_pixel(10, 5)[0] > 150 && img.get_pixel(10, 5)[2] < 100);
    assert!(img.get_pixel(10, 35)[2] > 150 && img.get_pixel(10, 35)[0] < 100);
    // The preview is upright too.
    let (_, _, preview) = fetch(&server, up.links.preview_url.as_deref().unwrap(), &[]).await;
    let preview = image::load_from_memory(&preview).unwrap();
    assert_eq!((preview.width(), preview.height()), (20, 40));
    server.stop().await;
}

async fn ranges_let_video_seek(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let up = upload(&server, &ann, "clip.bin", data.clone()).await;
    let url = up.links.url.clone();

    let (status, h, bytes) = fetch(&server, &url, &[("range", "bytes=0-99")]).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&h, "content-range"), "bytes 0-99/1000");
    assert_eq!(bytes, data[..100]);
    assert_protected(&h);
    let (status, h, bytes) = fetch(&server, &url, &[("range", "bytes=900-")]).await;
    assert_eq!(
        (status, header(&h, "content-range")),
        (StatusCode::PARTIAL_CONTENT, "bytes 900-999/1000")
    );
    assert_eq!(bytes, data[900..]);
    let (_, _, bytes) = fetch(&server, &url, &[("range", "bytes=-10")]).await;
    assert_eq!(bytes, data[990..]);
    let (_, h, bytes) = fetch(&server, &url, &[("range", "bytes=990-5000")]).await;
    assert_eq!(
        (header(&h, "content-range"), bytes.len()),
        ("bytes 990-999/1000", 10)
    );
    // Past the end, or several ranges: 416 with the size.
    for bad in ["bytes=1000-", "bytes=0-1,5-9"] {
        let (status, h, body) = fetch(&server, &url, &[("range", bad)]).await;
        assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE, "{bad}");
        assert_eq!(header(&h, "content-range"), "bytes */1000");
        assert_protected(&h);
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert!(body["error"]["code"].is_string());
    }
    // A cached copy is still good: 304.
    let (_, h, _) = fetch(&server, &url, &[]).await;
    let etag = header(&h, "etag").to_owned();
    let (status, _, body) = fetch(&server, &url, &[("if-none-match", &etag)]).await;
    assert_eq!((status, body.len()), (StatusCode::NOT_MODIFIED, 0));
    server.stop().await;
}

async fn only_room_members_get_files_and_links_are_checked(db: Db) {
    let server = TestServer::start(db).await;
    let (ann, bob, eve) = (
        server.user("ann").await,
        server.user("bob").await,
        server.user("eve").await,
    );
    let room = room_with(&server, &ann, &[&bob]).await;
    let up = upload(&server, &ann, "plan.pdf", b"%PDF-1.4 plan".to_vec()).await;
    // Before it is sent, only Ann sees it.
    assert_eq!(
        links(&server, &bob, up.file.id).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, msg) = send_with(&server, &ann, &room, "the plan", &[up.file.id]).await;
    assert_eq!(status, StatusCode::CREATED, "{msg}");

    // Bob, a member, gets links of his own; Eve, who is not, gets nothing.
    let (status, body) = links(&server, &bob, up.file.id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let bobs: Upload = serde_json::from_value(body).unwrap();
    assert!(bobs.attached);
    let (status, _, bytes) = fetch(&server, &bobs.links.url, &[]).await;
    assert_eq!(
        (status, bytes.as_slice()),
        (StatusCode::OK, &b"%PDF-1.4 plan"[..])
    );
    let (status, body) = links(&server, &eve, up.file.id).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // Eve cannot turn Bob's link into hers, nor forge or stretch one.
    let bob_id: UserId = bob.id.parse().unwrap();
    let eves_link = bobs.links.url.replace(&bob.id, &eve.id);
    let (status, h, _) = fetch(&server, &eves_link, &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_protected(&h);
    let (sig_at, sig) = bobs.links.url.split_once("sig=").unwrap();
    let flipped = match sig.strip_prefix('0') {
        Some(rest) => format!("1{rest}"),
        None => format!("0{}", &sig[1..]),
    };
    assert_eq!(
        fetch(&server, &format!("{sig_at}sig={flipped}"), &[])
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let exp = bobs.links.expires_at.unix_timestamp();
    let stretched = bobs
        .links
        .url
        .replace(&format!("exp={exp}"), &format!("exp={}", exp + 86_400));
    assert_eq!(
        fetch(&server, &stretched, &[]).await.0,
        StatusCode::FORBIDDEN
    );
    // A link that expired (signed by the server, an hour ago) is refused.
    let old = server.files().link(
        up.file.id,
        Variant::Original,
        bob_id,
        signal_server::db::now() - 3600,
    );
    let (status, _, body) = fetch(&server, &old, &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    // No preview for a PDF.
    let preview = bobs.links.url.replace("/original?", "/preview?");
    assert_eq!(
        fetch(&server, &preview, &[]).await.0,
        StatusCode::FORBIDDEN,
        "signed for original only"
    );

    // Once Bob leaves, his still-valid link stops working.
    let (status, _) = server
        .post(
            &format!("/api/rooms/{room}/leave"),
            Some(&bob.token),
            json!({}),
        )
        .await;
    assert!(status.is_success());
    assert_eq!(
        fetch(&server, &bobs.links.url, &[]).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        links(&server, &bob, up.file.id).await.0,
        StatusCode::NOT_FOUND
    );
    server.stop().await;
}

async fn an_upload_is_attached_once_by_its_uploader(db: Db) {
    let server = TestServer::start(db).await;
    let (ann, bob) = (server.user("ann").await, server.user("bob").await);
    let room = room_with(&server, &ann, &[&bob]).await;
    let photo = upload(
        &server,
        &ann,
        "photo.png",
        encoded(&halves(), ImageFormat::Png),
    )
    .await;
    let doc = upload(&server, &ann, "doc.txt", b"minutes".to_vec()).await;

    // Bob cannot send Ann's upload.
    let (status, body) = send_with(&server, &bob, &room, "look", &[photo.file.id]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["fields"]["attachments"].is_string());
    // Ann sends both, with no text; the message carries them in order.
    let (status, msg) = send_with(&server, &ann, &room, "", &[photo.file.id, doc.file.id]).await;
    assert_eq!(status, StatusCode::CREATED, "{msg}");
    let attachments = msg["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 2);
    assert_eq!(attachments[0]["id"], json!(photo.file.id));
    assert_eq!(attachments[0]["width"], 40);
    assert_eq!(attachments[1]["content_type"], "text/plain; charset=utf-8");
    // Not a second time, not even by her.
    let (status, body) = send_with(&server, &ann, &room, "again", &[photo.file.id]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // At most ten, each once, and an empty body needs a file.
    let many: Vec<UploadId> = (0..11).map(|_| UploadId::new()).collect();
    assert_eq!(
        send_with(&server, &ann, &room, "x", &many).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let extra = upload(&server, &ann, "a.txt", b"a".to_vec()).await;
    let (status, _) = send_with(&server, &ann, &room, "x", &[extra.file.id, extra.file.id]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        send_with(&server, &ann, &room, "", &[]).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // A refused send attached nothing: the upload is still free.
    let (status, _) = send_with(&server, &ann, &room, "a", &[extra.file.id]).await;
    assert_eq!(status, StatusCode::CREATED);

    // Bob sees the attachments in the timeline.
    let timeline = server.all_messages(&bob, &room).await;
    let with_files = timeline.iter().find(|m| m.attachments.len() == 2).unwrap();
    assert_eq!(
        with_files.attachments[0].placeholder,
        photo.file.placeholder
    );

    // Over the WebSocket too: the ack and the room's event carry the file.
    let mut bob_ws = server.ws(&bob).await;
    let mut ann_ws = server.ws(&ann).await;
    let clip = upload(&server, &ann, "clip.txt", b"clip".to_vec()).await;
    ann_ws
        .send(&ClientMsg::SendMessage {
            room_id: room.parse().unwrap(),
            client_id: "ws-file".into(),
            body: "over the socket".into(),
            reply_to: None,
            attachments: vec![clip.file.id],
        })
        .await;
    let ack = ann_ws
        .recv_until(|m| matches!(m, ServerMsg::MessageAck { .. }))
        .await;
    let ServerMsg::MessageAck { message, .. } = ack else {
        unreachable!()
    };
    assert_eq!(message.attachments[0].id, clip.file.id);
    let created = bob_ws
        .recv_until(|m| matches!(m, ServerMsg::MessageCreated { .. }))
        .await;
    let ServerMsg::MessageCreated { message } = created else {
        unreachable!()
    };
    assert_eq!(message.attachments[0].name, "clip.txt");

    // Deleting the message takes its files with it.
    let id = msg["id"].as_str().unwrap();
    let (status, tomb) = server
        .delete(
            &format!("/api/rooms/{room}/messages/{id}"),
            Some(&ann.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tomb}");
    assert_eq!(tomb["attachments"], json!([]));
    assert_eq!(
        links(&server, &bob, photo.file.id).await.0,
        StatusCode::NOT_FOUND
    );
    server.stop().await;
}

async fn unattached_uploads_are_swept_after_an_hour(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let room = room_with(&server, &ann, &[]).await;
    let kept = upload(
        &server,
        &ann,
        "kept.png",
        encoded(&halves(), ImageFormat::Png),
    )
    .await;
    let (status, _) = send_with(&server, &ann, &room, "kept", &[kept.file.id]).await;
    assert_eq!(status, StatusCode::CREATED);
    let left = upload(
        &server,
        &ann,
        "left.png",
        encoded(&halves(), ImageFormat::Png),
    )
    .await;
    let stored = |id: UploadId, v: Variant| server.data_dir().join("files").join(files::key(id, v));
    assert!(stored(left.file.id, Variant::Thumbnail).exists());

    // Within the hour nothing goes.
    let now = signal_server::db::now();
    let removed = files::sweep(server.pool(), server.files(), now - files::UNATTACHED_TTL)
        .await
        .unwrap();
    assert_eq!(removed, 0);
    // An hour later (a cutoff past its creation) the unattached one goes, row and bytes.
    let removed = files::sweep(server.pool(), server.files(), now + 1)
        .await
        .unwrap();
    assert_eq!(removed, 1);
    assert_eq!(
        links(&server, &ann, left.file.id).await.0,
        StatusCode::NOT_FOUND
    );
    for v in [Variant::Original, Variant::Preview, Variant::Thumbnail] {
        assert!(!stored(left.file.id, v).exists(), "{v:?} left behind");
    }
    assert_eq!(
        send_with(&server, &ann, &room, "late", &[left.file.id])
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // The attached one stays.
    assert_eq!(links(&server, &ann, kept.file.id).await.0, StatusCode::OK);
    assert!(stored(kept.file.id, Variant::Original).exists());
    server.stop().await;
}

async fn put_avatar(server: &TestServer, user: &TestUser, bytes: Vec<u8>) -> (StatusCode, Value) {
    put_picture(server, user, "/api/users/me/avatar", bytes).await
}

async fn put_picture(
    server: &TestServer,
    user: &TestUser,
    path: &str,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    let resp = server
        .http
        .put(format!("{}{path}", server.base))
        .bearer_auth(&user.token)
        .header("content-type", "image/svg+xml")
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn avatars_accept_images_and_safe_svgs_only(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let svg = |attrs: &str, body: &str| {
        format!(r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" {attrs}>{body}</svg>"#)
            .into_bytes()
    };
    let sized = r#"width="64" height="64""#;
    // Every kind of dangerous SVG is refused with the reason.
    let refused = [
        ("a script", svg(sized, "<script>alert(1)</script>")),
        ("onload", svg(&format!(r#"{sized} onload="alert(1)""#), "")),
        ("an event handler", svg(sized, r#"<rect width="9" height="9" onmouseover="x()"/>"#)),
        ("an external href", svg(sized, r#"<image href="https://evil.example/x.png" width="9" height="9"/>"#)),
        ("a file href", svg(sized, r#"<use xlink:href="file:///etc/passwd#x"/>"#)),
        ("a data href", svg(sized, r#"<image href="data:image/svg+xml;base64,PHN2Zy8+" width="9" height="9"/>"#)),
        ("foreignObject", svg(sized, "<foreignObject><p>hi</p></foreignObject>")),
        ("10,000x10,000", svg(r#"width="10000" height="10000""#, "")),
        ("a big viewBox", svg(r#"viewBox="0 0 10000 10000""#, "")),
        (
            "billion laughs",
            br#"<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text>&d;&d;&d;&d;&d;&d;&d;&d;</text></svg>"#.to_vec(),
        ),
        ("not an image", b"just some text".to_vec()),
        ("a GIF", encoded(&halves(), ImageFormat::Gif)),
    ];
    for (what, bytes) in refused {
        let (status, body) = put_avatar(&server, &ann, bytes).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {body}");
        assert!(
            body["error"]["fields"]["file"].is_string(),
            "{what}: {body}"
        );
    }

    // A clean 64x64 icon becomes a PNG rendered by the server.
    let icon = svg(
        sized,
        r##"<defs><linearGradient id="g"><stop offset="0" stop-color="#f00"/></linearGradient></defs><circle cx="32" cy="32" r="30" fill="url(#g)"/>"##,
    );
    let (status, body) = put_avatar(&server, &ann, icon).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let first = body["url"].as_str().unwrap().to_owned();
    let (status, h, png) = fetch(&server, &first, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_protected(&h);
    assert_eq!(header(&h, "content-type"), "image/png");
    assert!(header(&h, "cache-control").contains("immutable"));
    let img = image::load_from_memory_with_format(&png, ImageFormat::Png).unwrap();
    assert_eq!((img.width(), img.height()), (256, 256));
    // It is everywhere Ann appears: her profile, and as others see her.
    let (_, me) = server.get("/api/users/me", Some(&ann.token)).await;
    assert_eq!(me["avatar_url"], json!(first));
    let bob = server.user("bob").await;
    let (_, seen) = server
        .get(&format!("/api/users/{}", ann.id), Some(&bob.token))
        .await;
    assert_eq!(seen["avatar_url"], json!(first));
    let room = room_with(&server, &ann, &[&bob]).await;
    let (_, detail) = server
        .get(&format!("/api/rooms/{room}"), Some(&bob.token))
        .await;
    let ann_there = detail["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user"]["id"] == json!(ann.id))
        .unwrap();
    assert_eq!(ann_there["user"]["avatar_url"], json!(first));

    // A JPEG replaces it (as a WebP); the old picture is gone.
    let (status, body) = put_avatar(&server, &ann, encoded(&halves(), ImageFormat::Jpeg)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let second = body["url"].as_str().unwrap().to_owned();
    let (_, h, _) = fetch(&server, &second, &[]).await;
    assert_eq!(header(&h, "content-type"), "image/webp");
    assert_eq!(fetch(&server, &first, &[]).await.0, StatusCode::NOT_FOUND);
    // Too big is 413.
    let (status, _) = raw_upload(
        &server,
        &ann,
        "PUT",
        "/api/users/me/avatar",
        1,
        5 * 1024 * 1024 + 1,
        false,
    )
    .await;
    assert_eq!(status, 413);
    let (status, _) = raw_upload(
        &server,
        &ann,
        "PUT",
        "/api/users/me/avatar",
        81,
        64 * 1024,
        true,
    )
    .await;
    assert_eq!(status, 413);
    // Removed, it is gone.
    let (status, _) = server
        .delete("/api/users/me/avatar", Some(&ann.token))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(fetch(&server, &second, &[]).await.0, StatusCode::NOT_FOUND);
    let (_, me) = server.get("/api/users/me", Some(&ann.token)).await;
    assert_eq!(me["avatar_url"], Value::Null);
    // A picture id is no way into attachments, nor an attachment's id into pictures.
    let up = upload(&server, &ann, "x.png", encoded(&halves(), ImageFormat::Png)).await;
    assert_eq!(
        fetch(&server, &format!("/api/pictures/{}", up.file.id), &[])
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    server.stop().await;
}

async fn community_icons_are_set_by_admins(db: Db) {
    let server = TestServer::start(db).await;
    let (owner, member, outsider) = (
        server.user("owner").await,
        server.user("member").await,
        server.user("outsider").await,
    );
    let (status, community) = server
        .post(
            "/api/communities",
            Some(&owner.token),
            json!({"name": "Rustaceans"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{community}");
    let id = community["id"].as_str().unwrap().to_owned();
    assert_eq!(community["icon_url"], Value::Null);
    let (status, _) = server
        .post(
            &format!("/api/communities/{id}/join"),
            Some(&member.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let icon_path = format!("/api/communities/{id}/icon");
    let icon = br#"<svg xmlns="http://www.w3.org/2000/svg" width="70" height="70"><circle cx="35" cy="35" r="30" fill="orange"/></svg>"#.to_vec();

    // A plain member may not, an outsider does not even see it.
    assert_eq!(
        put_picture(&server, &member, &icon_path, icon.clone())
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        put_picture(&server, &outsider, &icon_path, icon.clone())
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    // An icon that breaks the rules is refused: 71 px is over the limit.
    let big = String::from_utf8(icon.clone())
        .unwrap()
        .replace(r#"width="70""#, r#"width="71""#);
    assert_eq!(
        put_picture(&server, &owner, &icon_path, big.into_bytes())
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // The owner sets it; members see the URL, and it serves a PNG, live on the socket too.
    let mut member_ws = server.ws(&member).await;
    let (status, body) = put_picture(&server, &owner, &icon_path, icon).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let url = body["url"].as_str().unwrap().to_owned();
    let (_, summary) = server
        .get(&format!("/api/communities/{id}"), Some(&member.token))
        .await;
    assert_eq!(summary["icon_url"], json!(url));
    let updated = member_ws
        .recv_until(|m| matches!(m, ServerMsg::CommunityUpdated { .. }))
        .await;
    let ServerMsg::CommunityUpdated { community } = updated else {
        unreachable!()
    };
    assert_eq!(community.icon_url.as_deref(), Some(url.as_str()));
    let (status, h, png) = fetch(&server, &url, &[]).await;
    assert_eq!(
        (status, header(&h, "content-type")),
        (StatusCode::OK, "image/png")
    );
    assert_protected(&h);
    assert!(png.starts_with(b"\x89PNG"));

    // Removed, the URL is gone and the community has no icon.
    let (status, _) = server.delete(&icon_path, Some(&owner.token)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(fetch(&server, &url, &[]).await.0, StatusCode::NOT_FOUND);
    let (_, summary) = server
        .get(&format!("/api/communities/{id}"), Some(&member.token))
        .await;
    assert_eq!(summary["icon_url"], Value::Null);

    // A deleted community's icon goes with the next sweep; a user's avatar stays.
    let square = br#"<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>"#.to_vec();
    let (_, body) = put_picture(&server, &owner, &icon_path, square.clone()).await;
    let icon_url = body["url"].as_str().unwrap().to_owned();
    let (_, body) = put_avatar(&server, &owner, square).await;
    let avatar_url = body["url"].as_str().unwrap().to_owned();
    let (status, _) = server
        .delete(&format!("/api/communities/{id}"), Some(&owner.token))
        .await;
    assert!(status.is_success(), "{status}");
    let removed = files::sweep(server.pool(), server.files(), signal_server::db::now() + 1)
        .await
        .unwrap();
    assert_eq!(removed, 1);
    assert_eq!(
        fetch(&server, &icon_url, &[]).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(fetch(&server, &avatar_url, &[]).await.0, StatusCode::OK);
    server.stop().await;
}
