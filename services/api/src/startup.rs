//! Building and running the HTTP server.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, middleware, web};
use anyhow::Context;
use heliograph_auth::TokenKeys;
use heliograph_domain::PublicUrls;
use heliograph_store::Store;
use redis::aio::ConnectionManager;
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;
use tracing_actix_web::TracingLogger;

use crate::config::ApiConfig;
use crate::limits::Limiter;
use crate::public_pages::{CacheSettings, PublicPages};
use crate::{error, routes};

/// What every handler can reach.
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Redis, for readiness now and cache invalidation later.
    pub redis: ConnectionManager,
    /// Session token keys.
    pub tokens: TokenKeys,
    /// Platform and page URLs.
    pub urls: PublicUrls,
    /// Custom domains: the CNAME target, and the names tenants cannot claim.
    pub domains: heliograph_domain::CustomDomains,
    /// How long custom domains may wait for verification, and how many per tenant.
    pub domain_claims: heliograph_domain::PendingClaims,
    /// How long a session lasts, however often its tokens are refreshed.
    pub session_ttl: Duration,
    /// Whether `Forwarded`/`X-Forwarded-For` name the client (behind a proxy).
    pub trust_proxy_headers: bool,
    /// Rate limits, counted in Redis.
    pub limiter: Limiter,
    /// Signs and checks account links.
    pub links: heliograph_auth::LinkSigner,
    /// The public pages, from memory.
    pub pages: Arc<PublicPages>,
}

/// A bound, not yet running, API server.
pub struct Application {
    port: u16,
    server: Server,
    /// Stops the public pages' background readers when the server stops.
    shutdown: CancellationToken,
}

impl Application {
    /// Connects to PostgreSQL and Redis and binds the listener. Each failure
    /// names the setting at fault.
    pub async fn build(config: &ApiConfig) -> anyhow::Result<Self> {
        let store = Store::connect(
            config.database_url.expose_secret(),
            config.database_max_connections,
        )
        .await
        .context("DATABASE_URL: cannot connect to PostgreSQL")?;
        let redis =
            heliograph_jobs::connect(config.redis_url.expose_secret(), Duration::from_secs(5))
                .await
                .context("REDIS_URL: cannot connect to Redis")?;
        let tokens = TokenKeys::new(
            &config.jwt_secret,
            config.urls.origin(),
            time::Duration::minutes(config.access_token_ttl_minutes),
        )
        .context("JWT_SECRET: unusable")?;
        let shutdown = CancellationToken::new();
        let pages = PublicPages::start(
            store.clone(),
            config.urls.clone(),
            redis::Client::open(config.redis_url.expose_secret())
                .context("REDIS_URL: not a Redis URL")?,
            redis.clone(),
            CacheSettings {
                channel: config.page_changes_channel.clone(),
                poll_interval: config.page_cache_poll,
            },
            shutdown.clone(),
        )
        .await
        .context("DATABASE_URL: cannot read the public pages")?;
        let listener = TcpListener::bind(config.bind_addr)
            .with_context(|| format!("BIND_ADDR: cannot listen on {}", config.bind_addr))?;
        let port = listener
            .local_addr()
            .context("BIND_ADDR: no local address")?
            .port();
        let state = web::Data::new(AppState {
            store,
            limiter: Limiter::new(redis.clone()),
            links: heliograph_auth::LinkSigner::new(config.link_secret.clone())
                .context("LINK_SECRET: must be at least 32 bytes")?,
            redis,
            tokens,
            urls: config.urls.clone(),
            domains: config.custom_domains.clone(),
            domain_claims: config.domain_claims,
            session_ttl: Duration::from_secs(config.session_ttl_hours * 3600),
            trust_proxy_headers: config.trust_proxy_headers,
            pages,
        });
        let server = HttpServer::new(move || {
            App::new()
                .wrap(middleware::from_fn(crate::input::strip_json_suffix))
                .wrap(middleware::Compress::default())
                .wrap(middleware::from_fn(routes::request_id_header))
                .wrap(TracingLogger::<routes::RequestSpan>::new())
                .app_data(state.clone())
                .app_data(
                    web::JsonConfig::default()
                        .limit(64 * 1024)
                        .error_handler(error::json_error),
                )
                .app_data(web::QueryConfig::default().error_handler(|err, _| {
                    error::ApiError::field(heliograph_domain::FieldError::new(
                        "query",
                        "invalid",
                        err.to_string(),
                    ))
                    .into()
                }))
                .app_data(
                    web::PathConfig::default()
                        .error_handler(|_, _| error::ApiError::NotFound.into()),
                )
                .configure(routes::configure)
        })
        .listen(listener)
        .context("BIND_ADDR: cannot serve")?
        .shutdown_timeout(10)
        .run();
        Ok(Self {
            port,
            server,
            shutdown,
        })
    }

    /// The port actually bound (useful with port 0).
    #[must_use]
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGINT/SIGTERM, then drains in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let outcome = self.server.await;
        self.shutdown.cancel();
        outcome
    }
}
