//! The OpenAPI 3 document of every route, served at `/api/openapi.json`.

use axum::routing::get;
use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::notifications;
use crate::routes::{
    accounts, activity, admin, audit, availability, commission, corrections, dispatch, health,
    interviews, live, oauth, onboarding, orders, payments, profile, reports, reviews, security,
    sessions, users, verification, wallet, workers,
};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Anjia 安家 API", version = "1", description = "家政服务平台接口 / Home-services platform API. Money is in integer fen; times are UTC."),
    paths(
        health::healthz, health::readyz, health::openapi_document,
        accounts::register, accounts::me,
        sessions::sign_in, sessions::refresh, sessions::list, sessions::revoke, sessions::change_password,
        verification::request_code, verification::sign_in_with_code, verification::reset_password, accounts::list_catalogue,
        workers::list, workers::show, workers::go_online, workers::go_offline, workers::suspend, workers::reinstate,
        orders::place, orders::list, orders::show, orders::cancel, orders::dispute, orders::resolve_dispute, orders::review,
        orders::record_payment, orders::open_dispatch, orders::assign, orders::accept, orders::decline,
        orders::depart, dispatch::arrive, orders::start, orders::finish, orders::counts, orders::stats,
        dispatch::grab, dispatch::reassign, dispatch::report_location, dispatch::navigation, dispatch::tracking,
        dispatch::offers, dispatch::set_base, dispatch::list_blocked, dispatch::block_worker, dispatch::unblock_worker,
        dispatch::any_worker_slots, dispatch::queue, dispatch::rounds, dispatch::run_now, dispatch::candidates,
        payments::create_intent, payments::notification, payments::show, payments::notifications_log, payments::ledger, payments::income, payments::admin_refund, payments::reconciliations,
        wallet::set_bank_account, wallet::request_withdrawal, wallet::my_withdrawals, wallet::admin_withdrawals, wallet::approve, wallet::reject,
        commission::rates, commission::set_rate,
        corrections::reschedule, corrections::change_address, corrections::adjust_price, corrections::cancel,
        interviews::request, interviews::show, interviews::accept, interviews::decline, interviews::propose,
        interviews::cancel, interviews::join, interviews::outcome, interviews::signaling_socket, interviews::call_page, interviews::call_script,
        reviews::tags, reviews::reply, reviews::hide, reviews::list, reviews::ratings,
        audit::events, audit::stream, audit::state_as_of, audit::verification,
        activity::app_opened, reports::revenue, reports::orders, reports::satisfaction, reports::activity, reports::refresh, reports::sql,
        admin::projection_status, admin::rebuild, admin::parked, admin::retry_parked, admin::logs, crate::metrics::endpoint,
        onboarding::submit_identity, onboarding::update_profile, onboarding::set_skills, onboarding::add_certificate, onboarding::admin_view, onboarding::recheck,
        onboarding::review, onboarding::certify_skill, onboarding::set_level, onboarding::set_groups,
        notifications::list,
        oauth::authorize, oauth::callback, oauth::link, security::show, security::update,
        availability::set_plan, availability::set_day, availability::take_leave, availability::slots, live::live,
        users::search_customers, users::customer, users::suspend, users::reinstate, users::set_groups, users::search_workers,
        profile::show, profile::update, profile::set_emergency_contact, profile::add_address, profile::remove_address,
    ),
    components(schemas(crate::error::Problem)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/openapi.json",
        get(crate::routes::health::openapi_document),
    )
}
