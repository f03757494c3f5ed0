//! Building and running the HTTP server.
//!
//! The routes are `routes`', the settings `config`'s; this module wires them
//! together with the pools, the queue and the middleware.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, middleware, web};
use anyhow::Context;
use heliograph_auth::TokenKeys;
use heliograph_domain::PublicUrls;
use heliograph_store::{PoolSettings, Store};
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
    /// How long a failing custom domain keeps routing (`DOMAIN_GRACE_DAYS`).
    pub domain_grace: time::Duration,
    /// Plans and their limits, or none (billing off).
    pub billing: heliograph_billing::Billing,
    /// Tenants' API rates, as their plans set them.
    pub api_rates: crate::plan_limits::ApiRates,
    /// How long a session lasts, however often its tokens are refreshed.
    pub session_ttl: Duration,
    /// Whether `Forwarded`/`X-Forwarded-For` name the client (behind a proxy).
    pub trust_proxy_headers: bool,
    /// Rate limits, counted in Redis.
    pub limiter: Limiter,
    /// Signs and checks account links.
    pub links: heliograph_auth::LinkSigner,
    /// Seals secrets at rest (new webhook signing secrets, Slack and Teams
    /// URLs); the API never opens them.
    pub secrets: Arc<heliograph_auth::SecretsKeyring>,
    /// The public pages, from memory.
    pub pages: Arc<PublicPages>,
    /// How long a `/v1` request may take before it is answered 503
    /// `database_unavailable` (see [`crate::config::Timeouts::request`]).
    pub request_timeout: Duration,
    /// Whether page documents are answered ahead of the middleware stack
    /// (`PAGE_FAST_PATH`).
    pub page_fast_path: bool,
}

/// A bound, not yet running, API server.
pub struct Application {
    port: u16,
    server: Server,
    /// The operators' listener (`ADMIN_ADDR`), when it has one of its own.
    admin: Option<(u16, Server)>,
    /// The public pages, for the tests that drive them directly.
    pages: Arc<PublicPages>,
    /// Stops the public pages' background readers when the server stops.
    shutdown: CancellationToken,
}

impl Application {
    /// Connects to PostgreSQL and Redis and binds the listener. Each failure
    /// names the setting at fault.
    pub async fn build(config: &ApiConfig) -> anyhow::Result<Self> {
        let serving = config.page_serving;
        let store = Store::connect_with(
            config.database_url.expose_secret(),
            PoolSettings {
                max_connections: config.database_max_connections,
                acquire_timeout: config.timeouts.database_acquire,
                statement_timeout: config.timeouts.database_statement,
                // A ping before every use: a frozen database is a 503
                // within the acquire budget, never a hung request.
                ping_after_idle: None,
                pooler: config.database_pooler,
            },
        )
        .await
        .map_err(|err| {
            let step = err.connect_step();
            anyhow::Error::new(err).context(step)
        })?;
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
                memo: config.page_memo,
                max_bytes: serving.max_bytes,
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
            limiter: Limiter::new(redis.clone(), config.timeouts.redis),
            links: heliograph_auth::LinkSigner::new(config.link_secret.clone())
                .context("LINK_SECRET: must be at least 32 bytes")?,
            secrets: Arc::clone(&config.secrets),
            redis,
            tokens,
            urls: config.urls.clone(),
            domains: config.custom_domains.clone(),
            domain_claims: config.domain_claims,
            domain_grace: config.domain_grace,
            billing: config.billing.clone(),
            api_rates: crate::plan_limits::ApiRates::default(),
            session_ttl: Duration::from_secs(config.session_ttl_hours * 3600),
            trust_proxy_headers: config.trust_proxy_headers,
            pages: Arc::clone(&pages),
            request_timeout: config.timeouts.request,
            page_fast_path: serving.fast_path,
        });
        let admin = match config.admin_addr {
            Some(addr) => Some(admin_server(addr, &state)?),
            None => None,
        };
        // Without a listener of their own, the operators' endpoints are on this one.
        let operator_routes = admin.is_none();
        let server = HttpServer::new(move || {
            App::new()
                .wrap(middleware::from_fn(crate::input::strip_json_suffix))
                .wrap(middleware::Compress::default())
                .wrap(middleware::from_fn(routes::request_id_header))
                .wrap(TracingLogger::<routes::RequestSpan>::new())
                // Outermost: a page's documents are answered before any of
                // the above runs (see `routes::public::fast_path`).
                .wrap(middleware::from_fn(routes::fast_path))
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
                .configure(|cfg| routes::configure(cfg, operator_routes))
        })
        .listen(listener)
        .context("BIND_ADDR: cannot serve")?
        .shutdown_timeout(10)
        .run();
        Ok(Self {
            port,
            server,
            admin,
            pages,
            shutdown,
        })
    }

    /// The port actually bound (useful with port 0).
    #[must_use]
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// The port of the operators' listener, when `ADMIN_ADDR` is set.
    #[must_use]
    pub fn admin_port(&self) -> Option<u16> {
        self.admin.as_ref().map(|(port, _)| *port)
    }

    /// The public pages this server answers from.
    #[must_use]
    pub fn pages(&self) -> Arc<PublicPages> {
        Arc::clone(&self.pages)
    }

    /// Serves until SIGINT/SIGTERM, then drains in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let outcome = match self.admin {
            Some((_, admin)) => {
                let (public, admin) = tokio::join!(self.server, admin);
                public.and(admin)
            }
            None => self.server.await,
        };
        self.shutdown.cancel();
        outcome
    }
}

/// The operators' listener: `/metrics`, `/internal/*` (Caddy's on-demand
/// TLS question), `/healthz` and `/readyz`; nothing else. One worker: it
/// answers a scraper and a proxy, not the internet.
fn admin_server(addr: SocketAddr, state: &web::Data<AppState>) -> anyhow::Result<(u16, Server)> {
    let listener =
        TcpListener::bind(addr).with_context(|| format!("ADMIN_ADDR: cannot listen on {addr}"))?;
    let port = listener
        .local_addr()
        .context("ADMIN_ADDR: no local address")?
        .port();
    let state = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(middleware::from_fn(routes::request_id_header))
            .wrap(TracingLogger::<routes::RequestSpan>::new())
            .app_data(state.clone())
            .configure(routes::configure_admin)
    })
    .workers(1)
    .listen(listener)
    .context("ADMIN_ADDR: cannot serve")?
    .shutdown_timeout(10)
    .run();
    Ok((port, server))
}
