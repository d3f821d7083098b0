//! `upload`, `download` and the files of `chat send --attach`: streamed from and to paths
//! by confab-core's transfer calls, so memory stays flat whatever the size.

use super::messenger::print_json;
use super::{Session, sign_in};
use clap::Args;
use confab_core::api::{ApiClient, file_name};
use confab_core::connection::ConnectionError;
use shared::UploadId;
use shared::files::{ATTACHMENTS_MAX, Upload};
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

#[derive(Args, Debug)]
pub struct UploadArgs {
    #[command(flatten)]
    session: Session,
    /// The file to upload. Attach its id to a message within the hour, or the server
    /// removes it.
    file: PathBuf,
    /// The name the others see (default: the file's name).
    #[arg(long)]
    name: Option<String>,
}

#[derive(Args, Debug)]
pub struct DownloadArgs {
    #[command(flatten)]
    session: Session,
    /// An upload id (of a file I uploaded or one attached in a room I am in), or a
    /// signed link to it (`/api/files/...`, as `--json` output shows them).
    #[arg(value_name = "FILE_ID_OR_URL")]
    file: String,
    /// Where to save it; into a directory it goes under its own name (upload ids only).
    path: PathBuf,
}

/// A size for people: bytes, KiB or MiB.
pub fn size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    // Precision does not matter here: one decimal is shown.
    #[allow(clippy::cast_precision_loss)]
    let b = bytes as f64;
    if bytes < 1024 {
        format!("{bytes} B")
    } else if b < KIB * KIB {
        format!("{:.1} KiB", b / KIB)
    } else {
        format!("{:.1} MiB", b / (KIB * KIB))
    }
}

/// A token that Ctrl-C cancels, for as long as it lives. A transfer is cancelled rather
/// than dropped, so a download removes its partial file.
#[derive(Debug)]
struct CtrlC {
    token: CancellationToken,
    watch: tokio::task::JoinHandle<()>,
}

impl CtrlC {
    fn new() -> Self {
        let token = CancellationToken::new();
        let cancel = token.clone();
        let watch = tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        });
        Self { token, watch }
    }
}

impl Drop for CtrlC {
    fn drop(&mut self) {
        self.watch.abort();
    }
}

/// Uploads `path` as `name`; Ctrl-C cancels it.
async fn upload_one(api: &ApiClient, path: &Path, name: &str) -> anyhow::Result<Upload> {
    // A directory opens like a file on Unix and fails only mid-stream: say so first.
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        anyhow::bail!("{}: not a file", path.display());
    }
    let ctrl_c = CtrlC::new();
    Ok(api
        .upload_file(path, name, |_, _| {}, ctrl_c.token.clone())
        .await?)
}

/// Uploads every file for one message, in order; their ids to attach. Stops at the
/// first failure (the files already up are swept by the server after an hour).
pub async fn upload_all(api: &ApiClient, paths: &[PathBuf]) -> anyhow::Result<Vec<UploadId>> {
    if paths.len() > ATTACHMENTS_MAX {
        return Err(ConnectionError::Invalid(format!(
            "a message carries at most {ATTACHMENTS_MAX} files"
        ))
        .into());
    }
    let mut ids = Vec::with_capacity(paths.len());
    for path in paths {
        let upload = upload_one(api, path, &file_name(path)).await?;
        ids.push(upload.file.id);
    }
    Ok(ids)
}

pub async fn upload(args: UploadArgs) -> anyhow::Result<()> {
    let (api, _) = sign_in(&args.session.account).await?;
    let name = args
        .name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| file_name(&args.file));
    let upload = upload_one(&api, &args.file, &name).await?;
    if args.session.json {
        print_json(&upload)
    } else {
        println!("{}", upload.file.id);
        Ok(())
    }
}

pub async fn download(args: DownloadArgs) -> anyhow::Result<()> {
    let (api, _) = sign_in(&args.session.account).await?;
    let (link, name) = match args.file.trim().parse::<UploadId>() {
        Ok(id) => {
            let upload = api.upload(id).await?;
            (upload.links.url, Some(upload.file.name))
        }
        Err(_) => (args.file.trim().to_owned(), None),
    };
    let dest = if tokio::fs::metadata(&args.path)
        .await
        .is_ok_and(|m| m.is_dir())
    {
        match name {
            // The server's cleaned name, and only its last part: never a path.
            Some(name) => args.path.join(file_name(Path::new(&name))),
            None => anyhow::bail!(
                "{} is a directory: give the file's path (or download by upload id)",
                args.path.display()
            ),
        }
    } else {
        args.path
    };
    let ctrl_c = CtrlC::new();
    let bytes = api
        .download_to(&link, &dest, |_, _| {}, ctrl_c.token.clone())
        .await?;
    if args.session.json {
        print_json(&serde_json::json!({ "path": dest, "size": bytes }))
    } else {
        println!("{} ({})", dest.display(), size(bytes));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::size;

    #[test]
    fn sizes_read_as_people_say_them() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(25 * 1024 * 1024), "25.0 MiB");
    }
}
