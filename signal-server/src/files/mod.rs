//! Files: uploads streamed to storage, images previewed, SVG pictures checked and
//! rasterized, links signed, and the sweep of uploads nobody attached.
//!
//! - `storage.rs`: the local folder or S3-compatible bucket (object_store);
//! - `sniff.rs`: the type from the bytes, the inline/download policy, file names;
//! - `images.rs`: decoding with limits, EXIF orientation, re-encoding, WebP variants,
//!   BlurHash;
//! - `svg.rs`: the SVG rules for avatars and icons, rendered to PNG by resvg.
//!
//! The HTTP side is `http/files.rs`, the SQL `db/files.rs`.

pub mod images;
pub mod sniff;
pub mod storage;
pub mod svg;

use crate::config::{Config, StorageKind};
use crate::db::files as store;
use axum::body::Body;
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use shared::{UploadId, UserId};
use sqlx::AnyPool;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use storage::{S3Settings, Storage};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

/// How long a signed link works at least, seconds.
pub const LINK_TTL: i64 = 30 * 60;
/// Links are made to expire on multiples of this, so the same link (and the browser's
/// cached copy) serves every request in that window.
pub const LINK_STEP: i64 = 10 * 60;
/// An upload nobody attached is removed after this long, seconds.
pub const UNATTACHED_TTL: i64 = 3600;

/// One stored form of an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// The file (an image re-encoded without metadata).
    Original,
    /// Images: a WebP at most 1280 px.
    Preview,
    /// Images: a WebP at most 320 px.
    Thumbnail,
}

impl Variant {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Original => "original",
            Self::Preview => "preview",
            Self::Thumbnail => "thumbnail",
        }
    }
}

/// The storage key of one variant of an upload: `ab/ab12...-original`.
pub fn key(id: UploadId, variant: Variant) -> String {
    let id = id.to_string();
    format!("{}/{id}-{}", &id[..2], variant.as_str())
}

/// The files service: storage, the link key, limits.
#[derive(Debug)]
pub struct Files {
    pub storage: Storage,
    /// HMAC-SHA256 key of the signed links, derived from the server's secret.
    link_key: Vec<u8>,
    /// Largest attachment upload, bytes.
    pub max_upload: u64,
    /// Where uploads are received before they are stored.
    tmp_dir: PathBuf,
    /// Image decodes at once: each may hold up to `images::MAX_ALLOC`.
    pub decoding: Semaphore,
}

impl Files {
    /// The configured storage; the link key is derived from `secret` (the JWT secret),
    /// so links stay valid across restarts and across the nodes of a cluster.
    pub fn new(config: &Config, secret: &[u8]) -> anyhow::Result<Self> {
        let storage = match config.storage {
            StorageKind::Local => Storage::local(&config.data_dir.join("files"))?,
            StorageKind::S3 => Storage::s3(&S3Settings {
                bucket: config
                    .s3_bucket
                    .clone()
                    .ok_or_else(|| anyhow::anyhow!("--storage s3 needs --s3-bucket"))?,
                endpoint: config.s3_endpoint.clone(),
                region: config.s3_region.clone(),
                access_key_id: config.s3_access_key_id.clone(),
                secret_access_key: config.s3_secret_access_key.clone(),
                allow_http: config.s3_allow_http,
            })?,
        };
        let tmp_dir = config.data_dir.join("uploads-tmp");
        std::fs::create_dir_all(&tmp_dir)?;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)?;
        mac.update(b"confab file links v1");
        Ok(Self {
            storage,
            link_key: mac.finalize().into_bytes().to_vec(),
            max_upload: config.max_upload_size,
            tmp_dir,
            decoding: Semaphore::new(2),
        })
    }

    fn mac(&self, id: UploadId, variant: Variant, user: UserId, exp: i64) -> Hmac<Sha256> {
        // new_from_slice accepts any key length for HMAC.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.link_key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(format!("{id}\n{}\n{user}\n{exp}", variant.as_str()).as_bytes());
        mac
    }

    /// A signed link to `variant` of upload `id` for `user`, valid until `exp`.
    pub fn link(&self, id: UploadId, variant: Variant, user: UserId, exp: i64) -> String {
        let sig = hex(&self.mac(id, variant, user, exp).finalize().into_bytes());
        format!(
            "/api/files/{id}/{}?u={user}&exp={exp}&sig={sig}",
            variant.as_str()
        )
    }

    /// Whether `sig` is this server's signature of the link (constant time).
    pub fn verify(
        &self,
        id: UploadId,
        variant: Variant,
        user: UserId,
        exp: i64,
        sig: &str,
    ) -> bool {
        let Some(sig) = unhex(sig) else {
            return false;
        };
        self.mac(id, variant, user, exp).verify_slice(&sig).is_ok()
    }

    /// Receives a body into a temporary file, at most `limit` bytes, hashing it and
    /// keeping its first bytes for sniffing. Memory stays at one chunk and the head.
    pub async fn receive(&self, body: Body, limit: u64) -> Result<Received, ReceiveError> {
        let path = self.tmp_dir.join(format!("{}.part", uuid::Uuid::new_v4()));
        let temp = TempFile(Some(path.clone()));
        let file = tokio::fs::File::create(&path).await?;
        let mut out = tokio::io::BufWriter::with_capacity(64 * 1024, file);
        let mut stream = body.into_data_stream();
        let mut size: u64 = 0;
        let mut hash = Sha256::new();
        let mut head = Vec::with_capacity(sniff::HEAD);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ReceiveError::Body(e.to_string()))?;
            size += chunk.len() as u64;
            if size > limit {
                return Err(ReceiveError::TooLarge(limit));
            }
            if head.len() < sniff::HEAD {
                let take = (sniff::HEAD - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
            }
            hash.update(&chunk);
            out.write_all(&chunk).await?;
        }
        out.flush().await?;
        Ok(Received {
            temp,
            size,
            sha256: hex(&hash.finalize()),
            head,
        })
    }
}

/// A received upload in its temporary file.
#[derive(Debug)]
pub struct Received {
    pub temp: TempFile,
    pub size: u64,
    pub sha256: String,
    pub head: Vec<u8>,
}

/// Why a body was not received.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("the file is over the limit of {0} bytes")]
    TooLarge(u64),
    #[error("the upload was interrupted: {0}")]
    Body(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A temporary file, removed when dropped unless it was handed on (`take`). A request
/// cancelled mid-upload (the client went away) leaves nothing behind.
#[derive(Debug)]
pub struct TempFile(Option<PathBuf>);

impl TempFile {
    pub fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }

    /// The path, no longer removed on drop (the storage moved the file away).
    pub fn take(mut self) -> PathBuf {
        self.0.take().unwrap_or_default()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The expiry of a link made at `now`: at least `LINK_TTL` ahead, on a `LINK_STEP`.
pub fn link_expiry(now: i64) -> i64 {
    (now + LINK_TTL) / LINK_STEP * LINK_STEP + LINK_STEP
}

/// Removes what no message holds: attachment uploads never attached that were made before
/// `cutoff` (unix seconds), and uploads whose message was deleted (or whose message or
/// room is gone); and avatars and icons made before `cutoff` that nothing shows (a
/// deleted community's icon). Returns how many were removed. Runs every few minutes with
/// `cutoff = now - UNATTACHED_TTL`; a test calls it with a cutoff of its own.
pub async fn sweep(pool: &AnyPool, files: &Arc<Files>, cutoff: i64) -> anyhow::Result<u64> {
    let mut removed = 0;
    loop {
        let batch = store::sweepable(pool, cutoff, 200).await?;
        if batch.is_empty() {
            return Ok(removed);
        }
        for id in batch {
            remove_objects(files, id).await?;
            store::delete(pool, id).await?;
            removed += 1;
        }
    }
}

/// Deletes every stored variant of an upload.
pub async fn remove_objects(files: &Files, id: UploadId) -> anyhow::Result<()> {
    for v in [Variant::Original, Variant::Preview, Variant::Thumbnail] {
        files.storage.delete(&key(id, v)).await?;
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_expire_on_steps_at_least_a_ttl_ahead() {
        for now in [0, 1, 599, 600, 1_700_000_123] {
            let exp = link_expiry(now);
            assert_eq!(exp % LINK_STEP, 0);
            assert!(exp - now >= LINK_TTL && exp - now <= LINK_TTL + LINK_STEP);
        }
    }

    #[test]
    fn hex_round_trips() {
        let bytes: Vec<u8> = (0..32).collect();
        assert_eq!(unhex(&hex(&bytes)), Some(bytes));
        assert_eq!(unhex("zz"), None);
    }
}
