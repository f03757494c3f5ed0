//! `heliograph-api [serve|migrate|seed-demo|secrets reencrypt]`.
//!
//! Only the command line: each command's work is in the library (`startup`,
//! `seed`, `secrets`).

use std::process::ExitCode;

use anyhow::Context;
use heliograph_api::{ApiConfig, Application, secrets, seed};
use heliograph_runtime::{Settings, init_tracing};
use heliograph_store::Store;
use secrecy::ExposeSecret;

const USAGE: &str = "usage: heliograph-api [serve|migrate|seed-demo|secrets reencrypt]";

/// Rows re-sealed per round trip of `secrets reencrypt`.
const RESEAL_BATCH: i32 = 200;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line that names the setting or step at fault.
            eprintln!("heliograph-api: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let command = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "serve".to_owned());
    let settings = Settings::from_env()?;
    match command.as_str() {
        "serve" => {
            let config = ApiConfig::from_settings(&settings)?;
            init_tracing(config.log_format);
            let app = Application::build(&config).await?;
            tracing::info!(port = app.port(), "heliograph-api listening");
            app.run_until_stopped().await.context("server failed")
        }
        "migrate" => {
            init_tracing(settings.log_format()?);
            // The schema's owner; the api and worker never connect as it.
            let url = settings.secret("MIGRATION_DATABASE_URL")?;
            Store::migrate(url.expose_secret())
                .await
                .context("MIGRATION_DATABASE_URL: failed to apply migrations")?;
            tracing::info!("migrations applied");
            Ok(())
        }
        "seed-demo" => {
            init_tracing(settings.log_format()?);
            // Through the serving role, as any signup: the demo needs no more.
            let url = settings.secret("DATABASE_URL")?;
            let store = Store::connect(url.expose_secret(), 2)
                .await
                .map_err(|err| {
                    let step = err.connect_step();
                    anyhow::Error::new(err).context(step)
                })?;
            if seed::demo(&store).await? {
                tracing::info!("demo tenant created");
            } else {
                tracing::info!("demo tenant already exists");
            }
            Ok(())
        }
        "secrets" if std::env::args().nth(2).as_deref() == Some("reencrypt") => {
            init_tracing(settings.log_format()?);
            let keyring = heliograph_api::config::secrets_keyring(&settings)?;
            let url = settings.secret("DATABASE_URL")?;
            let store = Store::connect(url.expose_secret(), 2)
                .await
                .context("DATABASE_URL: cannot connect to PostgreSQL")?;
            let report = secrets::reencrypt(&store, &keyring, RESEAL_BATCH, None).await?;
            tracing::info!(
                key.id = keyring.current_key_id(),
                resealed = report.resealed,
                unreadable = report.unreadable,
                "secrets re-sealed under the current key"
            );
            if report.unreadable > 0 {
                anyhow::bail!(
                    "{} subscriber secrets open with no key of SECRETS_KEY (see the log); \
                     keep the keys they were sealed with",
                    report.unreadable
                );
            }
            Ok(())
        }
        _ => anyhow::bail!("{USAGE}"),
    }
}
