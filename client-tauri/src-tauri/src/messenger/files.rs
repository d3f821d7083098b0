//! Files in the messenger: uploads from a path or pasted bytes (progress as
//! `transfer-event`s, cancellable by the transfer id the window chose), signed links
//! for showing images (absolute, on the server), and downloads to the path a "save as"
//! dialog gave.

use super::{Messenger, Result, lock};
use crate::error::AppError;
use crate::events::TransferEvent;
use confab_core::api::{TransferError, file_name};
use serde::Serialize;
use shared::UploadId;
use shared::files::{Attachment, FileKind, Upload};
use specta::Type;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

/// Links are fetched again this long before they expire.
const LINK_MARGIN_SECS: i64 = 60;
/// Progress events at most every this many bytes (and at the end).
const PROGRESS_STEP: u64 = 256 * 1024;

/// A file attached to a message, or just uploaded.
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentView {
    pub id: UploadId,
    pub name: String,
    /// Bytes.
    pub size: u64,
    pub content_type: String,
    /// Shown inline (and in the lightbox) when true; a file card otherwise.
    pub image: bool,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// A BlurHash to paint while the preview loads.
    pub placeholder: Option<String>,
}

impl From<Attachment> for AttachmentView {
    fn from(a: Attachment) -> Self {
        Self {
            id: a.id,
            name: a.name,
            size: a.size,
            content_type: a.content_type,
            image: a.kind == FileKind::Image,
            width: a.width,
            height: a.height,
            placeholder: a.placeholder,
        }
    }
}

/// Where a file's bytes are, absolute, until `expires_at`, as the webview loads them: from
/// the server, or through the app when only the app can verify the server
/// (`webview_media.rs`).
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct FileLinksView {
    pub url: String,
    pub preview_url: Option<String>,
    pub thumbnail_url: Option<String>,
    pub expires_at: String,
}

/// Uploads and links the messenger keeps: what was uploaded here (for pending
/// messages), fresh links by upload, and the running transfers' cancel tokens.
#[derive(Debug, Default)]
pub(super) struct Files {
    uploaded: Mutex<HashMap<UploadId, AttachmentView>>,
    links: Mutex<HashMap<UploadId, (FileLinksView, OffsetDateTime)>>,
    transfers: Mutex<HashMap<String, CancellationToken>>,
}

impl Files {
    pub(super) fn uploaded(&self, ids: &[UploadId]) -> Vec<AttachmentView> {
        let known = lock(&self.uploaded);
        ids.iter().filter_map(|id| known.get(id).cloned()).collect()
    }

    fn start(&self, transfer: &str) -> Result<CancellationToken> {
        let mut transfers = lock(&self.transfers);
        if transfers.contains_key(transfer) {
            return Err(AppError::field(
                "transferId",
                "This transfer is running already.",
            ));
        }
        let token = CancellationToken::new();
        transfers.insert(transfer.to_owned(), token.clone());
        Ok(token)
    }

    fn finish(&self, transfer: &str) {
        lock(&self.transfers).remove(transfer);
    }
}

/// Reports progress in steps (and always the last byte).
fn reporter(
    emit: impl Fn(TransferEvent) + Send + Sync + 'static,
    transfer: String,
) -> impl Fn(u64, Option<u64>) + Send + Sync + 'static {
    let last = Mutex::new(0u64);
    move |done, total| {
        let mut last = lock(&last);
        if done - (*last).min(done) >= PROGRESS_STEP || Some(done) == total {
            *last = done;
            emit(TransferEvent {
                transfer_id: transfer.clone(),
                done,
                total,
            });
        }
    }
}

impl From<TransferError> for AppError {
    fn from(e: TransferError) -> Self {
        match e {
            TransferError::Api(e) => e.into(),
            TransferError::Io { .. } | TransferError::TooLarge => {
                AppError::field("path", e.to_string())
            }
            TransferError::Cancelled => AppError::Conflict {
                message: "Cancelled.".into(),
                fields: Default::default(),
            },
        }
    }
}

impl Messenger {
    /// Uploads the file at `path`; `transfer-event`s with `transfer` report progress
    /// and [`Messenger::cancel_transfer`] stops it. Attach the answer by its id.
    pub async fn upload_file(&self, transfer: &str, path: &Path) -> Result<AttachmentView> {
        let name = file_name(path);
        self.upload_named(transfer, path, &name).await
    }

    /// Uploads pasted bytes (a screenshot from the clipboard) as `name`: through a
    /// temporary file, so the upload path is the same.
    pub async fn upload_bytes(
        &self,
        transfer: &str,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<AttachmentView> {
        let dir = std::env::temp_dir().join("confab-paste");
        let tmp = dir.join(uuid::Uuid::new_v4().to_string());
        let write = async {
            tokio::fs::create_dir_all(&dir).await?;
            tokio::fs::write(&tmp, bytes).await
        };
        write
            .await
            .map_err(|e| AppError::field("data", e.to_string()))?;
        let name = Path::new(name.trim())
            .file_name()
            .map_or_else(|| "pasted".to_owned(), |n| n.to_string_lossy().into_owned());
        let result = self.upload_named(transfer, &tmp, &name).await;
        let _ = tokio::fs::remove_file(&tmp).await;
        result
    }

    async fn upload_named(
        &self,
        transfer: &str,
        path: &Path,
        name: &str,
    ) -> Result<AttachmentView> {
        let files = &self.inner.files;
        let cancel = files.start(transfer)?;
        let outlet = std::sync::Arc::clone(&self.inner.outlet);
        let report = reporter(move |e| outlet.transfer(e), transfer.to_owned());
        let result = self
            .inner
            .conn
            .api()
            .upload_file(
                path,
                name,
                move |sent, total| report(sent, Some(total)),
                cancel,
            )
            .await;
        files.finish(transfer);
        let upload = result?;
        self.remember_links(&upload);
        let view = AttachmentView::from(upload.file);
        lock(&files.uploaded).insert(view.id, view.clone());
        Ok(view)
    }

    /// Stops an upload or download (its command answers "Cancelled.").
    pub fn cancel_transfer(&self, transfer: &str) {
        if let Some(token) = lock(&self.inner.files.transfers).remove(transfer) {
            token.cancel();
        }
    }

    fn remember_links(&self, upload: &Upload) -> FileLinksView {
        let api = self.inner.conn.api();
        let abs = |link: &str| {
            api.absolute(link)
                .map(|u| crate::webview_media::for_webview(&u))
                .unwrap_or_default()
        };
        let view = FileLinksView {
            url: abs(&upload.links.url),
            preview_url: upload.links.preview_url.as_deref().map(abs),
            thumbnail_url: upload.links.thumbnail_url.as_deref().map(abs),
            expires_at: crate::views::rfc3339(upload.links.expires_at),
        };
        lock(&self.inner.files.links)
            .insert(upload.file.id, (view.clone(), upload.links.expires_at));
        view
    }

    /// Signed links to a file (cached until shortly before they expire).
    pub async fn file_links(&self, id: UploadId) -> Result<FileLinksView> {
        let now = OffsetDateTime::now_utc();
        if let Some((view, expires)) = lock(&self.inner.files.links).get(&id)
            && (*expires - now).whole_seconds() > LINK_MARGIN_SECS
        {
            return Ok(view.clone());
        }
        let upload = self.inner.conn.api().upload(id).await?;
        Ok(self.remember_links(&upload))
    }

    /// Downloads a file to `path` (from a "save as" dialog), with progress events.
    pub async fn download_file(&self, transfer: &str, id: UploadId, path: PathBuf) -> Result<u64> {
        let upload = self.inner.conn.api().upload(id).await?;
        self.remember_links(&upload);
        let files = &self.inner.files;
        let cancel = files.start(transfer)?;
        let outlet = std::sync::Arc::clone(&self.inner.outlet);
        let report = reporter(move |e| outlet.transfer(e), transfer.to_owned());
        let result = self
            .inner
            .conn
            .api()
            .download_to(&upload.links.url, &path, report, cancel)
            .await;
        files.finish(transfer);
        Ok(result?)
    }
}

impl Messenger {
    /// Makes the picture at `path` my avatar; answers its path on the server.
    pub async fn set_avatar(&self, path: &Path) -> Result<String> {
        Ok(self.inner.conn.api().set_avatar(path).await?.url)
    }

    pub async fn clear_avatar(&self) -> Result<()> {
        Ok(self.inner.conn.api().delete_avatar().await?)
    }

    /// A community's icon (admins): the community as it is now.
    pub async fn set_community_icon(
        &self,
        id: shared::CommunityId,
        path: Option<&Path>,
    ) -> Result<super::communities::CommunityView> {
        let api = self.inner.conn.api();
        match path {
            Some(path) => {
                api.set_community_icon(id, path).await?;
            }
            None => api.delete_community_icon(id).await?,
        }
        let summary = api.community(id).await?;
        let channels = self
            .inner
            .conn
            .community(id)
            .map(|c| c.channels)
            .unwrap_or_default();
        Ok(super::communities::CommunityView::of_state(
            confab_core::connection::CommunityState { summary, channels },
            api.server_url(),
        ))
    }
}
