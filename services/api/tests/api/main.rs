//! The API's integration tests: one binary, one module per feature. Every
//! test runs against real PostgreSQL, Redis and SMTP (see `helpers`).

#![allow(
    clippy::unwrap_used,
    reason = "a test that cannot go on should fail loudly where it stopped"
)]

mod abuse;
mod accounts;
mod api_keys;
mod audit;
mod background_jobs;
mod billing;
mod caddy;
mod channels;
mod conventions;
mod dashboard;
mod dashboard_accounts;
mod dashboard_domains;
mod dashboard_incidents;
mod dashboard_journey;
mod dashboard_maintenance;
mod dashboard_pages;
mod dashboard_settings;
mod dashboard_subscribers;
mod dashboard_team;
mod dashboard_templates;
mod database_roles;
mod domain_claims;
mod domains;
mod emails_look;
mod errors;
mod frozen;
mod fuzz;
mod health;
mod helpers;
mod isolation;
mod layers;
mod lifecycle;
mod limits;
mod logs;
mod notifications;
mod openapi;
mod page_budget;
mod page_cache;
mod page_fast_path;
mod page_history;
mod page_memory;
mod page_scope;
mod permissions;
mod pgbouncer;
mod plan_limits;
mod public;
mod public_browser;
mod secrets_at_rest;
mod sessions;
mod startup;
mod status_model;
mod store_pool;
mod subscriptions;
mod team;
