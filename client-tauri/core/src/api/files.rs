//! Files: uploads streamed from a path (with progress, cancellable), fresh signed links,
//! and downloads of a signed link streamed to a path. Memory stays flat whatever the
//! size: the bytes go through in chunks both ways.

use super::{ApiClient, ApiError, NO_BODY, error_of, json};
use futures_util::{StreamExt, TryStreamExt};
use reqwest::{Body, Method, StatusCode, header};
use shared::CommunityId;
use shared::UploadId;
use shared::files::{Picture, Upload};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;
use tokio_util::sync::CancellationToken;

/// How long one upload or download may take in all (the API's other calls get 30 s).
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(3600);

/// The most [`ApiClient::fetch_media`] reads (a preview, a picture or a part of a file).
pub const MEDIA_MAX: u64 = 64 << 20;

/// The response headers [`ApiClient::fetch_media`] passes on: what a viewer needs to show,
/// cache and seek the bytes, and the server's own protections.
const MEDIA_HEADERS: &[&str] = &[
    "content-type",
    "content-range",
    "accept-ranges",
    "cache-control",
    "etag",
    "last-modified",
    "content-disposition",
    "x-content-type-options",
    "content-security-policy",
];

/// What the server answered for a file or picture link.
#[derive(Debug)]
pub struct MediaResponse {
    /// The HTTP status (200, 206 for a range, 404, ...).
    pub status: u16,
    /// Those of [`MEDIA_HEADERS`] the server sent, lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What can go wrong moving a file.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// Cancelled by the caller (nothing is left behind).
    #[error("cancelled")]
    Cancelled,
    /// More than a viewer is given at once ([`MEDIA_MAX`]); download it instead.
    #[error("the file is larger than the {} MiB shown at once", MEDIA_MAX >> 20)]
    TooLarge,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TransferError + '_ {
    move |source| TransferError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The name the server keeps for a local file: its file name.
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| "file".to_owned())
}

impl ApiClient {
    /// Uploads the file at `path` as `name`, reading it in chunks. `progress(sent,
    /// total)` is called as the bytes leave; `cancel` stops it at once. Attach the
    /// answer's id to a message within the hour.
    pub async fn upload_file(
        &self,
        path: &Path,
        name: &str,
        progress: impl Fn(u64, u64) + Send + Sync + 'static,
        cancel: CancellationToken,
    ) -> Result<Upload, TransferError> {
        let progress = Arc::new(progress);
        let mut url = self.url(&["api", "uploads"]);
        url.query_pairs_mut().append_pair("name", name);
        // One retry with a refreshed token: the body is a stream, so the file is opened
        // again for it.
        let mut rejected: Option<String> = None;
        for _ in 0..2 {
            let token = self.token(rejected.as_deref()).await?;
            let file = tokio::fs::File::open(path).await.map_err(io(path))?;
            let total = file.metadata().await.map_err(io(path))?.len();
            let sent = Arc::new(AtomicU64::new(0));
            let report = Arc::clone(&progress);
            let stream = ReaderStream::with_capacity(file, 64 * 1024).inspect_ok(move |chunk| {
                let now =
                    sent.fetch_add(chunk.len() as u64, Ordering::Relaxed) + chunk.len() as u64;
                report(now, total);
            });
            let request = self
                .inner
                .http
                .request(Method::POST, url.clone())
                .bearer_auth(&token)
                .timeout(TRANSFER_TIMEOUT)
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header(header::CONTENT_LENGTH, total)
                .body(Body::wrap_stream(stream))
                .send();
            let resp = tokio::select! {
                () = cancel.cancelled() => return Err(TransferError::Cancelled),
                resp = request => resp.map_err(ApiError::from)?,
            };
            if resp.status() == StatusCode::UNAUTHORIZED && rejected.is_none() {
                rejected = Some(token);
                continue;
            }
            return Ok(json(resp).await?);
        }
        Err(ApiError::NotSignedIn.into())
    }

    /// An upload with fresh signed links (mine, or one attached in a room of mine).
    pub async fn upload(&self, id: UploadId) -> Result<Upload, ApiError> {
        let id = id.to_string();
        self.authed_json(Method::GET, &["api", "uploads", &id], NO_BODY)
            .await
    }

    /// The absolute address of a link the server gave as a path (`/api/files/...`).
    /// Only the server's own addresses: a link elsewhere is refused.
    pub fn absolute(&self, link: &str) -> Result<reqwest::Url, ApiError> {
        let invalid = |reason: String| ApiError::InvalidServerUrl {
            url: link.to_owned(),
            reason,
        };
        let url = self
            .server_url()
            .join(link)
            .map_err(|e| invalid(e.to_string()))?;
        if url.origin() != self.server_url().origin() {
            return Err(invalid("it is not on this server".into()));
        }
        Ok(url)
    }

    /// Fetches a file or picture link of this server (`/api/files/...`, `/api/pictures/...`)
    /// for a viewer that cannot reach the server itself: the desktop app's webview, which
    /// trusts only the operating system's CAs, when a private CA is in effect (see
    /// [`super::extra_ca_in_effect`]). Any other address is refused; `range` (a `Range`
    /// header) is passed on, so a part can be asked for; the answer is read whole, at most
    /// [`MEDIA_MAX`] bytes. The server's status comes back as it is (a 404 or 416 is a
    /// [`MediaResponse`], not an error).
    pub async fn fetch_media(
        &self,
        link: &str,
        range: Option<&str>,
    ) -> Result<MediaResponse, TransferError> {
        let url = self.absolute(link)?;
        let base = self.server_url().path();
        let rest = url
            .path()
            .strip_prefix(base)
            .or_else(|| url.path().strip_prefix('/'))
            .unwrap_or_default();
        if !(rest.starts_with("api/files/") || rest.starts_with("api/pictures/")) {
            return Err(ApiError::InvalidServerUrl {
                url: link.to_owned(),
                reason: "it is not a file or picture link".into(),
            }
            .into());
        }
        let mut req = self.inner.http.get(url);
        if let Some(range) = range {
            req = req.header(header::RANGE, range);
        }
        let resp = req.send().await.map_err(ApiError::from)?;
        if resp.content_length().is_some_and(|n| n > MEDIA_MAX) {
            return Err(TransferError::TooLarge);
        }
        let status = resp.status().as_u16();
        let headers = MEDIA_HEADERS
            .iter()
            .filter_map(|name| {
                let value = resp.headers().get(*name)?.to_str().ok()?;
                Some(((*name).to_owned(), value.to_owned()))
            })
            .collect();
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(ApiError::from)?;
            if (body.len() + chunk.len()) as u64 > MEDIA_MAX {
                return Err(TransferError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(MediaResponse {
            status,
            headers,
            body,
        })
    }

    /// Downloads a signed link to `dest`: into a temporary file beside it, renamed into
    /// place once complete (a cancelled or failed download leaves nothing).
    pub async fn download_to(
        &self,
        link: &str,
        dest: &Path,
        progress: impl Fn(u64, Option<u64>) + Send + Sync,
        cancel: CancellationToken,
    ) -> Result<u64, TransferError> {
        let url = self.absolute(link)?;
        let resp = tokio::select! {
            () = cancel.cancelled() => return Err(TransferError::Cancelled),
            resp = self.inner.http.get(url).timeout(TRANSFER_TIMEOUT).send() => {
                resp.map_err(ApiError::from)?
            }
        };
        if !resp.status().is_success() {
            return Err(error_of(resp).await.into());
        }
        let total = resp.content_length();
        let part = dest.with_extension(match dest.extension() {
            Some(ext) => format!("{}.part", ext.to_string_lossy()),
            None => "part".to_owned(),
        });
        let mut out = tokio::fs::File::create(&part).await.map_err(io(&part))?;
        let mut body = resp.bytes_stream();
        let mut written = 0u64;
        let result = loop {
            let chunk = tokio::select! {
                () = cancel.cancelled() => break Err(TransferError::Cancelled),
                chunk = body.next() => chunk,
            };
            match chunk {
                None => break Ok(()),
                Some(Err(e)) => break Err(ApiError::from(e).into()),
                Some(Ok(bytes)) => {
                    if let Err(e) = out.write_all(&bytes).await {
                        break Err(io(&part)(e));
                    }
                    written += bytes.len() as u64;
                    progress(written, total);
                }
            }
        };
        let result = match result {
            Ok(()) => out.flush().await.map_err(io(&part)),
            Err(e) => Err(e),
        };
        drop(out);
        match result {
            Ok(()) => {
                tokio::fs::rename(&part, dest).await.map_err(io(dest))?;
                Ok(written)
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&part).await;
                Err(e)
            }
        }
    }
}

impl ApiClient {
    /// Sends a picture file (at most 5 MiB: read whole) as the body of `PUT segments`.
    async fn put_picture(&self, segments: &[&str], path: &Path) -> Result<Picture, TransferError> {
        let bytes = tokio::fs::read(path).await.map_err(io(path))?;
        let url = self.url(segments);
        let mut rejected: Option<String> = None;
        for _ in 0..2 {
            let token = self.token(rejected.as_deref()).await?;
            let resp = self
                .inner
                .http
                .put(url.clone())
                .bearer_auth(&token)
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .body(bytes.clone())
                .send()
                .await
                .map_err(ApiError::from)?;
            if resp.status() == StatusCode::UNAUTHORIZED && rejected.is_none() {
                rejected = Some(token);
                continue;
            }
            return Ok(json(resp).await?);
        }
        Err(ApiError::NotSignedIn.into())
    }

    /// Makes the picture at `path` (PNG, JPEG, WebP, or a small safe SVG) my avatar.
    pub async fn set_avatar(&self, path: &Path) -> Result<Picture, TransferError> {
        self.put_picture(&["api", "users", "me", "avatar"], path)
            .await
    }

    pub async fn delete_avatar(&self) -> Result<(), ApiError> {
        self.authed_empty(Method::DELETE, &["api", "users", "me", "avatar"], NO_BODY)
            .await
    }

    /// A community's icon (admins); the members hear `community_updated`.
    pub async fn set_community_icon(
        &self,
        id: CommunityId,
        path: &Path,
    ) -> Result<Picture, TransferError> {
        let id = id.to_string();
        self.put_picture(&["api", "communities", &id, "icon"], path)
            .await
    }

    pub async fn delete_community_icon(&self, id: CommunityId) -> Result<(), ApiError> {
        let id = id.to_string();
        self.authed_empty(
            Method::DELETE,
            &["api", "communities", &id, "icon"],
            NO_BODY,
        )
        .await
    }
}
