//! Files through the client engine against a real server: a picture uploaded from a
//! path with its progress, sent in a message through the outbox, seen by the other
//! member with its dimensions and placeholder, fetched by its signed preview link (and
//! through `fetch_media`, a part by `Range`) and saved by a download to a path byte for
//! byte; a cancelled download leaves nothing.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Db, PASSWORD, TestServer, on_both_databases, register};
use confab_core::api::{ApiClient, ApiError, TransferError};
use confab_core::connection::{Connection, ConnectionConfig, ConnectionEvent};
use shared::api::CreateRoomRequest;
use shared::files::FileKind;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

on_both_databases!(a_picture_goes_up_out_and_down_again);

const WAIT: Duration = Duration::from_secs(20);

async fn signed_in(server: &TestServer, prefix: &str) -> (ApiClient, String) {
    let (api, name) = register(server, prefix).await;
    api.login(&name, PASSWORD).await.unwrap();
    (api, name)
}

/// A real PNG (the server decodes it): 64x32, a gradient.
fn png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(64, 32, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 8) as u8, 128])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

async fn a_picture_goes_up_out_and_down_again(db: Db) {
    let server = TestServer::start(db).await;
    let (alice, _) = signed_in(&server, "alice").await;
    let (bob, _) = signed_in(&server, "bob").await;
    let room = alice
        .create_room(&CreateRoomRequest {
            title: "Photos".into(),
            max_participants: None,
        })
        .await
        .unwrap();
    // Groups take members from contacts; the invite link is the plain way in.
    let invite = alice
        .create_invite(room.id, &shared::api::CreateInviteRequest::default())
        .await
        .unwrap();
    bob.accept_invite(&invite.token).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let path = dir.join("cat.png");
    let bytes = png();
    std::fs::write(&path, &bytes).unwrap();

    // Up, with progress that ends at the file's size.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let upload = alice
        .upload_file(
            &path,
            "cat.png",
            move |sent, total| log.lock().unwrap().push((sent, total)),
            CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(upload.file.kind, FileKind::Image);
    assert_eq!(
        (upload.file.width, upload.file.height),
        (Some(64), Some(32))
    );
    assert!(upload.file.placeholder.is_some());
    let last = *seen.lock().unwrap().last().unwrap();
    assert_eq!(last, (bytes.len() as u64, bytes.len() as u64));

    // Out, through the outbox, with an empty body; Bob sees the attachment.
    let outbox = |n: &str| {
        std::env::temp_dir().join(format!("confab-files-{n}-{}.sqlite", uuid::Uuid::new_v4()))
    };
    let (a, _a_events) = Connection::open(alice.clone(), ConnectionConfig::new(outbox("a")))
        .await
        .unwrap();
    let (b, mut b_events) = Connection::open(bob.clone(), ConnectionConfig::new(outbox("b")))
        .await
        .unwrap();
    tokio::time::timeout(WAIT, async {
        a.wait_synced().await;
        b.wait_synced().await;
    })
    .await
    .unwrap();
    let sent = tokio::time::timeout(
        WAIT,
        a.send_message_with(room.id, "", None, vec![upload.file.id]),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(sent.attachments.len(), 1);
    let got = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(ConnectionEvent::MessageCreated(m)) = b_events.recv().await
                && m.id == sent.id
            {
                return m;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(got.attachments[0].id, upload.file.id);
    assert_eq!(got.attachments[0].width, Some(64));

    // Bob's own signed links: the preview is a WebP the webview can show.
    let links = bob.upload(upload.file.id).await.unwrap().links;
    let preview = bob.absolute(links.preview_url.as_deref().unwrap()).unwrap();
    let resp = reqwest::get(preview).await.unwrap();
    assert!(resp.status().is_success());
    assert_eq!(resp.headers()["content-type"], "image/webp");
    assert!(bob.absolute("https://elsewhere.example/x").is_err());

    // The same links through the engine, as the desktop app's webview asks for them when
    // only the app trusts the server's CA: a part by `Range`, the preview whole, and
    // nothing that is not this server's file or picture link.
    let part = bob
        .fetch_media(&links.url, Some("bytes=0-7"))
        .await
        .unwrap();
    assert_eq!(part.status, 206);
    assert_eq!(part.body, b"\x89PNG\r\n\x1a\n");
    assert!(
        part.headers
            .iter()
            .any(|(n, v)| n == "content-range" && v.starts_with("bytes 0-7/")),
        "{:?}",
        part.headers
    );
    let whole = bob
        .fetch_media(links.preview_url.as_deref().unwrap(), None)
        .await
        .unwrap();
    assert_eq!(whole.status, 200);
    assert!(
        whole
            .headers
            .contains(&("content-type".into(), "image/webp".into()))
    );
    assert!(whole.body.starts_with(b"RIFF"));
    for refused in [
        "/api/me",
        "/api/rooms",
        "https://elsewhere.example/api/files/x",
    ] {
        assert!(
            matches!(
                bob.fetch_media(refused, None).await,
                Err(TransferError::Api(ApiError::InvalidServerUrl { .. }))
            ),
            "{refused} went through"
        );
    }

    // Down, to a path of Bob's choosing: the re-encoded original, complete.
    let dest = dir.join("saved.png");
    let written = bob
        .download_to(&links.url, &dest, |_, _| {}, CancellationToken::new())
        .await
        .unwrap();
    let saved = std::fs::read(&dest).unwrap();
    assert_eq!(saved.len() as u64, written);
    assert!(saved.starts_with(b"\x89PNG"), "the original is still a PNG");

    // A cancelled download leaves neither the file nor its part.
    let cancel = CancellationToken::new();
    cancel.cancel();
    let gone = dir.join("never.png");
    let err = bob
        .download_to(&links.url, &gone, |_, _| {}, cancel)
        .await
        .unwrap_err();
    assert!(matches!(err, TransferError::Cancelled));
    assert!(!gone.exists() && !dir.join("never.png.part").exists());

    a.close().await;
    b.close().await;
}
