//! `confab-server`: configuration -> database -> serve, until SIGTERM or Ctrl-C; or one of
//! the operator's commands (`confab-server admin ...`).

use clap::Parser;
use signal_server::Server;
use signal_server::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

/// mimalloc returns freed memory to the system. With glibc's allocator, each Argon2 hash
/// (19 MiB, on a blocking-pool thread) left its buffer in a per-thread arena: after a few
/// hundred logins the idle server held over a gigabyte.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if let Some(command) = &config.command {
        // A command's output is stdout, for scripts; its log goes to stderr.
        tracing_subscriber::fmt()
            .with_env_filter(
                EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
            )
            .with_writer(std::io::stderr)
            .init();
        return signal_server::admin::run(&config, command).await;
    }
    match config.log_format {
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
    }
    let mut server = Server::start(config).await?;
    tokio::select! {
        result = server.wait() => return result,
        () = shutdown_signal() => tracing::info!("shutting down"),
    }
    server.shutdown().await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
