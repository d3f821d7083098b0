//! Where file bytes live: a folder under `--data-dir` (the default) or an S3-compatible
//! bucket (`--storage s3`), both through `object_store`, so reads with a byte range work
//! the same on either. Uploads are first streamed to a temporary file under the data dir
//! (see `files::receive`); putting that file is a rename on the local store, and a
//! multipart upload of 8 MiB parts read one at a time on S3, so memory stays flat.

use anyhow::Context;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::AsyncReadExt;

/// Files at most this large go to S3 in one request; larger ones as a multipart upload of
/// parts this size (S3 wants at least 5 MiB per part but the last).
const PART: usize = 8 * 1024 * 1024;

/// The configured object store.
#[derive(Debug, Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// The local store's root: puts are renames into it.
    local_root: Option<PathBuf>,
}

/// S3 settings (see `Config`).
#[derive(Debug, Clone)]
pub struct S3Settings {
    pub bucket: String,
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub allow_http: bool,
}

impl Storage {
    /// Files in `root` (created if missing).
    pub fn local(root: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root)
            .with_context(|| format!("creating the file store {}", root.display()))?;
        let root = root
            .canonicalize()
            .with_context(|| format!("resolving {}", root.display()))?;
        let store = LocalFileSystem::new_with_prefix(&root)?;
        Ok(Self {
            store: Arc::new(store),
            local_root: Some(root),
        })
    }

    /// Files in an S3-compatible bucket. Credentials not given here come from the usual
    /// `AWS_*` environment variables.
    pub fn s3(s: &S3Settings) -> anyhow::Result<Self> {
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(&s.bucket)
            .with_region(&s.region)
            .with_allow_http(s.allow_http);
        if let Some(endpoint) = &s.endpoint {
            // Path-style requests (`endpoint/bucket/key`): what self-hosted S3 servers
            // (MinIO, Garage, s3s-fs) answer without wildcard DNS.
            b = b
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false);
        }
        if let Some(key) = &s.access_key_id {
            b = b.with_access_key_id(key);
        }
        if let Some(secret) = &s.secret_access_key {
            b = b.with_secret_access_key(secret);
        }
        let store = b.build().context("configuring the S3 store")?;
        Ok(Self {
            store: Arc::new(store),
            local_root: None,
        })
    }

    /// Moves the finished temporary file `path` (`size` bytes) to `key`.
    pub async fn put_file(&self, key: &str, path: &Path, size: u64) -> anyhow::Result<()> {
        if let Some(root) = &self.local_root {
            let target = root.join(key);
            if let Some(dir) = target.parent() {
                tokio::fs::create_dir_all(dir).await?;
            }
            // The temporary folder is under the data dir, usually the same file system;
            // a copy where it is not.
            if tokio::fs::rename(path, &target).await.is_err() {
                tokio::fs::copy(path, &target).await?;
                tokio::fs::remove_file(path).await?;
            }
            return Ok(());
        }
        let location = ObjectPath::from(key);
        let mut file = tokio::fs::File::open(path).await?;
        if size <= PART as u64 {
            let mut buf = Vec::with_capacity(usize::try_from(size)?);
            file.read_to_end(&mut buf).await?;
            self.store.put(&location, PutPayload::from(buf)).await?;
        } else {
            let mut upload = self.store.put_multipart(&location).await?;
            let sent: anyhow::Result<()> = async {
                loop {
                    let mut part = Vec::with_capacity(PART);
                    let n = (&mut file).take(PART as u64).read_to_end(&mut part).await?;
                    if n == 0 {
                        break;
                    }
                    // One part in flight at a time: one part of memory per upload.
                    upload.put_part(PutPayload::from(part)).await?;
                }
                upload.complete().await?;
                Ok(())
            }
            .await;
            if let Err(e) = sent {
                let _ = upload.abort().await;
                return Err(e);
            }
        }
        tokio::fs::remove_file(path).await?;
        Ok(())
    }

    /// Stores small bytes (previews, thumbnails, avatars) at `key`.
    pub async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.store
            .put(&ObjectPath::from(key), PutPayload::from(bytes))
            .await?;
        Ok(())
    }

    /// A stream of the bytes of `key` in `range` (all of it without one).
    pub async fn get(
        &self,
        key: &str,
        range: Option<Range<u64>>,
    ) -> anyhow::Result<BoxStream<'static, object_store::Result<Bytes>>> {
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let got = self.store.get_opts(&ObjectPath::from(key), options).await?;
        Ok(got.into_stream())
    }

    /// Removes `key`; a key that is not there is no error.
    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        match self.store.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
