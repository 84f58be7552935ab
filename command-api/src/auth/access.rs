//! The access rule of every route: who may call it, by method and path template.

use super::*;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    Roles(&'static [Role]),
}

/// One route and its access rule. The router, the authorisation middleware, the OpenAPI
/// document and the role tests all read this one table.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
}

const CUSTOMER: &[Role] = &[Role::Customer];
const WORKER: &[Role] = &[Role::Worker];
const CUSTOMERS_AND_WORKERS: &[Role] = &[Role::Customer, Role::Worker];
const ADMIN: &[Role] = &[Role::Admin];
const REPORT_READERS: &[Role] = &[Role::Admin, Role::Analyst];
const ANALYSTS: &[Role] = &[Role::Analyst];
const CUSTOMER_OR_ADMIN: &[Role] = &[Role::Customer, Role::Admin];
const WORKER_OR_ADMIN: &[Role] = &[Role::Worker, Role::Admin];
const SIGNED_IN: &[Role] = &[Role::Customer, Role::Worker, Role::Admin];
const EVERYONE_SIGNED_IN: &[Role] = &[Role::Customer, Role::Worker, Role::Admin, Role::Analyst];

macro_rules! route {
    ($method:ident $path:literal $access:expr) => {
        RouteSpec {
            method: Method::$method,
            path: $path,
            access: $access,
        }
    };
}

pub static ROUTES: &[RouteSpec] = &[
    route!(GET "/healthz" Access::Public),
    route!(GET "/metrics" Access::Public),
    // Admitted by the room token in its query, not by a session.
    route!(GET "/api/v1/signaling" Access::Public),
    route!(GET "/call" Access::Public),
    route!(GET "/api/v1/reports/revenue" Access::Roles(REPORT_READERS)),
    route!(GET "/api/v1/reports/orders" Access::Roles(REPORT_READERS)),
    route!(GET "/api/v1/reports/satisfaction" Access::Roles(REPORT_READERS)),
    route!(GET "/api/v1/reports/activity" Access::Roles(REPORT_READERS)),
    route!(POST "/api/v1/admin/analytics/refresh" Access::Roles(ADMIN)),
    route!(POST "/api/v1/analytics/sql" Access::Roles(ANALYSTS)),
    route!(GET "/call.js" Access::Public),
    route!(GET "/api/v1/review-tags" Access::Public),
    route!(GET "/api/v1/workers/{worker_id}/reviews" Access::Public),
    route!(GET "/api/v1/workers/{worker_id}/ratings" Access::Public),
    route!(POST "/api/v1/orders/{order_id}/review/reply" Access::Roles(WORKER)),
    route!(POST "/api/v1/admin/orders/{order_id}/review/hide" Access::Roles(ADMIN)),
    route!(GET "/api/v1/admin/logs" Access::Roles(ADMIN)),
    route!(GET "/api/v1/admin/jobs" Access::Roles(ADMIN)),
    route!(GET "/api/v1/admin/reviews" Access::Roles(ADMIN)),
    route!(GET "/readyz" Access::Public),
    route!(GET "/api/openapi.json" Access::Public),
    route!(POST "/api/v1/accounts" Access::Public),
    route!(POST "/api/v1/sessions" Access::Public),
    route!(POST "/api/v1/sessions/refresh" Access::Public),
    route!(POST "/api/v1/sessions/code" Access::Public),
    route!(POST "/api/v1/verification-codes" Access::Public),
    route!(POST "/api/v1/password-resets" Access::Public),
    route!(GET "/api/v1/oauth/providers" Access::Public),
    route!(GET "/api/v1/oauth/wechat/authorize" Access::Public),
    route!(POST "/api/v1/oauth/wechat/callback" Access::Public),
    route!(POST "/api/v1/oauth/wechat/link" Access::Roles(EVERYONE_SIGNED_IN)),
    route!(GET "/api/v1/me/linked-accounts" Access::Roles(EVERYONE_SIGNED_IN)),
    route!(DELETE "/api/v1/me/linked-accounts/{provider}" Access::Roles(EVERYONE_SIGNED_IN)),
    route!(POST "/api/v1/me/reauthentication" Access::Roles(EVERYONE_SIGNED_IN)),
    route!(POST "/api/v1/sessions/sign-out-everywhere" Access::Roles(EVERYONE_SIGNED_IN)),
    route!(GET "/api/v1/sessions" Access::Roles(EVERYONE_SIGNED_IN)),
    route!(DELETE "/api/v1/sessions/{session_id}" Access::Roles(EVERYONE_SIGNED_IN)),
    route!(POST "/api/v1/me/password" Access::Roles(EVERYONE_SIGNED_IN)),
    route!(GET "/api/v1/me" Access::Roles(EVERYONE_SIGNED_IN)),
    route!(POST "/api/v1/me/app-opens" Access::Roles(CUSTOMERS_AND_WORKERS)),
    route!(GET "/api/v1/me/security" Access::Roles(EVERYONE_SIGNED_IN)),
    route!(PUT "/api/v1/me/security" Access::Roles(EVERYONE_SIGNED_IN)),
    route!(GET "/api/v1/me/profile" Access::Roles(CUSTOMER)),
    route!(PUT "/api/v1/me/profile" Access::Roles(CUSTOMER)),
    route!(PUT "/api/v1/me/emergency-contact" Access::Roles(CUSTOMER)),
    route!(POST "/api/v1/me/addresses" Access::Roles(CUSTOMER)),
    route!(DELETE "/api/v1/me/addresses/{address_id}" Access::Roles(CUSTOMER)),
    route!(GET "/api/v1/catalogue" Access::Public),
    route!(GET "/api/v1/workers" Access::Public),
    route!(GET "/api/v1/workers/{worker_id}" Access::Public),
    route!(POST "/api/v1/worker/online" Access::Roles(WORKER)),
    route!(POST "/api/v1/worker/offline" Access::Roles(WORKER)),
    route!(POST "/api/v1/orders" Access::Roles(CUSTOMER)),
    route!(GET "/api/v1/orders" Access::Roles(SIGNED_IN)),
    route!(GET "/api/v1/live" Access::Roles(SIGNED_IN)),
    route!(GET "/api/v1/orders/{order_id}" Access::Roles(SIGNED_IN)),
    route!(POST "/api/v1/orders/{order_id}/cancel" Access::Roles(CUSTOMER_OR_ADMIN)),
    route!(POST "/api/v1/orders/{order_id}/dispute" Access::Roles(CUSTOMER_OR_ADMIN)),
    route!(POST "/api/v1/orders/{order_id}/review" Access::Roles(CUSTOMER)),
    route!(GET "/api/v1/orders/{order_id}/review" Access::Roles(SIGNED_IN)),
    route!(GET "/api/v1/orders/{order_id}/cancellation" Access::Roles(CUSTOMER_OR_ADMIN)),
    route!(POST "/api/v1/orders/{order_id}/payments" Access::Roles(ADMIN)),
    route!(POST "/api/v1/orders/{order_id}/dispatch" Access::Roles(ADMIN)),
    route!(POST "/api/v1/orders/{order_id}/assignment" Access::Roles(ADMIN)),
    route!(POST "/api/v1/orders/{order_id}/accept" Access::Roles(WORKER)),
    route!(POST "/api/v1/orders/{order_id}/decline" Access::Roles(WORKER)),
    route!(POST "/api/v1/orders/{order_id}/depart" Access::Roles(WORKER)),
    route!(POST "/api/v1/orders/{order_id}/arrive" Access::Roles(WORKER)),
    route!(POST "/api/v1/orders/{order_id}/start" Access::Roles(WORKER)),
    route!(POST "/api/v1/orders/{order_id}/finish" Access::Roles(WORKER)),
    route!(GET "/api/v1/admin/order-counts" Access::Roles(ADMIN)),
    route!(POST "/api/v1/orders/{order_id}/grab" Access::Roles(WORKER)),
    route!(POST "/api/v1/orders/{order_id}/reassign" Access::Roles(ADMIN)),
    route!(POST "/api/v1/orders/{order_id}/location" Access::Roles(WORKER)),
    route!(GET "/api/v1/orders/{order_id}/navigation" Access::Roles(WORKER_OR_ADMIN)),
    route!(GET "/api/v1/orders/{order_id}/tracking" Access::Roles(SIGNED_IN)),
    route!(GET "/api/v1/offers" Access::Roles(WORKER)),
    route!(PUT "/api/v1/worker/base" Access::Roles(WORKER)),
    route!(GET "/api/v1/me/blocked-workers" Access::Roles(CUSTOMER)),
    route!(POST "/api/v1/me/blocked-workers" Access::Roles(CUSTOMER)),
    route!(DELETE "/api/v1/me/blocked-workers/{worker_id}" Access::Roles(CUSTOMER)),
    route!(GET "/api/v1/slots" Access::Public),
    route!(GET "/api/v1/admin/dispatch/queue" Access::Roles(ADMIN)),
    route!(GET "/api/v1/admin/dispatch/rounds" Access::Roles(ADMIN)),
    route!(POST "/api/v1/admin/dispatch/run" Access::Roles(ADMIN)),
    route!(GET "/api/v1/admin/orders/{order_id}/candidates" Access::Roles(ADMIN)),
    route!(POST "/api/v1/orders/{order_id}/payment-intents" Access::Roles(CUSTOMER)),
    route!(POST "/api/v1/payments/notifications/{provider}" Access::Public),
    route!(GET "/api/v1/payments/{payment_id}" Access::Roles(CUSTOMER_OR_ADMIN)),
    route!(GET "/api/v1/admin/payment-notifications" Access::Roles(ADMIN)),
    route!(GET "/api/v1/admin/ledger" Access::Roles(ADMIN)),
    route!(GET "/api/v1/worker/income" Access::Roles(WORKER)),
    route!(GET "/api/v1/worker/me" Access::Roles(WORKER)),
    route!(POST "/api/v1/admin/payments/{payment_id}/refunds" Access::Roles(ADMIN)),
    route!(GET "/api/v1/admin/reconciliations" Access::Roles(ADMIN)),
    route!(GET "/api/v1/admin/payments" Access::Roles(ADMIN)),
    route!(PUT "/api/v1/worker/bank-account" Access::Roles(WORKER)),
    route!(POST "/api/v1/worker/withdrawals" Access::Roles(WORKER)),
    route!(GET "/api/v1/worker/withdrawals" Access::Roles(WORKER)),
    route!(GET "/api/v1/admin/withdrawals" Access::Roles(ADMIN)),
    route!(GET "/api/v1/admin/commission-rates" Access::Roles(ADMIN)),
    route!(GET "/api/v1/admin/audit/events" Access::Roles(ADMIN)),
    route!(GET "/api/v1/admin/audit/streams/{aggregate_type}/{aggregate_id}" Access::Roles(ADMIN)),
    route!(GET "/api/v1/admin/audit/streams/{aggregate_type}/{aggregate_id}/state" Access::Roles(ADMIN)),
    route!(GET "/api/v1/admin/audit/verification" Access::Roles(ADMIN)),
    route!(POST "/api/v1/admin/orders/{order_id}/resolve-dispute" Access::Roles(ADMIN)),
    route!(POST "/api/v1/admin/orders/{order_id}/reschedule" Access::Roles(ADMIN)),
    route!(GET "/api/v1/admin/order-stats" Access::Roles(ADMIN)),
    route!(GET "/api/v1/admin/dashboard" Access::Roles(ADMIN)),
    route!(POST "/api/v1/interviews" Access::Roles(CUSTOMER)),
    route!(GET "/api/v1/interviews" Access::Roles(CUSTOMERS_AND_WORKERS)),
    route!(GET "/api/v1/interviews/{interview_id}" Access::Roles(SIGNED_IN)),
    route!(POST "/api/v1/interviews/{interview_id}/accept" Access::Roles(SIGNED_IN)),
    route!(POST "/api/v1/interviews/{interview_id}/decline" Access::Roles(WORKER)),
    route!(POST "/api/v1/interviews/{interview_id}/propose" Access::Roles(SIGNED_IN)),
    route!(POST "/api/v1/interviews/{interview_id}/cancel" Access::Roles(SIGNED_IN)),
    route!(POST "/api/v1/interviews/{interview_id}/join" Access::Roles(SIGNED_IN)),
    route!(POST "/api/v1/interviews/{interview_id}/outcome" Access::Roles(CUSTOMER)),
    route!(POST "/api/v1/admin/orders/{order_id}/address" Access::Roles(ADMIN)),
    route!(POST "/api/v1/admin/orders/{order_id}/price" Access::Roles(ADMIN)),
    route!(POST "/api/v1/admin/orders/{order_id}/cancel" Access::Roles(ADMIN)),
    route!(PUT "/api/v1/admin/commission-rates/{service}/{level}" Access::Roles(ADMIN)),
    route!(POST "/api/v1/admin/withdrawals/{withdrawal_id}/approve" Access::Roles(ADMIN)),
    route!(POST "/api/v1/admin/withdrawals/{withdrawal_id}/reject" Access::Roles(ADMIN)),
    route!(GET "/api/v1/me/notifications" Access::Roles(EVERYONE_SIGNED_IN)),
    route!(POST "/api/v1/worker/identity" Access::Roles(WORKER)),
    route!(POST "/api/v1/worker/certificates" Access::Roles(WORKER)),
    route!(PUT "/api/v1/worker/profile" Access::Roles(WORKER)),
    route!(PUT "/api/v1/worker/skills" Access::Roles(WORKER)),
    route!(PUT "/api/v1/worker/availability" Access::Roles(WORKER)),
    route!(PUT "/api/v1/worker/availability/dates/{date}" Access::Roles(WORKER)),
    route!(POST "/api/v1/worker/leave" Access::Roles(WORKER)),
    route!(GET "/api/v1/workers/{worker_id}/slots" Access::Public),
    route!(GET "/api/v1/admin/workers" Access::Roles(ADMIN)),
    route!(GET "/api/v1/admin/customers" Access::Roles(ADMIN)),
    route!(GET "/api/v1/admin/customers/{customer_id}" Access::Roles(ADMIN)),
    route!(POST "/api/v1/admin/customers/{customer_id}/suspend" Access::Roles(ADMIN)),
    route!(POST "/api/v1/admin/customers/{customer_id}/reinstate" Access::Roles(ADMIN)),
    route!(PUT "/api/v1/admin/customers/{customer_id}/groups" Access::Roles(ADMIN)),
    route!(GET "/api/v1/admin/workers/{worker_id}" Access::Roles(ADMIN)),
    route!(POST "/api/v1/admin/workers/{worker_id}/background-check" Access::Roles(ADMIN)),
    route!(POST "/api/v1/admin/workers/{worker_id}/review" Access::Roles(ADMIN)),
    route!(POST "/api/v1/admin/workers/{worker_id}/certified-skills" Access::Roles(ADMIN)),
    route!(PUT "/api/v1/admin/workers/{worker_id}/level" Access::Roles(ADMIN)),
    route!(PUT "/api/v1/admin/workers/{worker_id}/groups" Access::Roles(ADMIN)),
    route!(POST "/api/v1/admin/workers/{worker_id}/suspend" Access::Roles(ADMIN)),
    route!(POST "/api/v1/admin/workers/{worker_id}/reinstate" Access::Roles(ADMIN)),
    route!(GET "/api/v1/admin/projections" Access::Roles(ADMIN)),
    route!(POST "/api/v1/admin/projections/{name}/rebuild" Access::Roles(ADMIN)),
    route!(GET "/api/v1/admin/projections/parked" Access::Roles(ADMIN)),
    route!(POST "/api/v1/admin/projections/{name}/parked/retry" Access::Roles(ADMIN)),
];

pub fn route_spec(method: &Method, path: &str) -> Option<&'static RouteSpec> {
    ROUTES
        .iter()
        .find(|spec| spec.method == method && spec.path == path)
}
