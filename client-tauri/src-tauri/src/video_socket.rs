//! The video socket: the tiles that decode in the webview take their VP8 frames from a
//! WebSocket on loopback instead of a Tauri `Channel`. Through a channel each frame is an
//! IPC call of its own (Rust has the webview run a script, which fetches the bytes back
//! from the app's IPC protocol with a request, headers and a promise chain), at 30 frames
//! a second per tile; through the socket it is one WebSocket message, which WebKit's
//! network process hands to the page (see the README's performance section for what each
//! costs).
//!
//! The socket listens on 127.0.0.1 on a port of its own choosing; a connection's path is
//! `/video/<token>/<source>`, the token a random one of this run of the app that only the
//! window gets (`video_socket`), so another process or a web page cannot watch the call.
//! The source is what `watch_video` takes; the handshake is refused (HTTP 403 for a wrong
//! token, 409 when `WebviewVideo` refuses the watch) before any frame goes out, and the
//! tile then falls back to the channel. A connection carries frames until the page
//! closes it or the watch ends (replaced, the call over); `CONFAB_VIDEO_SOCKET=0` turns
//! the socket off.

use crate::frames::{FrameSink, WebviewVideo};
use futures_util::{SinkExt, StreamExt};
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;

/// Frames queued for one connection before new ones are dropped: about a quarter of a
/// second at 30 fps, so a page that stalls loses frames instead of falling behind.
const QUEUE: usize = 8;

/// The running socket: where the window connects.
#[derive(Debug)]
pub struct VideoSocket {
    base: String,
}

impl VideoSocket {
    /// Listens on loopback and serves `video`'s frames from the app's async runtime.
    /// None when turned off (`CONFAB_VIDEO_SOCKET=0`) or when it cannot listen.
    pub fn start(video: Arc<WebviewVideo>) -> Option<Self> {
        if std::env::var("CONFAB_VIDEO_SOCKET").is_ok_and(|v| v == "0") {
            return None;
        }
        let listener = StdListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .and_then(|l| l.set_nonblocking(true).map(|()| l));
        let (listener, addr) = match listener.and_then(|l| l.local_addr().map(|a| (l, a))) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(error = %e, "no video socket: tiles take frames through IPC");
                return None;
            }
        };
        let token: Arc<str> = uuid::Uuid::new_v4().simple().to_string().into();
        let base = format!("ws://{addr}/video/{token}");
        tauri::async_runtime::spawn(async move {
            match TcpListener::from_std(listener) {
                Ok(listener) => accept(listener, token, video).await,
                Err(e) => tracing::warn!(error = %e, "the video socket cannot listen"),
            }
        });
        Some(Self { base })
    }

    /// `ws://127.0.0.1:<port>/video/<token>`; a tile appends `/<source>`.
    pub fn base(&self) -> &str {
        &self.base
    }
}

async fn accept(listener: TcpListener, token: Arc<str>, video: Arc<WebviewVideo>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve(stream, Arc::clone(&token), Arc::clone(&video)));
            }
            Err(e) => {
                // Out of file descriptors, say: try again shortly rather than spin.
                tracing::warn!(error = %e, "the video socket could not accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The source a connection's path asks for, when its token is this run's.
fn source_of<'a>(path: &'a str, token: &str) -> Option<&'a str> {
    let (given, source) = path.strip_prefix("/video/")?.split_once('/')?;
    (given == token && !source.is_empty()).then_some(source)
}

fn refuse(status: StatusCode, reason: &str) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(reason.to_owned()));
    *response.status_mut() = status;
    response
}

// The handshake callback's error type is tungstenite's (an HTTP response), not ours.
#[allow(clippy::result_large_err)]
async fn serve(stream: TcpStream, token: Arc<str>, video: Arc<WebviewVideo>) {
    let _ = stream.set_nodelay(true);
    let (queue, mut frames) = mpsc::channel(QUEUE);
    let handshake = |request: &Request, response: Response| {
        let Some(source) = source_of(request.uri().path(), &token) else {
            return Err(refuse(StatusCode::FORBIDDEN, "not this app's video socket"));
        };
        match video.watch(source, FrameSink::Socket(queue)) {
            Ok(()) => Ok(response),
            Err(e) => Err(refuse(StatusCode::CONFLICT, &e.to_string())),
        }
    };
    let socket = match tokio_tungstenite::accept_hdr_async(stream, handshake).await {
        Ok(socket) => socket,
        Err(e) => {
            tracing::debug!(error = %e, "a video socket handshake failed");
            return;
        }
    };
    let (mut out, mut incoming) = socket.split();
    loop {
        tokio::select! {
            frame = frames.recv() => {
                // None: the watch ended (replaced, unwatched, the call over).
                let Some(frame) = frame else { break };
                if out.send(Message::Binary(frame.into())).await.is_err() {
                    return;
                }
            }
            message = incoming.next() => match message {
                // The page sends nothing but its close.
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = out.send(Message::Close(None)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_names_this_runs_token_and_a_source() {
        assert_eq!(source_of("/video/abc/local", "abc"), Some("local"));
        assert_eq!(
            source_of("/video/abc/screen:1234", "abc"),
            Some("screen:1234")
        );
        assert_eq!(source_of("/video/abd/local", "abc"), None, "another token");
        assert_eq!(source_of("/video/abc/", "abc"), None, "no source");
        assert_eq!(source_of("/video/abc", "abc"), None);
        assert_eq!(source_of("/other/abc/local", "abc"), None);
    }

    /// A real connection: refused with a wrong token and outside a call, then our own
    /// encoded frames arrive from a keyframe on, one message each.
    #[tokio::test]
    async fn the_window_gets_frames_over_a_real_socket() {
        use confab_core::call::{LocalVideoControl, RemoteVideoControl};
        use tokio_tungstenite::connect_async;
        use tokio_tungstenite::tungstenite::Error;

        let video = Arc::new(WebviewVideo::default());
        let socket = VideoSocket::start(Arc::clone(&video)).expect("listening");
        let base = socket.base().to_owned();
        assert!(base.starts_with("ws://127.0.0.1:"), "{base}");
        let status = |result: Result<_, Error>| match result {
            Err(Error::Http(response)) => Some(response.status()),
            _ => None,
        };
        let wrong = base.rsplit_once('/').expect("a token").0.to_owned() + "/nottheapps";
        assert_eq!(
            status(connect_async(format!("{wrong}/local")).await),
            Some(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            status(connect_async(format!("{base}/local")).await),
            Some(StatusCode::CONFLICT),
            "no call yet"
        );

        video.attach(RemoteVideoControl::default(), LocalVideoControl::default());
        let (mut ws, _) = connect_async(format!("{base}/local"))
            .await
            .expect("the self-view's socket");
        let frame = crate::frames::local_frame;
        video.deliver_local(&frame(false, b"delta"));
        video.deliver_local(&frame(true, b"key"));
        video.deliver_local(&frame(false, b"next"));
        let mut payloads = Vec::new();
        while payloads.len() < 2 {
            let message = tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .expect("a frame in time")
                .expect("the socket open")
                .expect("a message");
            let Message::Binary(bytes) = message else {
                panic!("not a frame: {message:?}");
            };
            assert_eq!(bytes[0], 0, "our own camera");
            payloads.push(bytes[crate::frames::ENCODED_HEADER_LEN..].to_vec());
        }
        assert_eq!(payloads, [b"key".to_vec(), b"next".to_vec()]);

        // The call ends: the socket closes.
        video.detach();
        let end = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("closed in time");
        assert!(
            matches!(end, None | Some(Ok(Message::Close(_))) | Some(Err(_))),
            "{end:?}"
        );
    }
}
