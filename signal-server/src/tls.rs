//! TLS the server terminates itself (`--tls-cert`, `--tls-key`): rustls over the PEM
//! files, re-read when either file changes, so a renewed certificate (certbot, acme.sh)
//! takes effect without a restart and without dropping connections.

use anyhow::Context;
use axum_server::tls_rustls::RustlsConfig;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// The rustls configuration for a certificate chain and its key, both PEM files.
pub fn load(cert: &Path, key: &Path) -> anyhow::Result<Arc<ServerConfig>> {
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading the certificate {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} is not a PEM certificate chain", cert.display()))?;
    anyhow::ensure!(!chain.is_empty(), "{} holds no certificate", cert.display());
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("{} is not a PEM private key", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the certificate and the key do not belong together")?;
    // HTTP/1.1 only: the WebSocket upgrade is an HTTP/1.1 mechanism, and REST gains
    // little from HTTP/2 for an app that keeps one socket open.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The files' modification times and sizes: what "changed" means.
fn stamp(cert: &Path, key: &Path) -> Option<[(SystemTime, u64); 2]> {
    let one = |p: &Path| {
        let m = std::fs::metadata(p).ok()?;
        Some((m.modified().ok()?, m.len()))
    };
    Some([one(cert)?, one(key)?])
}

/// Checks the files every `interval` and swaps in the new certificate when they change,
/// until `shutdown`. A pair that does not load (say, the key is renewed a moment after
/// the certificate) is logged and tried again at the next check; the old one stays.
pub async fn watch(
    config: RustlsConfig,
    cert: PathBuf,
    key: PathBuf,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut loaded = stamp(&cert, &key);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = stamp(&cert, &key);
        if now.is_none() || now == loaded {
            continue;
        }
        match load(&cert, &key) {
            Ok(new) => {
                config.reload_from_config(new);
                loaded = now;
                tracing::info!(cert = %cert.display(), "TLS certificate reloaded");
            }
            Err(e) => tracing::warn!(
                error = %format!("{e:#}"),
                "the changed TLS certificate does not load; still serving the previous one"
            ),
        }
    }
}
