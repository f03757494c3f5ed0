//! The team dashboard: server-rendered HTML on the platform host, for every
//! journey a tenant makes (accounts, pages and components, incidents,
//! subscribers, delivery proof, custom domains, the team, keys, the audit
//! log).
//!
//! It is the REST API's second face, not a second set of rules: each action
//! parses its form into the same inputs the `/v1` handler parses its JSON
//! into, and calls the same function (in `crate::routes`) or the same
//! domain decision and store call; each page reads through the same store
//! queries. Where the REST handler and the dashboard action would share
//! orchestration, that orchestration lives once, in the REST module, as a
//! function both call.
//!
//! What is the dashboard's own:
//! - the route table below, where each route names its REST twin, whose
//!   role it checks (the permission test walks the table against the
//!   matrix of `docs/permissions.md`);
//! - [`guard`]: the headers every dashboard answer carries (a strict CSP
//!   with no inline script, `frame-ancestors 'none'`), the form's CSRF field
//!   handed to the `Member` extractor as the API's `X-CSRF-Token`, the
//!   origin check of every form post, the renewal of a session cookie whose
//!   short-lived token expired, and errors answered as pages (a 401 becomes
//!   the sign-in page);
//! - [`frame`]: what every signed-in page shows around its content (the
//!   tenant, its pages, the navigation, the flash message);
//! - the templates in `frontend-templates/dashboard/` and their two static
//!   files (`dashboard.css`, `dashboard.js`), served from [`assets`].
//!
//! Forms work without JavaScript; `dashboard.js` only adds confirm
//! dialogs, copy buttons and live checks, and no third-party asset is ever
//! loaded.

mod accounts;
mod api_keys;
pub(crate) mod assets;
mod audit;
mod billing;
mod components;
mod domains;
pub(crate) mod form;
pub(crate) mod frame;
pub(crate) mod guard;
mod home;
mod incidents;
mod invitation;
pub(crate) mod maintenance;
mod notifications;
mod page_list;
mod page_settings;
mod postmortem;
mod sign_in;
mod subscribers;
mod team;
mod templates;

use actix_web::web;

/// Whose rule a dashboard route follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Twin {
    /// Anyone, signed in or not: sign-in, sign-up, the emailed links, assets.
    Public,
    /// Any signed-in person, whatever their role: their own account.
    Person,
    /// The REST endpoint (`METHOD`, `/v1` path) whose role the route checks.
    Api(&'static str, &'static str),
}

/// One route of the dashboard.
#[derive(Debug, Clone, Copy)]
pub struct DashboardRoute {
    /// `GET` or `POST` (forms only post).
    pub method: &'static str,
    /// The path, from the platform host's root.
    pub path: &'static str,
    /// Whose rule it follows.
    pub twin: Twin,
}

/// Declares the dashboard's routes once: [`dashboard_routes`] lists them
/// (for the tests), `register` serves them.
macro_rules! dashboard_table {
    ($($method:ident $path:literal => $handler:path, $twin:expr;)*) => {
        /// Every route of the dashboard, with its REST twin.
        #[must_use]
        pub fn dashboard_routes() -> Vec<DashboardRoute> {
            vec![$(DashboardRoute { method: stringify!($method), path: $path, twin: $twin }),*]
        }

        fn register(cfg: &mut web::ServiceConfig) {
            crate::routes::register_resources(
                cfg,
                vec![$((stringify!($method), $path, http_method!($method).to($handler))),*],
            );
        }
    };
}

use Twin::{Api, Person, Public};

dashboard_table! {
    GET "/" => home::root, Public;
    GET "/dashboard/assets/{name}" => assets::serve, Public;
    GET "/login" => sign_in::form, Public;
    POST "/login" => sign_in::submit, Public;
    POST "/logout" => sign_in::sign_out, Person;
    GET "/dashboard" => home::landing, Person;
    // Before the page routes, whose `{page_id}` would take `new`.
    GET "/dashboard/pages/new" => page_list::new, Api("POST", "/v1/pages");
    GET "/dashboard/pages/{page_id}" => home::overview, Api("GET", "/v1/pages/{page_id}");
    GET "/signup" => accounts::signup::form, Public;
    POST "/signup" => accounts::signup::submit, Public;
    GET "/signup/slug" => accounts::signup::check_slug, Public;
    GET "/account/verify-email" => accounts::links::verify_form, Public;
    POST "/account/verify-email" => accounts::links::verify, Public;
    GET "/account/forgot-password" => accounts::links::forgot_form, Public;
    POST "/account/forgot-password" => accounts::links::forgot, Public;
    GET "/account/reset-password" => accounts::links::reset_form, Public;
    POST "/account/reset-password" => accounts::links::reset, Public;
    GET "/account" => accounts::page::show, Person;
    POST "/account/verification" => accounts::page::resend, Person;
    POST "/account/password" => accounts::page::change_password, Person;
    POST "/account/sessions/end-others" => accounts::page::end_others, Person;
    POST "/account/sessions/{id}/end" => accounts::page::end_one, Person;
    POST "/account/switch" => accounts::page::switch, Person;
    GET "/dashboard/team" => team::page, Api("GET", "/v1/members");
    POST "/dashboard/team/members/{user_id}/role" => team::change_role, Api("PATCH", "/v1/members/{user_id}");
    POST "/dashboard/team/members/{user_id}/remove" => team::remove, Api("DELETE", "/v1/members/{user_id}");
    POST "/dashboard/team/invitations" => team::invite, Api("POST", "/v1/invitations");
    POST "/dashboard/team/invitations/{id}/resend" => team::resend, Api("DELETE", "/v1/invitations/{id}");
    POST "/dashboard/team/invitations/{id}/revoke" => team::revoke, Api("DELETE", "/v1/invitations/{id}");
    GET "/account/accept-invitation" => invitation::form, Public;
    POST "/account/accept-invitation" => invitation::submit, Public;
    GET "/dashboard/pages/{page_id}/subscribers" => subscribers::list, Api("GET", "/v1/pages/{page_id}/subscribers");
    GET "/dashboard/pages/{page_id}/subscribers/new" => subscribers::new, Api("POST", "/v1/pages/{page_id}/subscribers");
    POST "/dashboard/pages/{page_id}/subscribers" => subscribers::create, Api("POST", "/v1/pages/{page_id}/subscribers");
    GET "/dashboard/pages/{page_id}/subscribers/import" => subscribers::import::form, Api("POST", "/v1/pages/{page_id}/subscribers");
    POST "/dashboard/pages/{page_id}/subscribers/import" => subscribers::import::submit, Api("POST", "/v1/pages/{page_id}/subscribers");
    GET "/dashboard/pages/{page_id}/subscribers/export.csv" => subscribers::import::export, Api("GET", "/v1/pages/{page_id}/subscribers");
    POST "/dashboard/pages/{page_id}/subscribers/reactivate" => subscribers::reactivate, Api("POST", "/v1/pages/{page_id}/subscribers/reactivate");
    POST "/dashboard/pages/{page_id}/subscribers/{id}/delete" => subscribers::delete, Api("DELETE", "/v1/pages/{page_id}/subscribers/{id}");
    POST "/dashboard/pages/{page_id}/subscribers/{id}/resend_confirmation" => subscribers::resend, Api("POST", "/v1/pages/{page_id}/subscribers/{id}/resend_confirmation");
    GET "/dashboard/pages/{page_id}/incidents" => incidents::list, Api("GET", "/v1/pages/{page_id}/incidents");
    GET "/dashboard/pages/{page_id}/incidents/new" => incidents::new, Api("POST", "/v1/pages/{page_id}/incidents");
    POST "/dashboard/pages/{page_id}/incidents" => incidents::create, Api("POST", "/v1/pages/{page_id}/incidents");
    GET "/dashboard/pages/{page_id}/incidents/{id}" => incidents::page::show, Api("GET", "/v1/pages/{page_id}/incidents/{id}");
    POST "/dashboard/pages/{page_id}/incidents/{id}" => incidents::page::post_update, Api("PATCH", "/v1/pages/{page_id}/incidents/{id}");
    POST "/dashboard/pages/{page_id}/incidents/{id}/delete" => incidents::page::delete, Api("DELETE", "/v1/pages/{page_id}/incidents/{id}");
    GET "/dashboard/pages/{page_id}/incidents/{id}/incident_updates/{update_id}/edit" => incidents::page::edit_update, Api("PATCH", "/v1/pages/{page_id}/incidents/{id}/incident_updates/{update_id}");
    POST "/dashboard/pages/{page_id}/incidents/{id}/incident_updates/{update_id}" => incidents::page::save_update, Api("PATCH", "/v1/pages/{page_id}/incidents/{id}/incident_updates/{update_id}");
    GET "/dashboard/pages/{page_id}/incidents/{id}/incident_updates/{update_id}/deliveries" => incidents::proof::deliveries, Api("GET", "/v1/pages/{page_id}/incidents/{id}/incident_updates/{update_id}/deliveries");
    POST "/dashboard/pages/{page_id}/deliveries/redrive" => incidents::proof::redrive, Api("POST", "/v1/pages/{page_id}/deliveries/redrive");
    POST "/dashboard/pages/{page_id}/onboarding/dismiss" => home::dismiss_onboarding, Api("PATCH", "/v1/pages/{page_id}");
    GET "/dashboard/pages/{page_id}/components" => components::list, Api("GET", "/v1/pages/{page_id}/components");
    GET "/dashboard/pages/{page_id}/components/new" => components::new, Api("POST", "/v1/pages/{page_id}/components");
    POST "/dashboard/pages/{page_id}/components" => components::create, Api("POST", "/v1/pages/{page_id}/components");
    GET "/dashboard/pages/{page_id}/components/{id}/edit" => components::edit, Api("PATCH", "/v1/pages/{page_id}/components/{id}");
    POST "/dashboard/pages/{page_id}/components/{id}" => components::update, Api("PATCH", "/v1/pages/{page_id}/components/{id}");
    POST "/dashboard/pages/{page_id}/components/{id}/status" => components::set_status, Api("PATCH", "/v1/pages/{page_id}/components/{id}");
    POST "/dashboard/pages/{page_id}/components/{id}/position" => components::move_component, Api("PATCH", "/v1/pages/{page_id}/components/{id}");
    POST "/dashboard/pages/{page_id}/components/{id}/delete" => components::delete, Api("DELETE", "/v1/pages/{page_id}/components/{id}");
    GET "/dashboard/pages/{page_id}/component-groups/new" => components::new_group, Api("POST", "/v1/pages/{page_id}/component-groups");
    POST "/dashboard/pages/{page_id}/component-groups" => components::create_group, Api("POST", "/v1/pages/{page_id}/component-groups");
    GET "/dashboard/pages/{page_id}/component-groups/{id}/edit" => components::edit_group, Api("PATCH", "/v1/pages/{page_id}/component-groups/{id}");
    POST "/dashboard/pages/{page_id}/component-groups/{id}" => components::update_group, Api("PATCH", "/v1/pages/{page_id}/component-groups/{id}");
    POST "/dashboard/pages/{page_id}/component-groups/{id}/position" => components::move_group, Api("PATCH", "/v1/pages/{page_id}/component-groups/{id}");
    POST "/dashboard/pages/{page_id}/component-groups/{id}/delete" => components::delete_group, Api("DELETE", "/v1/pages/{page_id}/component-groups/{id}");
    GET "/dashboard/pages/{page_id}/domains" => domains::list, Api("GET", "/v1/pages/{page_id}/domains");
    POST "/dashboard/pages/{page_id}/domains" => domains::add, Api("POST", "/v1/pages/{page_id}/domains");
    GET "/dashboard/pages/{page_id}/domains/{id}" => domains::show, Api("GET", "/v1/pages/{page_id}/domains/{id}");
    GET "/dashboard/pages/{page_id}/domains/{id}/state" => domains::state_json, Api("GET", "/v1/pages/{page_id}/domains/{id}");
    POST "/dashboard/pages/{page_id}/domains/{id}/verify" => domains::verify, Api("POST", "/v1/pages/{page_id}/domains/{id}/verify");
    POST "/dashboard/pages/{page_id}/domains/{id}/delete" => domains::delete, Api("DELETE", "/v1/pages/{page_id}/domains/{id}");
    GET "/dashboard/api-keys" => api_keys::list, Api("GET", "/v1/api-keys");
    POST "/dashboard/api-keys" => api_keys::create, Api("POST", "/v1/api-keys");
    POST "/dashboard/api-keys/{id}/revoke" => api_keys::revoke, Api("DELETE", "/v1/api-keys/{id}");
    GET "/dashboard/audit-log" => audit::list, Api("GET", "/v1/audit-log");
    GET "/dashboard/billing" => billing::page, Api("GET", "/v1/billing");
    POST "/dashboard/billing/checkout" => billing::checkout, Api("POST", "/v1/billing/checkout");
    POST "/dashboard/billing/portal" => billing::portal, Api("POST", "/v1/billing/portal");
    GET "/dashboard/pages/{page_id}/maintenance" => maintenance::list, Api("GET", "/v1/pages/{page_id}/incidents");
    GET "/dashboard/pages/{page_id}/maintenance/new" => maintenance::new, Api("POST", "/v1/pages/{page_id}/incidents");
    POST "/dashboard/pages/{page_id}/maintenance" => maintenance::create, Api("POST", "/v1/pages/{page_id}/incidents");
    POST "/dashboard/pages/{page_id}/incidents/{id}/postmortem" => postmortem::save, Api("PUT", "/v1/pages/{page_id}/incidents/{id}/postmortem");
    POST "/dashboard/pages/{page_id}/incidents/{id}/postmortem/publish" => postmortem::publish, Api("PUT", "/v1/pages/{page_id}/incidents/{id}/postmortem/publish");
    POST "/dashboard/pages/{page_id}/incidents/{id}/postmortem/delete" => postmortem::delete, Api("DELETE", "/v1/pages/{page_id}/incidents/{id}/postmortem");
    GET "/dashboard/pages" => page_list::list, Api("GET", "/v1/pages");
    POST "/dashboard/pages" => page_list::create, Api("POST", "/v1/pages");
    GET "/dashboard/pages/{page_id}/settings" => page_settings::show, Api("PATCH", "/v1/pages/{page_id}");
    POST "/dashboard/pages/{page_id}/settings" => page_settings::save, Api("PATCH", "/v1/pages/{page_id}");
    GET "/dashboard/pages/{page_id}/incident_templates" => templates::list, Api("GET", "/v1/pages/{page_id}/incident_templates");
    GET "/dashboard/pages/{page_id}/incident_templates/new" => templates::new, Api("POST", "/v1/pages/{page_id}/incident_templates");
    POST "/dashboard/pages/{page_id}/incident_templates" => templates::create, Api("POST", "/v1/pages/{page_id}/incident_templates");
    GET "/dashboard/pages/{page_id}/incident_templates/{id}/edit" => templates::edit, Api("DELETE", "/v1/pages/{page_id}/incident_templates/{id}");
    POST "/dashboard/pages/{page_id}/incident_templates/{id}" => templates::update, Api("DELETE", "/v1/pages/{page_id}/incident_templates/{id}");
    POST "/dashboard/pages/{page_id}/incident_templates/{id}/delete" => templates::delete, Api("DELETE", "/v1/pages/{page_id}/incident_templates/{id}");
    GET "/dashboard/pages/{page_id}/notifications" => notifications::list, Api("GET", "/v1/pages/{page_id}/events");
}

/// The dashboard's routes, framed by [`guard`]'s middleware, on the
/// platform host only (its origin's name, or an address: never a page host
/// or a name someone else pointed at us); last of its routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("")
            .guard(actix_web::guard::fn_guard(|ctx| {
                let host = ctx
                    .head()
                    .headers()
                    .get(actix_web::http::header::HOST)
                    .and_then(|h| h.to_str().ok());
                ctx.app_data::<web::Data<crate::startup::AppState>>()
                    .zip(host)
                    .is_some_and(|(state, host)| state.urls.is_platform_host(host))
            }))
            // Innermost first: a change made here reaches the public pages
            // before the answer goes out, as one made through `/v1` does.
            .wrap(actix_web::middleware::from_fn(
                crate::routes::nudge_public_pages,
            ))
            .wrap(actix_web::middleware::from_fn(guard::form_csrf))
            .wrap(actix_web::middleware::from_fn(guard::renew_session))
            // Sees every refusal above, and the handlers'.
            .wrap(actix_web::middleware::from_fn(guard::html_errors))
            .wrap(actix_web::middleware::from_fn(guard::headers))
            .wrap(actix_web::middleware::from_fn(crate::routes::deadline))
            .configure(register)
            .default_service(web::to(crate::routes::not_found)),
    );
}
