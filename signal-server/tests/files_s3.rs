//! Files on S3-compatible storage (`--storage s3`), on SQLite and PostgreSQL: the test
//! runs a real S3 server in-process (`s3s-fs`, an S3 API over a folder, on a TCP port
//! with signed requests), and the server under test talks to it through object_store.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Db, TestServer, TestUser};
use hyper_util::rt::{TokioExecutor, TokioIo};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::files::Upload;
use signal_server::files::{self, Variant};
use std::io::Cursor;
use std::path::PathBuf;

on_both_databases!(files_live_in_the_bucket);

const BUCKET: &str = "confab";

/// An S3 server over a temporary folder, until dropped.
struct S3 {
    url: String,
    dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl S3 {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(BUCKET)).unwrap();
        let fs = s3s_fs::FileSystem::new(dir.path()).unwrap();
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(
            "test-key",
            "test-secret",
        ));
        let service = builder.build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            while let Ok((socket, _)) = listener.accept().await {
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        Self { url, dir, task }
    }

    /// The server's flags for this bucket.
    fn flags(&self) -> Vec<String> {
        [
            "--storage",
            "s3",
            "--s3-bucket",
            BUCKET,
            "--s3-endpoint",
            &self.url,
            "--s3-allow-http",
            "--s3-access-key-id",
            "test-key",
            "--s3-secret-access-key",
            "test-secret",
            // Both nodes sign links (and tokens) with one secret, as a cluster must.
            "--jwt-secret",
            "files-s3-story-secret-0123456789abcdef",
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// Where s3s-fs keeps an object.
    fn object(&self, key: &str) -> PathBuf {
        self.dir.path().join(BUCKET).join(key)
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn upload(server: &TestServer, user: &TestUser, name: &str, bytes: Vec<u8>) -> Upload {
    let resp = server
        .http
        .post(format!("{}/api/uploads?name={name}", server.base))
        .bearer_auth(&user.token)
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    resp.json().await.unwrap()
}

async fn fetch(base: &str, path: &str, range: Option<&str>) -> (StatusCode, Vec<u8>) {
    let mut req = reqwest::Client::new().get(format!("{base}{path}"));
    if let Some(r) = range {
        req = req.header("range", r);
    }
    let resp = req.send().await.unwrap();
    (resp.status(), resp.bytes().await.unwrap().to_vec())
}

async fn files_live_in_the_bucket(db: Db) {
    let s3 = S3::start().await;
    let flags = s3.flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = TestServer::start_with(db, &flags).await;
    let ann = server.user("ann").await;

    // A photo: its original, preview and thumbnail are objects in the bucket.
    let img = DynamicImage::ImageRgb8(RgbImage::from_fn(64, 48, |x, y| {
        Rgb([x as u8 * 4, y as u8 * 5, 90])
    }));
    let mut png = Cursor::new(Vec::new());
    img.write_to(&mut png, ImageFormat::Png).unwrap();
    let photo = upload(&server, &ann, "photo.png", png.into_inner()).await;
    for v in [Variant::Original, Variant::Preview, Variant::Thumbnail] {
        assert!(
            s3.object(&files::key(photo.file.id, v)).exists(),
            "{v:?} not in the bucket"
        );
    }
    assert!(
        !server
            .data_dir()
            .join("files")
            .join(files::key(photo.file.id, Variant::Original))
            .exists()
    );
    let (status, bytes) = fetch(
        &server.base,
        photo.links.thumbnail_url.as_deref().unwrap(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(image::guess_format(&bytes).unwrap(), ImageFormat::WebP);

    // A 12 MiB file goes up in parts and comes back whole, and by range.
    let big: Vec<u8> = (0..12 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let video = upload(&server, &ann, "video.bin", big.clone()).await;
    assert_eq!(
        std::fs::metadata(s3.object(&files::key(video.file.id, Variant::Original)))
            .unwrap()
            .len(),
        big.len() as u64
    );
    let (status, bytes) = fetch(&server.base, &video.links.url, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(bytes == big, "the file came back different");
    let (status, bytes) = fetch(
        &server.base,
        &video.links.url,
        Some("bytes=9000000-9000099"),
    )
    .await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(bytes, big[9_000_000..9_000_100]);

    // Another node on the same database and bucket serves the same link: files are
    // shared, not per node.
    let other = server.another_node(&flags).await;
    let (status, bytes) = fetch(&other.base, &video.links.url, Some("bytes=0-9")).await;
    assert_eq!(
        (status, bytes.as_slice()),
        (StatusCode::PARTIAL_CONTENT, &big[..10])
    );

    // An avatar is an object too.
    let resp = server
        .http
        .put(format!("{}/api/users/me/avatar", server.base))
        .bearer_auth(&ann.token)
        .body(br#"<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32"><rect width="32" height="32" fill="teal"/></svg>"#.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let picture: Value = resp.json().await.unwrap();
    let (status, png) = fetch(&server.base, picture["url"].as_str().unwrap(), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(png.starts_with(b"\x89PNG"));

    // Attached files stay; the sweep removes the rest from the bucket.
    let room = server.room(&ann, 4).await;
    let resp = server
        .http
        .post(format!("{}/api/rooms/{room}/messages", server.base))
        .bearer_auth(&ann.token)
        .header("idempotency-key", "k1")
        .json(&json!({"body": "", "attachments": [photo.file.id]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let removed = files::sweep(server.pool(), server.files(), signal_server::db::now() + 1)
        .await
        .unwrap();
    assert_eq!(removed, 1);
    assert!(
        !s3.object(&files::key(video.file.id, Variant::Original))
            .exists()
    );
    assert!(
        s3.object(&files::key(photo.file.id, Variant::Original))
            .exists()
    );
    drop(other);
    server.stop().await;
}
