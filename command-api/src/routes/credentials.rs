//! What signing in shares, whichever way a person signs in: logins and passwords, one-time codes,
//! the lock-outs that guard both, sessions and their refresh tokens, and sign-in provider links.

use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use domain::{Actor, PhoneNumber};
use hmac::Mac;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::TokenKey;
use crate::error::ApiError;
use crate::state::AppState;
use application::commands::CommandContext;
use domain::message::Text;

/// Normalises a login: e-mail addresses are compared case-insensitively, phone numbers in
/// their 11-digit form.
pub fn normalise_login(raw: &str) -> Result<String, ApiError> {
    let trimmed = raw.trim();
    if let Ok(phone) = PhoneNumber::parse(trimmed) {
        return Ok(phone.as_str().to_owned());
    }
    let looks_like_email = trimmed.len() <= 254
        && trimmed.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !trimmed.contains(char::is_whitespace);
    if !looks_like_email {
        return Err(ApiError::Invalid(Text::new(
            "credentials.login-must-e-mail-address",
        )));
    }
    Ok(trimmed.to_lowercase())
}

pub fn check_password(password: &str) -> Result<(), ApiError> {
    let length = password.chars().count();
    if !(10..=128).contains(&length) {
        return Err(ApiError::Invalid(Text::new(
            "credentials.password-must-10-128-characters",
        )));
    }
    Ok(())
}

/// How long a session lives without being refreshed.
pub const SESSION_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Failures allowed before a lock-out, per account and per client address.
const FREE_FAILURES: i32 = 5;

const FIRST_LOCK_OUT_SECONDS: i64 = 30;

/// Sign-ins one client address may have checked at once beyond its failure allowance: many
/// people share an address (an office, a mobile carrier's NAT), so right passwords are not
/// refused for arriving together, while a burst of guesses from one address stays bounded.
const ADDRESS_IN_FLIGHT: i32 = 16;

const LONGEST_LOCK_OUT_SECONDS: i64 = 60 * 60;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionCreated {
    pub access_token: String,
    pub token_type: String,
    pub expires_at: DateTime<Utc>,
    /// Spend it at `/api/v1/sessions/refresh` for a new pair; it works once.
    pub refresh_token: String,
    pub refresh_expires_at: DateTime<Utc>,
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub role: String,
}

pub(crate) fn new_refresh_token() -> (String, Vec<u8>) {
    let secret: [u8; 32] = rand::random();
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let hash = Sha256::digest(token.as_bytes()).to_vec();
    (token, hash)
}

pub(crate) async fn open_session(
    state: &AppState,
    actor: Actor,
    method: domain::activity::SignInMethod,
    context: &CommandContext,
) -> Result<SessionCreated, ApiError> {
    let session_id = Uuid::now_v7();
    let now = Utc::now();
    let refresh_expires_at = now + SESSION_TTL;
    let (refresh_token, refresh_hash) = new_refresh_token();
    let mut transaction = state.pool.begin().await?;
    sqlx::query(
        "INSERT INTO sessions (session_id, user_id, expires_at, client_ip, user_agent) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(session_id)
    .bind(actor.id)
    .bind(refresh_expires_at)
    .bind(&context.client_ip)
    .bind(&context.user_agent)
    .execute(&mut *transaction)
    .await?;
    sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id) VALUES ($1, $2)")
        .bind(&refresh_hash)
        .bind(session_id)
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    crate::routes::activity::record_sign_in(state, actor, method, context).await;
    if crate::routes::security::settings_of(state, actor.id)
        .await?
        .new_sign_in_alert
    {
        let from = context.client_ip.as_deref().unwrap_or("unknown");
        let device = context.user_agent.as_deref().unwrap_or("unknown");
        application::notifications::notify(
            &state.pool,
            application::notifications::Recipient::Person(actor.id),
            "new_sign_in",
            "新的登录 / New sign-in",
            &format!("您的账户在 {from}（{device}）登录。如非本人操作，请撤销该会话并修改密码。/ Your account signed in from {from} ({device}). If this was not you, revoke the session and change your password."),
        )
        .await?;
    }
    let (access_token, expires_at) = state.token_key.issue(actor, session_id, now);
    Ok(SessionCreated {
        access_token,
        token_type: "Bearer".into(),
        expires_at,
        refresh_token,
        refresh_expires_at,
        session_id,
        user_id: actor.id,
        role: actor.role.as_str().into(),
    })
}

/// Reserves an attempt for the login and for the client address before a password or a code
/// is checked. Five failures are free; past them each failure locks out for twice as long as
/// the one before, up to an hour, and an hour without failures starts the count again. An
/// attempt may start only while the failures so far plus the attempts being checked stay
/// under the allowance (past it, only one at a time once the lock-out has run out; an address
/// may have `ADDRESS_IN_FLIGHT` more being checked). Each scope
/// is one upsert, which takes its row's lock, so parallel attempts in any process take turns
/// and a burst of guesses cannot all pass one check.
pub(crate) async fn reserve_attempt(
    pool: &PgPool,
    login: &str,
    client_ip: &str,
) -> Result<(), ApiError> {
    for (index, (scope, subject)) in [("ip", client_ip), ("login", login)]
        .into_iter()
        .enumerate()
    {
        let reserved: Option<i32> = sqlx::query_scalar(
            "INSERT INTO sign_in_failures AS f (scope, subject, failures, in_flight, reserved_at)
             VALUES ($1, $2, 0, 1, now())
             ON CONFLICT (scope, subject) DO UPDATE
                SET in_flight = (CASE WHEN f.reserved_at < now() - interval '1 minute' THEN 0 ELSE f.in_flight END) + 1,
                    reserved_at = now()
              WHERE (f.locked_until IS NULL OR f.locked_until <= now())
                AND (CASE WHEN f.last_failure_at < now() - interval '1 hour' THEN 0 ELSE f.failures END)
                    + (CASE WHEN f.reserved_at < now() - interval '1 minute' THEN 0 ELSE f.in_flight END)
                    < GREATEST($3, (CASE WHEN f.last_failure_at < now() - interval '1 hour' THEN 0 ELSE f.failures END) + 1) + $4
             RETURNING in_flight",
        )
        .bind(scope)
        .bind(subject)
        .bind(FREE_FAILURES)
        .bind(if scope == "ip" { ADDRESS_IN_FLIGHT } else { 0 })
        .fetch_optional(pool)
        .await?;
        if reserved.is_some() {
            continue;
        }
        if index == 1 {
            // The address's reservation is not used after all.
            release(pool, "ip", client_ip).await?;
        }
        let until: Option<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT locked_until FROM sign_in_failures WHERE scope = $1 AND subject = $2",
        )
        .bind(scope)
        .bind(subject)
        .fetch_optional(pool)
        .await?
        .flatten();
        return Err(ApiError::LockedOut {
            retry_after_seconds: until.map_or(1, |until| (until - Utc::now()).num_seconds().max(1)),
        });
    }
    Ok(())
}

/// Gives back a reservation that was not judged.
async fn release(pool: &PgPool, scope: &str, subject: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE sign_in_failures SET in_flight = GREATEST(in_flight - 1, 0)
          WHERE scope = $1 AND subject = $2",
    )
    .bind(scope)
    .bind(subject)
    .execute(pool)
    .await?;
    Ok(())
}

/// How a reserved attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// The password or code was wrong: a failure for the login and the address.
    Failed,
    /// It was right: the login's count starts again.
    Succeeded,
    /// Nothing was judged (the server failed, or was too busy): it does not count.
    Undecided,
}

/// Settles an attempt `reserve_attempt` reserved.
pub(crate) async fn settle_attempt(
    pool: &PgPool,
    login: &str,
    client_ip: &str,
    attempt: Attempt,
) -> Result<(), ApiError> {
    match attempt {
        Attempt::Failed => {
            for (scope, subject) in [("login", login), ("ip", client_ip)] {
                sqlx::query(
                    "UPDATE sign_in_failures
                        SET failures = CASE WHEN last_failure_at < now() - interval '1 hour'
                                            THEN 1 ELSE failures + 1 END,
                            locked_until = CASE WHEN last_failure_at < now() - interval '1 hour' THEN NULL
                              WHEN failures + 1 >= $3
                                THEN now() + make_interval(secs => LEAST($5, $4 * power(2, failures + 1 - $3)))
                                ELSE locked_until END,
                            last_failure_at = now(),
                            in_flight = GREATEST(in_flight - 1, 0)
                      WHERE scope = $1 AND subject = $2",
                )
                .bind(scope)
                .bind(subject)
                .bind(FREE_FAILURES)
                .bind(FIRST_LOCK_OUT_SECONDS as f64)
                .bind(LONGEST_LOCK_OUT_SECONDS as f64)
                .execute(pool)
                .await?;
            }
        }
        Attempt::Succeeded => {
            sqlx::query("DELETE FROM sign_in_failures WHERE scope = 'login' AND subject = $1")
                .bind(login)
                .execute(pool)
                .await?;
            release(pool, "ip", client_ip).await?;
        }
        Attempt::Undecided => {
            release(pool, "login", login).await?;
            release(pool, "ip", client_ip).await?;
        }
    }
    Ok(())
}

pub(crate) const CODE_LIFETIME_MINUTES: i64 = 10;

pub(crate) const MAX_ATTEMPTS: i32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    Register,
    SignIn,
    ResetPassword,
    /// Confirming it is you before a sensitive change (`POST /api/v1/me/reauthentication`).
    Reauthenticate,
}

impl Purpose {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Purpose::Register => "register",
            Purpose::SignIn => "sign_in",
            Purpose::ResetPassword => "reset_password",
            Purpose::Reauthenticate => "reauthenticate",
        }
    }
}

/// Spends the newest live code for this purpose and destination if `code` matches it.
/// A wrong guess uses up one of its attempts.
pub async fn consume_code(
    pool: &PgPool,
    key: &TokenKey,
    purpose: Purpose,
    destination: &str,
    code: &str,
) -> Result<(), ApiError> {
    let mut transaction = pool.begin().await?;
    let live: Option<(Uuid, Vec<u8>, i32, DateTime<Utc>)> = sqlx::query_as(
        "SELECT code_id, code_mac, attempts, expires_at FROM verification_codes
          WHERE purpose = $1 AND destination = $2 AND consumed_at IS NULL
          ORDER BY created_at DESC LIMIT 1 FOR UPDATE",
    )
    .bind(purpose.as_str())
    .bind(destination)
    .fetch_optional(&mut *transaction)
    .await?;
    let Some((code_id, stored_mac, attempts, expires_at)) = live else {
        return Err(ApiError::BadCode);
    };
    if attempts >= MAX_ATTEMPTS || expires_at <= Utc::now() {
        return Err(ApiError::BadCode);
    }
    // `verify_slice` compares in constant time.
    let matches = key
        .code_mac(&[purpose.as_str(), destination, code.trim()])
        .verify_slice(&stored_mac)
        .is_ok();
    if matches {
        sqlx::query("UPDATE verification_codes SET consumed_at = now() WHERE code_id = $1")
            .bind(code_id)
            .execute(&mut *transaction)
            .await?;
    } else {
        sqlx::query("UPDATE verification_codes SET attempts = attempts + 1 WHERE code_id = $1")
            .bind(code_id)
            .execute(&mut *transaction)
            .await?;
    }
    transaction.commit().await?;
    if matches {
        Ok(())
    } else {
        Err(ApiError::BadCode)
    }
}

/// Spends a code as `consume_code` does, behind the sign-in lock-out: a wrong code counts as
/// a failed sign-in for the login and the client address. Returns the normalised login.
pub(crate) async fn consume_guarded(
    state: &AppState,
    context: &CommandContext,
    purpose: Purpose,
    raw_login: &str,
    code: &str,
) -> Result<String, ApiError> {
    let login = normalise_login(raw_login).map_err(|_| ApiError::BadCode)?;
    let client_ip = context
        .client_ip
        .clone()
        .unwrap_or_else(|| "unknown".into());
    reserve_attempt(&state.pool, &login, &client_ip).await?;
    let consumed = consume_code(&state.pool, &state.token_key, purpose, &login, code).await;
    let attempt = match &consumed {
        Ok(()) => Attempt::Succeeded,
        Err(ApiError::BadCode) => Attempt::Failed,
        Err(_) => Attempt::Undecided,
    };
    settle_attempt(&state.pool, &login, &client_ip, attempt).await?;
    consumed.map(|()| login)
}

/// Removes a person's links to sign-in providers (one provider's, or all); answers how many.
pub(crate) async fn remove_links<'e, E: sqlx::PgExecutor<'e>>(
    executor: E,
    user_id: uuid::Uuid,
    provider: Option<&str>,
) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "DELETE FROM external_identities WHERE user_id = $1 AND ($2::text IS NULL OR provider = $2)",
    )
    .bind(user_id)
    .bind(provider)
    .execute(executor)
    .await?
    .rows_affected())
}
