//! The API's integration tests: one binary, one module per feature. Every
//! test runs against real PostgreSQL, Redis and SMTP (see `helpers`).

#![allow(
    clippy::unwrap_used,
    reason = "a test that cannot go on should fail loudly where it stopped"
)]

mod accounts;
mod api_keys;
mod audit;
mod caddy;
mod channels;
mod conventions;
mod domains;
mod errors;
mod fuzz;
mod health;
mod helpers;
mod isolation;
mod lifecycle;
mod limits;
mod notifications;
mod openapi;
mod page_cache;
mod permissions;
mod public;
mod sessions;
mod startup;
mod status_model;
mod subscriptions;
mod team;
