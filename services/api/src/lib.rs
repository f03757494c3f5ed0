//! The Heliograph API service: management REST API under `/v1`, the team
//! dashboard (HTML, on the platform host), the public pages (by host and
//! under `/status/<slug>/`), `/healthz` and `/readyz`.
//!
//! Handlers are thin: extract → authorize → call the store → render. Rules
//! live in `heliograph-domain`, queries in `heliograph-store`, public
//! rendering in `heliograph-web`.
//!
//! This crate holds no lifecycle rule and no SQL of its own.

mod auth;
pub mod config;
pub mod error;
mod idempotency;
mod input;
mod limits;
pub mod openapi;
mod page_scope;
mod plan_limits;
pub mod public_pages;
// Before `dashboard`, which declares its routes with `http_method!`.
#[macro_use]
mod routes;
mod dashboard;
pub mod secrets;
pub mod seed;
pub mod startup;

pub use config::{ApiConfig, PageServing, Timeouts};
pub use dashboard::{DashboardRoute, Twin, dashboard_routes};
pub use routes::{health_routes, v1_routes};
pub use startup::Application;
