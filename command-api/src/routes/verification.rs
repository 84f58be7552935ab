//! One-time codes that prove a person holds a phone number or an e-mail address: sent on
//! request, six digits, valid for ten minutes, five tries, rate limited per destination and per
//! client address, compared in constant time. Registering needs one; signing in by code and
//! resetting a password use one.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use domain::{Actor, PhoneNumber, Role};
use hmac::Mac;
use rand::Rng;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::hash_password;
use crate::error::ApiError;
use crate::extract::AppJson;
use crate::extract::RequestContext;
use crate::routes::credentials::{
    check_password, consume_guarded, normalise_login, open_session, Purpose, SessionCreated,
    CODE_LIFETIME_MINUTES,
};
use crate::state::AppState;
use crate::text::Line;
use domain::message::Text;
use utoipa_axum::{router::OpenApiRouter, routes};

const RESEND_AFTER_SECONDS: i64 = 60;
const SENDS_PER_DESTINATION_PER_HOUR: i64 = 5;
const SENDS_PER_ADDRESS_PER_HOUR: i64 = 20;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request_code))
        .routes(routes!(sign_in_with_code))
        .routes(routes!(reset_password))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequestBody {
    pub purpose: Purpose,
    /// A mainland mobile number (the code goes by SMS) or an e-mail address.
    pub destination: Line<254>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CodeSent {
    /// `sms` or `email`.
    pub channel: String,
    pub expires_at: DateTime<Utc>,
    /// When another code may be requested for this destination.
    pub resend_after: DateTime<Utc>,
}

fn code_message(code: &str) -> (String, String) {
    (
        "安家验证码 / Anjia verification code".to_owned(),
        format!(
            "【安家】您的验证码是 {code}，{CODE_LIFETIME_MINUTES} 分钟内有效。如非本人操作，请忽略。\n\
             Your Anjia code is {code}. It is valid for {CODE_LIFETIME_MINUTES} minutes. If you did not ask for it, ignore this message."
        ),
    )
}

/// Refuses a send when the destination or the client address has had too many. Runs inside
/// the transaction that records the send, after `lock_send_quota`, so parallel requests cannot
/// all pass the same check.
async fn check_send_limits(
    pool: &mut sqlx::PgConnection,
    destination: &str,
    client_ip: &str,
) -> Result<(), ApiError> {
    let (latest, last_hour): (Option<DateTime<Utc>>, i64) = sqlx::query_as(
        "SELECT MAX(created_at), COUNT(*) FILTER (WHERE created_at > now() - interval '1 hour')
           FROM verification_codes WHERE destination = $1",
    )
    .bind(destination)
    .fetch_one(&mut *pool)
    .await?;
    if let Some(latest) = latest {
        let wait = RESEND_AFTER_SECONDS - (Utc::now() - latest).num_seconds();
        if wait > 0 {
            return Err(ApiError::CodeSendLimited {
                detail: Text::new("verification.sent-recently").with("wait", wait),
                retry_after_seconds: wait,
            });
        }
    }
    if last_hour >= SENDS_PER_DESTINATION_PER_HOUR {
        return Err(ApiError::CodeSendLimited {
            detail: Text::new("verification.destination-hourly-limit")
                .with("max", SENDS_PER_DESTINATION_PER_HOUR),
            retry_after_seconds: 3600,
        });
    }
    let from_address: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM verification_codes WHERE client_ip = $1 AND created_at > now() - interval '1 hour'",
    )
    .bind(client_ip)
    .fetch_one(&mut *pool)
    .await?;
    if from_address >= SENDS_PER_ADDRESS_PER_HOUR {
        return Err(ApiError::CodeSendLimited {
            detail: Text::new("verification.address-hourly-limit")
                .with("max", SENDS_PER_ADDRESS_PER_HOUR),
            retry_after_seconds: 3600,
        });
    }
    Ok(())
}

/// Send a one-time code to a phone number or e-mail address. The answer is the same whether or
/// not an account exists there.
#[utoipa::path(post, path = "/api/v1/verification-codes", security(()), tag = "sessions", request_body = CodeRequestBody,
    responses((status = 202, body = CodeSent), (status = 422, body = crate::error::Problem), (status = 429, body = crate::error::Problem)))]
pub async fn request_code(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppJson(body): AppJson<CodeRequestBody>,
) -> Result<(StatusCode, axum::Json<CodeSent>), ApiError> {
    let destination = normalise_login(&body.destination)?;
    let by_sms = PhoneNumber::parse(&destination).is_ok();
    let client_ip = context
        .client_ip
        .clone()
        .unwrap_or_else(|| "unknown".into());
    // The quota is reserved atomically: the destination's and the address's locks are taken
    // (always in that order, so two requests never wait on each other in a cycle), the limits
    // checked and the send recorded in one transaction, in whichever process.
    let mut transaction = state.pool.begin().await?;
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended('code-destination:' || $1, 0)),
                pg_advisory_xact_lock(hashtextextended('code-address:' || $2, 0))",
    )
    .bind(&destination)
    .bind(&client_ip)
    .execute(&mut *transaction)
    .await?;
    check_send_limits(&mut transaction, &destination, &client_ip).await?;
    let code = format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32));
    let code_mac = state
        .token_key
        .code_mac(&[body.purpose.as_str(), &destination, &code])
        .finalize()
        .into_bytes()
        .to_vec();
    let now = Utc::now();
    let expires_at = now + chrono::Duration::minutes(CODE_LIFETIME_MINUTES);
    sqlx::query(
        "INSERT INTO verification_codes (code_id, purpose, destination, code_mac, expires_at, client_ip)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(Uuid::now_v7())
    .bind(body.purpose.as_str())
    .bind(&destination)
    .bind(&code_mac)
    .bind(expires_at)
    .bind(&client_ip)
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await?;
    // Signing in and resetting need an account; say nothing about whether there is one.
    let account: Option<Uuid> =
        sqlx::query_scalar("SELECT user_id FROM credentials WHERE login = $1")
            .bind(&destination)
            .fetch_optional(&state.pool)
            .await?;
    // Nothing is sent for a sign-in the account has switched off; the answer stays the same.
    let may_send = match (body.purpose, account) {
        (Purpose::Register, _) => true,
        (Purpose::SignIn, Some(user_id)) => {
            crate::routes::security::settings_of(&state, user_id)
                .await?
                .sign_in_by_code
        }
        (Purpose::ResetPassword | Purpose::Reauthenticate, Some(_)) => true,
        (_, None) => false,
    };
    if may_send {
        let (subject, text) = code_message(&code);
        application::commands::flush().await?;
        let sent = if by_sms {
            state.notifier.sms.send(&destination, &text).await
        } else {
            state
                .notifier
                .email
                .send(&destination, &subject, &text)
                .await
        };
        sent.map_err(|error| ApiError::Unavailable(error.context("sending a verification code")))?;
    }
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(CodeSent {
            channel: if by_sms { "sms" } else { "email" }.into(),
            expires_at,
            resend_after: now + chrono::Duration::seconds(RESEND_AFTER_SECONDS),
        }),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeSignInBody {
    pub login: Line<254>,
    pub code: Line<12>,
}

/// Sign in with a one-time code sent to the account's phone number or e-mail address.
#[utoipa::path(post, path = "/api/v1/sessions/code", security(()), tag = "sessions", request_body = CodeSignInBody,
    responses((status = 201, body = SessionCreated), (status = 422, body = crate::error::Problem), (status = 429, body = crate::error::Problem)))]
pub async fn sign_in_with_code(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppJson(body): AppJson<CodeSignInBody>,
) -> Result<(StatusCode, axum::Json<SessionCreated>), ApiError> {
    let login = consume_guarded(&state, &context, Purpose::SignIn, &body.login, &body.code).await?;
    let account: Option<(Uuid, String)> =
        sqlx::query_as("SELECT user_id, role FROM credentials WHERE login = $1")
            .bind(&login)
            .fetch_optional(&state.pool)
            .await?;
    let (user_id, role) = account.ok_or(ApiError::BadCode)?;
    if !crate::routes::security::settings_of(&state, user_id)
        .await?
        .sign_in_by_code
    {
        return Err(ApiError::BadCode);
    }
    let role = Role::parse(&role)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("unknown role {role}")))?;
    let session = open_session(
        &state,
        Actor { id: user_id, role },
        domain::activity::SignInMethod::Code,
        &context,
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(session)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    pub login: Line<254>,
    pub code: Line<12>,
    pub new_password: String,
}

/// Set a new password with a code; every session of the account is revoked and every linked
/// sign-in provider removed.
#[utoipa::path(post, path = "/api/v1/password-resets", security(()), tag = "sessions", request_body = ResetBody,
    responses((status = 204), (status = 422, body = crate::error::Problem), (status = 429, body = crate::error::Problem)))]
pub async fn reset_password(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppJson(body): AppJson<ResetBody>,
) -> Result<StatusCode, ApiError> {
    check_password(&body.new_password)?;
    let login = consume_guarded(
        &state,
        &context,
        Purpose::ResetPassword,
        &body.login,
        &body.code,
    )
    .await?;
    let new_password = body.new_password;
    let new_hash = state
        .passwords
        .run(move || hash_password(&new_password))
        .await??;
    let mut transaction = state.pool.begin().await?;
    let updated =
        sqlx::query("UPDATE credentials SET password_hash = $2 WHERE login = $1 RETURNING user_id")
            .bind(&login)
            .bind(new_hash)
            .fetch_optional(&mut *transaction)
            .await?;
    let Some(row) = updated else {
        return Err(ApiError::BadCode);
    };
    let user_id: Uuid = sqlx::Row::try_get(&row, "user_id")?;
    sqlx::query(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = 'password reset' WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .execute(&mut *transaction)
    .await?;
    // Whoever reset the password holds the login's phone or mailbox: a sign-in provider linked
    // by someone else (with a stolen session) goes with the old password.
    crate::routes::credentials::remove_links(&mut *transaction, user_id, None).await?;
    transaction.commit().await?;
    // This process serves sessions from memory: it hears the revocation before answering.
    state.fresh.catch_up(&state.pool).await;
    Ok(StatusCode::NO_CONTENT)
}
