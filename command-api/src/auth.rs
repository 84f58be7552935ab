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

mod access;
mod passwords;

pub use self::access::*;
pub use self::passwords::*;

/// How long an access token is valid. Short, because refresh tokens renew it.
pub const ACCESS_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);

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
