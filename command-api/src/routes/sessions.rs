//! Signing in and staying signed in: sessions, rotating refresh tokens, revocation,
//! password changes, and the lock-out that answers repeated wrong passwords.
//!
//! A session is one sign-in. Its refresh tokens form a family: each refresh spends the token
//! it presents and gets a new one; presenting a spent token again means it was stolen (or the
//! client is confused), and the whole session is revoked. Access tokens name their session, so
//! revoking a session refuses its access tokens at once, in every process.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use domain::{Actor, Role};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{hash_password, verify_password, Caller, Verified};
use crate::error::ApiError;
use crate::extract::RequestContext;
use crate::extract::{AppJson, AppPath};
use crate::routes::credentials::{
    check_password, new_refresh_token, normalise_login, open_session, reserve_attempt,
    settle_attempt, Attempt, SessionCreated, SESSION_TTL,
};
use crate::state::AppState;
use crate::text::Line;
use application::commands::CommandContext;
use domain::message::Text;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sign_in, list))
        .routes(routes!(refresh))
        .routes(routes!(revoke))
        .routes(routes!(change_password))
        .routes(routes!(reauthenticate))
        .routes(routes!(sign_out_everywhere))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReauthenticationBody {
    /// Your password, or
    pub password: Option<String>,
    /// a one-time code sent to your login with the purpose `reauthenticate`.
    pub code: Option<Line<12>>,
}

/// Confirm it is you (password or one-time code) before a sensitive change such as linking a
/// sign-in provider; it holds for this session for five minutes. Wrong answers count towards
/// the lock-out as sign-ins do.
#[utoipa::path(post, path = "/api/v1/me/reauthentication", tag = "sessions", request_body = ReauthenticationBody, security(("bearer" = ["customer", "worker", "admin", "analyst"])),
    responses((status = 204), (status = 401, body = crate::error::Problem), (status = 422, body = crate::error::Problem),
              (status = 429, body = crate::error::Problem)))]
pub async fn reauthenticate(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    verified: Verified,
    AppJson(body): AppJson<ReauthenticationBody>,
) -> Result<StatusCode, ApiError> {
    match (body.password, body.code) {
        (Some(password), None) => confirm_password(&state, &context, &verified, password).await?,
        (None, Some(code)) => {
            let login: String =
                sqlx::query_scalar("SELECT login FROM credentials WHERE user_id = $1")
                    .bind(verified.actor.id)
                    .fetch_one(&state.pool)
                    .await?;
            crate::routes::credentials::consume_guarded(
                &state,
                &context,
                crate::routes::credentials::Purpose::Reauthenticate,
                &login,
                &code,
            )
            .await?;
        }
        _ => {
            return Err(ApiError::Invalid(Text::new(
                "sessions.give-either-password-code",
            )))
        }
    }
    sqlx::query("UPDATE sessions SET reauthenticated_at = now() WHERE session_id = $1")
        .bind(verified.session_id)
        .execute(&state.pool)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignOutEverywhereBody {
    /// Also remove every linked sign-in provider (WeChat), for when a device or an account
    /// may have been taken.
    #[serde(default)]
    pub remove_linked_accounts: bool,
}

/// Sign out everywhere: every session of yours is revoked, this one included, and with
/// `remove_linked_accounts` every linked sign-in provider is removed.
#[utoipa::path(post, path = "/api/v1/sessions/sign-out-everywhere", tag = "sessions", request_body = SignOutEverywhereBody, security(("bearer" = ["customer", "worker", "admin", "analyst"])),
    responses((status = 204), (status = 422, body = crate::error::Problem)))]
pub async fn sign_out_everywhere(
    State(state): State<AppState>,
    verified: Verified,
    AppJson(body): AppJson<SignOutEverywhereBody>,
) -> Result<StatusCode, ApiError> {
    let mut transaction = state.pool.begin().await?;
    sqlx::query(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = 'signed out everywhere'
          WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(verified.actor.id)
    .execute(&mut *transaction)
    .await?;
    if body.remove_linked_accounts {
        crate::routes::credentials::remove_links(&mut *transaction, verified.actor.id, None)
            .await?;
    }
    transaction.commit().await?;
    // This process serves sessions from memory: it hears the revocation before answering.
    state.fresh.catch_up(&state.pool).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInBody {
    pub login: Line<254>,
    pub password: String,
}

/// A real hash of nothing in particular, checked when the login is unknown so that timing
/// does not tell which logins exist.
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password("no such account").expect("hashing works"));

/// Checks the signed-in person's own password behind the lock-out: a stolen access token must
/// not become a way to guess it, so wrong answers count and lock out exactly as sign-ins do.
async fn confirm_password(
    state: &AppState,
    context: &CommandContext,
    verified: &Verified,
    password: String,
) -> Result<(), ApiError> {
    let (login, stored_hash): (String, String) =
        sqlx::query_as("SELECT login, password_hash FROM credentials WHERE user_id = $1")
            .bind(verified.actor.id)
            .fetch_one(&state.pool)
            .await?;
    let client_ip = context
        .client_ip
        .clone()
        .unwrap_or_else(|| "unknown".into());
    if guarded_verify(state, &login, &client_ip, password, stored_hash).await? {
        Ok(())
    } else {
        Err(ApiError::BadCredentials)
    }
}

/// Checks a password against a stored hash behind the lock-out: the attempt is reserved
/// first, the hash is checked on the bounded pool, and the attempt is settled by the outcome.
pub(crate) async fn guarded_verify(
    state: &AppState,
    login: &str,
    client_ip: &str,
    password: String,
    stored_hash: String,
) -> Result<bool, ApiError> {
    reserve_attempt(&state.pool, login, client_ip).await?;
    let checked = state
        .passwords
        .run(move || verify_password(&password, &stored_hash))
        .await;
    let attempt = match &checked {
        Ok(true) => Attempt::Succeeded,
        Ok(false) => Attempt::Failed,
        Err(_) => Attempt::Undecided,
    };
    settle_attempt(&state.pool, login, client_ip, attempt).await?;
    checked
}

/// Sign in with a login and password; returns an access token and a refresh token.
#[utoipa::path(post, path = "/api/v1/sessions", security(()), tag = "sessions", request_body = SignInBody,
    responses((status = 201, body = SessionCreated), (status = 401, body = crate::error::Problem),
              (status = 429, body = crate::error::Problem)))]
pub async fn sign_in(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppJson(body): AppJson<SignInBody>,
) -> Result<(StatusCode, axum::Json<SessionCreated>), ApiError> {
    let login = normalise_login(&body.login).map_err(|_| ApiError::BadCredentials)?;
    let client_ip = context
        .client_ip
        .clone()
        .unwrap_or_else(|| "unknown".into());
    let row: Option<(Uuid, String, String)> =
        sqlx::query_as("SELECT user_id, role, password_hash FROM credentials WHERE login = $1")
            .bind(&login)
            .fetch_optional(&state.pool)
            .await?;
    let (user_id, role, stored_hash) =
        row.unwrap_or_else(|| (Uuid::nil(), String::new(), DUMMY_HASH.clone()));
    // An unknown login is checked against a dummy hash, which never matches: it costs the
    // same and counts as the same failure.
    let matches = guarded_verify(&state, &login, &client_ip, body.password, stored_hash).await?;
    let role = Role::parse(&role).filter(|_| matches && !user_id.is_nil());
    let Some(role) = role else {
        return Err(ApiError::BadCredentials);
    };
    let session = open_session(
        &state,
        Actor { id: user_id, role },
        domain::activity::SignInMethod::Password,
        &context,
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(session)))
}

/// A refresh token's row, with its session and the holder's role.
#[derive(sqlx::FromRow)]
struct PresentedToken {
    session_id: Uuid,
    spent_at: Option<DateTime<Utc>>,
    user_id: Uuid,
    role: String,
    revoked_at: Option<DateTime<Utc>>,
    expires_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    pub refresh_token: Line<200>,
}

/// Spend a refresh token for a new access token and a new refresh token. Presenting a spent
/// refresh token revokes its whole session.
#[utoipa::path(post, path = "/api/v1/sessions/refresh", security(()), tag = "sessions", request_body = RefreshBody,
    responses((status = 201, body = SessionCreated), (status = 401, body = crate::error::Problem)))]
pub async fn refresh(
    State(state): State<AppState>,
    AppJson(body): AppJson<RefreshBody>,
) -> Result<(StatusCode, axum::Json<SessionCreated>), ApiError> {
    let presented_hash = Sha256::digest(body.refresh_token.trim().as_bytes()).to_vec();
    let mut transaction = state.pool.begin().await?;
    // Locking the token row makes two concurrent refreshes with one token take turns: the
    // second sees it spent.
    let found: Option<PresentedToken> = sqlx::query_as(
        "SELECT s.session_id, t.spent_at, s.user_id, c.role, s.revoked_at, s.expires_at
           FROM refresh_tokens t
           JOIN sessions s ON s.session_id = t.session_id
           JOIN credentials c ON c.user_id = s.user_id
          WHERE t.token_hash = $1
          FOR UPDATE OF t, s",
    )
    .bind(&presented_hash)
    .fetch_optional(&mut *transaction)
    .await?;
    let Some(PresentedToken {
        session_id,
        spent_at,
        user_id,
        role,
        revoked_at,
        expires_at,
    }) = found
    else {
        return Err(ApiError::Unauthenticated);
    };
    if spent_at.is_some() {
        sqlx::query(
            "UPDATE sessions SET revoked_at = COALESCE(revoked_at, now()), revoked_reason = COALESCE(revoked_reason, 'refresh token reused')
              WHERE session_id = $1",
        )
        .bind(session_id)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        // This process serves sessions from memory: it hears the revocation before answering.
        state.fresh.catch_up(&state.pool).await;
        tracing::warn!(session_id = %session_id, "a spent refresh token was presented; the session is revoked");
        return Err(ApiError::Unauthenticated);
    }
    let role = Role::parse(&role)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("unknown role {role}")))?;
    if revoked_at.is_some() || expires_at <= Utc::now() {
        return Err(ApiError::Unauthenticated);
    }
    let now = Utc::now();
    let refresh_expires_at = now + SESSION_TTL;
    let (refresh_token, refresh_hash) = new_refresh_token();
    sqlx::query("UPDATE refresh_tokens SET spent_at = now() WHERE token_hash = $1")
        .bind(&presented_hash)
        .execute(&mut *transaction)
        .await?;
    sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id) VALUES ($1, $2)")
        .bind(&refresh_hash)
        .bind(session_id)
        .execute(&mut *transaction)
        .await?;
    sqlx::query("UPDATE sessions SET last_used_at = now(), expires_at = $2 WHERE session_id = $1")
        .bind(session_id)
        .bind(refresh_expires_at)
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    let actor = Actor { id: user_id, role };
    let (access_token, expires_at) = state.token_key.issue(actor, session_id, now);
    Ok((
        StatusCode::CREATED,
        axum::Json(SessionCreated {
            access_token,
            token_type: "Bearer".into(),
            expires_at,
            refresh_token,
            refresh_expires_at,
            session_id,
            user_id,
            role: role.as_str().into(),
        }),
    ))
}

#[derive(Debug, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct SessionView {
    pub session_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    /// The session this request was made with.
    #[sqlx(default)]
    pub current: bool,
}

/// Your live sessions, newest first.
#[utoipa::path(get, path = "/api/v1/sessions", tag = "sessions", security(("bearer" = ["customer", "worker", "admin", "analyst"])),
    responses((status = 200, body = [SessionView]), (status = 401, body = crate::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    verified: Verified,
) -> Result<axum::Json<Vec<SessionView>>, ApiError> {
    let mut sessions: Vec<SessionView> = sqlx::query_as(
        "SELECT session_id, created_at, last_used_at, expires_at, client_ip, user_agent FROM sessions
          WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now()
          ORDER BY created_at DESC LIMIT 100",
    )
    .bind(verified.actor.id)
    .fetch_all(&state.pool)
    .await?;
    for session in &mut sessions {
        session.current = session.session_id == verified.session_id;
    }
    Ok(axum::Json(sessions))
}

/// Revoke one of your sessions (sign it out everywhere at once).
#[utoipa::path(delete, path = "/api/v1/sessions/{session_id}", tag = "sessions", security(("bearer" = ["customer", "worker", "admin", "analyst"])),
    params(("session_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 204), (status = 404, body = crate::error::Problem)))]
pub async fn revoke(
    State(state): State<AppState>,
    verified: Verified,
    AppPath(session_id): AppPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    let revoked = sqlx::query(
        "UPDATE sessions SET revoked_at = COALESCE(revoked_at, now()), revoked_reason = COALESCE(revoked_reason, 'revoked by its owner')
          WHERE session_id = $1 AND user_id = $2",
    )
    .bind(session_id)
    .bind(verified.actor.id)
    .execute(&state.pool)
    .await?
    .rows_affected();
    if revoked == 0 {
        return Err(ApiError::not_found("会话", "session"));
    }
    // This process serves sessions from memory: it hears the revocation before answering.
    state.fresh.catch_up(&state.pool).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordBody {
    pub current_password: String,
    pub new_password: String,
}

/// Change your password. Every other session is revoked; this one stays.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "sessions", request_body = ChangePasswordBody, security(("bearer" = ["customer", "worker", "admin", "analyst"])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 204), (status = 401, body = crate::error::Problem), (status = 422, body = crate::error::Problem),
              (status = 429, body = crate::error::Problem)))]
pub async fn change_password(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    verified: Verified,
    _caller: Caller,
    AppJson(body): AppJson<ChangePasswordBody>,
) -> Result<StatusCode, ApiError> {
    check_password(&body.new_password)?;
    confirm_password(&state, &context, &verified, body.current_password).await?;
    let new_password = body.new_password;
    let new_hash = state
        .passwords
        .run(move || hash_password(&new_password))
        .await??;
    let mut transaction = state.pool.begin().await?;
    sqlx::query("UPDATE credentials SET password_hash = $2 WHERE user_id = $1")
        .bind(verified.actor.id)
        .bind(new_hash)
        .execute(&mut *transaction)
        .await?;
    sqlx::query(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = 'password changed'
          WHERE user_id = $1 AND session_id <> $2 AND revoked_at IS NULL",
    )
    .bind(verified.actor.id)
    .bind(verified.session_id)
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await?;
    // This process serves sessions from memory: it hears the revocation before answering.
    state.fresh.catch_up(&state.pool).await;
    Ok(StatusCode::NO_CONTENT)
}
