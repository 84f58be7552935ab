//! Who is calling: password hashing, signed bearer tokens, and the access rule of every route.
//!
//! Access tokens are short-lived and signed with HMAC-SHA256 under a key every server process
//! reads from the database, so any process can check any token and no session store is hit.

use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::{DateTime, Utc};
use domain::{Actor, Role};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// How long an access token is valid. Short, because refresh tokens renew it.
pub const ACCESS_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);

pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| anyhow::anyhow!("hashing a password: {error}"))
}

pub fn verify_password(password: &str, stored_hash: &str) -> bool {
    PasswordHash::new(stored_hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// How much Argon2 work a process takes on: each hash holds about 19 MiB and a core for tens
/// of milliseconds, so at most `workers` run at once and at most `queue` wait for a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordLimits {
    /// `ANJIA_PASSWORD_WORKERS`: hashes at once (default: the machine's cores).
    pub workers: usize,
    /// `ANJIA_PASSWORD_QUEUE`: hashes waiting beyond those; past it a caller hears 429.
    pub queue: usize,
}

impl Default for PasswordLimits {
    fn default() -> Self {
        PasswordLimits {
            workers: std::thread::available_parallelism().map_or(2, |cores| cores.get()),
            queue: 32,
        }
    }
}

impl PasswordLimits {
    pub fn from_environment() -> anyhow::Result<Self> {
        let mut limits = PasswordLimits::default();
        for (name, slot) in [
            ("ANJIA_PASSWORD_WORKERS", &mut limits.workers),
            ("ANJIA_PASSWORD_QUEUE", &mut limits.queue),
        ] {
            if let Some(raw) = crate::server::setting(name) {
                *slot = raw
                    .trim()
                    .parse()
                    .map_err(|_| anyhow::anyhow!("{name} must be a whole number"))?;
            }
        }
        anyhow::ensure!(
            limits.workers > 0,
            "ANJIA_PASSWORD_WORKERS must be at least 1"
        );
        Ok(limits)
    }
}

/// Password hashing on a bounded pool: a burst of sign-ins waits its turn in a short queue, and
/// what does not fit is answered 429 at once, so no burst can exhaust the memory or the
/// blocking threads.
#[derive(Clone)]
pub struct PasswordPool {
    running: std::sync::Arc<tokio::sync::Semaphore>,
    admitted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    capacity: usize,
}

impl std::fmt::Debug for PasswordPool {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PasswordPool")
            .field("capacity", &self.capacity)
            .finish()
    }
}

/// Gives an admitted slot back however its holder ends (done, failed or dropped).
struct Admitted(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl PasswordPool {
    pub fn new(limits: PasswordLimits) -> Self {
        PasswordPool {
            running: std::sync::Arc::new(tokio::sync::Semaphore::new(limits.workers)),
            admitted: std::sync::Arc::default(),
            capacity: limits.workers + limits.queue,
        }
    }

    /// Runs `work` (hashing or verifying) on a blocking thread when a worker is free; answers
    /// `Busy` straight away when the pool and its queue are full.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        use std::sync::atomic::Ordering;
        let before = self.admitted.fetch_add(1, Ordering::SeqCst);
        let _slot = Admitted(self.admitted.clone());
        if before >= self.capacity {
            return Err(ApiError::Busy {
                detail: "登录请求过多，请稍后再试 / too many sign-ins are being checked; try again shortly".into(),
                retry_after_seconds: 1,
            });
        }
        let _permit = self
            .running
            .acquire()
            .await
            .map_err(|error| ApiError::Internal(error.into()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|error| ApiError::Internal(error.into()))
    }
}

/// The signing key for access tokens.
#[derive(Clone)]
pub struct TokenKey(Vec<u8>);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("TokenKey(<secret>)")
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    role: Role,
    /// The session the token belongs to; revoking the session revokes the token.
    sid: Uuid,
    exp: i64,
}

/// What a valid signature vouches for; the session must still be checked for revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub actor: Actor,
    pub session_id: Uuid,
    /// When the access token stops being valid.
    pub expires_at: DateTime<Utc>,
}

impl TokenKey {
    /// Reads the shared key, creating it on first start. Concurrent first starts agree on one.
    pub async fn load_or_create(pool: &sqlx::PgPool) -> anyhow::Result<Self> {
        Ok(TokenKey(server_secret(pool, "access_token_key").await?))
    }

    /// A keyed hash for one-time codes, separated from token signatures by its label.
    pub fn code_mac(&self, parts: &[&str]) -> Hmac<Sha256> {
        let mut mac = self.mac();
        mac.update(b"one-time-code");
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length")
    }

    pub fn issue(
        &self,
        actor: Actor,
        session_id: Uuid,
        now: DateTime<Utc>,
    ) -> (String, DateTime<Utc>) {
        let expires_at = now + ACCESS_TOKEN_TTL;
        let claims = Claims {
            sub: actor.id,
            role: actor.role,
            sid: session_id,
            exp: expires_at.timestamp(),
        };
        let encoder = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = encoder.encode(serde_json::to_vec(&claims).expect("claims serialise"));
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        let signature = encoder.encode(mac.finalize().into_bytes());
        (format!("{payload}.{signature}"), expires_at)
    }

    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Option<Verified> {
        let decoder = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (payload, signature) = token.split_once('.')?;
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        mac.verify_slice(&decoder.decode(signature).ok()?).ok()?;
        let claims: Claims = serde_json::from_slice(&decoder.decode(payload).ok()?).ok()?;
        if claims.exp <= now.timestamp() || claims.role == Role::System {
            return None;
        }
        Some(Verified {
            actor: Actor {
                id: claims.sub,
                role: claims.role,
            },
            session_id: claims.sid,
            expires_at: DateTime::from_timestamp(claims.exp, 0)?,
        })
    }
}

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

/// Customers and workers reach only their own orders: under `/api/v1/orders/{order_id}`, an
/// order that is not theirs answers 404 exactly as a missing one does, before any rule of the
/// order's state can say (with a 409 or a 403) that it exists and what state it is in. A
/// worker's order is one given to them or naming them; grabbing is open to any worker, and the
/// order's own rules answer it.
pub async fn order_scope(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let matched = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_default();
    let Some(rest) = matched.strip_prefix("/api/v1/orders/{order_id}") else {
        return next.run(request).await;
    };
    let actor = request
        .extensions()
        .get::<Caller>()
        .and_then(|caller| caller.0)
        .filter(|actor| matches!(actor.role, Role::Customer | Role::Worker));
    let order_id = request
        .uri()
        .path()
        .split('/')
        .nth(4)
        .and_then(|raw| raw.parse::<Uuid>().ok());
    let (Some(actor), Some(order_id)) = (actor, order_id) else {
        return next.run(request).await;
    };
    if actor.role == Role::Worker && rest == "/grab" {
        return next.run(request).await;
    }
    let order = match state.orders.load(order_id).await {
        Ok((order, _)) => order,
        Err(error) => return ApiError::from(error).into_response(),
    };
    let theirs = match actor.role {
        Role::Customer => order.customer_id == Some(actor.id),
        _ => order.worker_id == Some(actor.id) || order.preferred_worker == Some(actor.id),
    };
    if !theirs {
        return ApiError::not_found("订单", "order").into_response();
    }
    next.run(request).await
}

/// The caller of the current request, when there is one.
#[derive(Debug, Clone, Copy)]
pub struct Caller(pub Option<Actor>);

/// Checks the bearer token against the route's rule before the handler runs. A route missing
/// from the table is refused: access must be stated, never assumed.
pub async fn authorize(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(matched) = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
    else {
        return ApiError::not_found("路径", "route").into_response();
    };
    // axum answers HEAD with the GET handler, so HEAD follows GET's rule.
    let method = if request.method() == Method::HEAD {
        Method::GET
    } else {
        request.method().clone()
    };
    let Some(spec) = route_spec(&method, &matched) else {
        tracing::error!(route = matched, "route has no access rule");
        return ApiError::Internal(anyhow::anyhow!("route {matched} has no access rule"))
            .into_response();
    };
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let verified = bearer.and_then(|token| state.token_key.verify(token.trim(), Utc::now()));
    // A valid signature is not enough: the session may have been revoked since.
    let verified = match verified {
        Some(verified) => match session_is_live(&state.pool, verified).await {
            Ok(true) => Some(verified),
            Ok(false) => None,
            Err(error) => return ApiError::from(error).into_response(),
        },
        None => None,
    };
    if let Access::Roles(roles) = spec.access {
        let Some(verified) = verified else {
            return ApiError::Unauthenticated.into_response();
        };
        if !roles.contains(&verified.actor.role) {
            return ApiError::forbidden().into_response();
        }
    }
    if let Some(verified) = verified {
        tracing::Span::current().record("actor", tracing::field::display(verified.actor.id));
    }
    let actor = verified.map(|verified| verified.actor);
    if let Some(verified) = verified {
        request.extensions_mut().insert(verified);
    }
    request.extensions_mut().insert(Caller(actor));
    next.run(request).await
}

pub(crate) async fn session_is_live(pool: &sqlx::PgPool, verified: Verified) -> sqlx::Result<bool> {
    let live: Option<bool> = sqlx::query_scalar(
        "SELECT revoked_at IS NULL AND expires_at > now() FROM sessions WHERE session_id = $1 AND user_id = $2",
    )
    .bind(verified.session_id)
    .bind(verified.actor.id)
    .fetch_optional(pool)
    .await?;
    Ok(live.unwrap_or(false))
}

impl Caller {
    /// The signed-in actor; routes with a role rule always have one.
    pub fn actor(&self) -> Result<Actor, ApiError> {
        self.0.ok_or(ApiError::Unauthenticated)
    }
}

/// The verified token of a signed-in caller, with its session; refused with 401 otherwise.
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Verified {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Verified>()
            .copied()
            .ok_or(ApiError::Unauthenticated)
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Caller>()
            .copied()
            .unwrap_or(Caller(None)))
    }
}

pub use application::secrets::server_secret;

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TokenKey {
        TokenKey(vec![7; 32])
    }

    #[test]
    fn a_token_round_trips_until_it_expires() {
        let actor = Actor {
            id: Uuid::new_v4(),
            role: Role::Worker,
        };
        let now = Utc::now();
        let session_id = Uuid::new_v4();
        let (token, expires_at) = key().issue(actor, session_id, now);
        let verified = key().verify(&token, now).expect("verified");
        assert_eq!((verified.actor, verified.session_id), (actor, session_id));
        assert_eq!(verified.expires_at.timestamp(), expires_at.timestamp());
        assert_eq!(key().verify(&token, expires_at), None);
    }

    #[test]
    fn a_tampered_or_foreign_token_is_refused() {
        let actor = Actor {
            id: Uuid::new_v4(),
            role: Role::Customer,
        };
        let now = Utc::now();
        let session_id = Uuid::new_v4();
        let (token, _) = key().issue(actor, session_id, now);
        let (payload, signature) = token.split_once('.').expect("two parts");
        let admin_claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
            r#"{{"sub":"{}","role":"admin","sid":"{session_id}","exp":{}}}"#,
            actor.id,
            now.timestamp() + 60
        ));
        assert_eq!(
            key().verify(&format!("{admin_claims}.{signature}"), now),
            None
        );
        assert_eq!(TokenKey(vec![8; 32]).verify(&token, now), None);
        assert_eq!(key().verify(payload, now), None);
    }

    #[test]
    fn passwords_verify_only_against_their_own_hash() {
        let hash = hash_password("correct horse").expect("hashes");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
    }

    #[test]
    fn every_route_is_listed_once() {
        for (index, spec) in ROUTES.iter().enumerate() {
            let duplicates = ROUTES[index + 1..]
                .iter()
                .filter(|other| other.method == spec.method && other.path == spec.path)
                .count();
            assert_eq!(duplicates, 0, "{} {} listed twice", spec.method, spec.path);
        }
    }
}
