//! `heliograph-worker`: runs until SIGINT/SIGTERM, then finishes the jobs in hand.
//!
//! Only the process: settings, signals and logs; the run loop and the job
//! handlers are in the library.

use std::process::ExitCode;

use anyhow::Context as _;
use heliograph_runtime::{Settings, init_tracing};
use heliograph_worker::{Context, WorkerConfig, run};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    // reqwest (webhooks, SMS) is built without a TLS provider of its own and
    // panics at `Client::build()` unless one is installed process-wide.
    if rustls::crypto::ring::default_provider()
        .install_default()
        .is_err()
    {
        eprintln!("heliograph-worker: a TLS provider was already installed");
        return ExitCode::FAILURE;
    }
    match start().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("heliograph-worker: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn start() -> anyhow::Result<()> {
    let config = WorkerConfig::from_settings(&Settings::from_env()?)?;
    init_tracing(config.log_format);
    let ctx = Context::connect(&config).await?;
    let shutdown = CancellationToken::new();
    if let Some(addr) = config.metrics_addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("METRICS_ADDR: cannot listen on {addr}"))?;
        tokio::spawn(heliograph_worker::metrics::serve(
            ctx.clone(),
            listener,
            shutdown.clone(),
        ));
    }
    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: finishing the jobs in hand");
        signal.cancel();
    });
    tracing::info!(
        concurrency = config.concurrency,
        "heliograph-worker started"
    );
    run(
        ctx,
        config.concurrency,
        config.outbox_poll_interval,
        config.janitor_interval,
        shutdown,
    )
    .await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => drop(tokio::signal::ctrl_c().await),
        }
    }
    #[cfg(not(unix))]
    drop(tokio::signal::ctrl_c().await);
}
