//! Signing in through WeChat's web login (OAuth 2.0 authorization code flow): a `state` that
//! must come back once and unexpired, the code exchanged for the person's `openid`/`unionid`
//! server to server, and the provider identity linked to an existing account.
//!
//! 1. `GET /api/v1/oauth/wechat/authorize` gives the URL to send the browser to (signed in: the
//!    flow will link WeChat to this account).
//! 2. WeChat redirects back with `code` and `state`; the page posts them to
//!    `/api/v1/oauth/wechat/callback`. A linked identity signs in; an unknown one gets a link
//!    ticket, which its owner spends at `/api/v1/oauth/wechat/link` once signed in by other means.

use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use chrono::{DateTime, Utc};
use domain::{Actor, Role};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::RequestContext;
use crate::extract::{AppJson, AppPath, AppQuery};
use crate::routes::credentials::{open_session, remove_links, SessionCreated};
use crate::state::AppState;
use crate::text::Line;
use application::identity::{IdentityProvider, IdentityRefusal};
use domain::message::Text;
use std::sync::Arc;
use utoipa_axum::{router::OpenApiRouter, routes};

const PROVIDER: &str = "wechat";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(providers))
        .routes(routes!(authorize))
        .routes(routes!(callback))
        .routes(routes!(link))
        .routes(routes!(linked_accounts))
        .routes(routes!(unlink))
}

/// How recently a session must have re-authenticated to link a sign-in provider.
const REAUTHENTICATION_WINDOW_MINUTES: i64 = 5;

/// Refuses unless the caller's session re-authenticated (password or code) within the last
/// few minutes: a stolen access token alone must not become a permanent way in.
pub(crate) async fn require_fresh_reauthentication(
    state: &AppState,
    verified: &crate::auth::Verified,
) -> Result<(), ApiError> {
    let fresh: Option<bool> = sqlx::query_scalar(
        "SELECT reauthenticated_at > now() - make_interval(mins => $3)
           FROM sessions WHERE session_id = $1 AND user_id = $2",
    )
    .bind(verified.session_id)
    .bind(verified.actor.id)
    .bind(REAUTHENTICATION_WINDOW_MINUTES as i32)
    .fetch_optional(&state.pool)
    .await?
    .flatten();
    if fresh != Some(true) {
        return Err(ApiError::Forbidden(
            Text::new("oauth.confirm-first-password-code-post").with(
                "REAUTHENTICATION_WINDOW_MINUTES",
                REAUTHENTICATION_WINDOW_MINUTES,
            ),
        ));
    }
    Ok(())
}

/// The S256 challenge of a verifier: base64url (no padding) of its SHA-256.
fn challenge_of(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Which outside sign-in providers this server has configured.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProvidersView {
    pub wechat: bool,
}

/// The outside sign-in providers configured here (anyone): the apps show a provider's button
/// only when it can work.
#[utoipa::path(get, path = "/api/v1/oauth/providers", security(()), tag = "sessions",
    responses((status = 200, body = ProvidersView)))]
pub async fn providers(State(state): State<AppState>) -> axum::Json<ProvidersView> {
    axum::Json(ProvidersView {
        wechat: state.oauth.is_some(),
    })
}

fn settings(state: &AppState) -> Result<&Arc<dyn IdentityProvider>, ApiError> {
    state
        .oauth
        .as_ref()
        .ok_or_else(|| ApiError::NotFound(Text::new("oauth.wechat-sign-not-configured")))
}

fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuthorizeView {
    /// Send the browser here.
    pub authorize_url: String,
    pub state: String,
    pub expires_at: DateTime<Utc>,
    /// True when the flow will link WeChat to the signed-in account.
    pub linking: bool,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuthorizeParams {
    /// The S256 challenge of a verifier the client keeps to itself: base64url (no padding) of
    /// the SHA-256 of it. The callback must show the verifier, so a flow started by someone
    /// else cannot be finished in this browser.
    pub code_challenge: Line<64>,
}

/// Start WeChat sign-in (or, signed in and freshly re-authenticated, linking).
#[utoipa::path(get, path = "/api/v1/oauth/wechat/authorize", security(()), tag = "sessions", params(AuthorizeParams),
    responses((status = 200, body = AuthorizeView), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
pub async fn authorize(
    State(state): State<AppState>,
    verified: Option<axum::Extension<crate::auth::Verified>>,
    AppQuery(params): AppQuery<AuthorizeParams>,
) -> Result<axum::Json<AuthorizeView>, ApiError> {
    let verified = verified.map(|axum::Extension(verified)| verified);
    let settings = settings(&state)?;
    let challenge = params.code_challenge.trim().to_owned();
    if challenge.len() != 43
        || !challenge
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ApiError::InvalidField {
            field: "code_challenge".into(),
            detail: Text::new("oauth.must-43-character-base64url-sha"),
        });
    }
    if let Some(verified) = &verified {
        require_fresh_reauthentication(&state, verified).await?;
    }
    let oauth_state = random_token();
    let expires_at = Utc::now() + chrono::Duration::minutes(10);
    let link_user = verified.map(|verified| verified.actor.id);
    sqlx::query(
        "INSERT INTO oauth_states (state, provider, link_user_id, expires_at, challenge)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&oauth_state)
    .bind(PROVIDER)
    .bind(link_user)
    .bind(expires_at)
    .bind(&challenge)
    .execute(&state.pool)
    .await?;
    Ok(axum::Json(AuthorizeView {
        authorize_url: settings.authorize_url(&oauth_state)?,
        state: oauth_state,
        expires_at,
        linking: link_user.is_some(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbackBody {
    pub code: Line<12>,
    pub state: Line<200>,
    /// The verifier whose challenge started this flow.
    pub code_verifier: Line<128>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CallbackView {
    /// `signed_in`, `linked` or `unlinked`.
    pub outcome: String,
    /// With `signed_in`.
    pub session: Option<SessionCreated>,
    /// With `unlinked`: sign in by password or code, then post it to `/api/v1/oauth/wechat/link`.
    pub link_ticket: Option<String>,
}

/// Finish WeChat sign-in: the code and state WeChat sent back.
#[utoipa::path(post, path = "/api/v1/oauth/wechat/callback", security(()), tag = "sessions", request_body = CallbackBody,
    responses((status = 200, body = CallbackView), (status = 404, description = "WeChat sign-in is not configured", body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn callback(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppJson(body): AppJson<CallbackBody>,
) -> Result<(StatusCode, axum::Json<CallbackView>), ApiError> {
    let settings = settings(&state)?;
    // The state is spent whatever happens next: a replayed callback finds it used.
    let spent: Option<(Option<uuid::Uuid>, Option<String>)> = sqlx::query_as(
        "UPDATE oauth_states SET used_at = now()
          WHERE state = $1 AND provider = $2 AND used_at IS NULL AND expires_at > now()
          RETURNING link_user_id, challenge",
    )
    .bind(&body.state)
    .bind(PROVIDER)
    .fetch_optional(&state.pool)
    .await?;
    let Some((link_user, challenge)) = spent else {
        return Err(ApiError::Invalid(Text::new(
            "oauth.state-unknown-used-expired",
        )));
    };
    // Only the client that started the flow holds the verifier: someone else's flow (an
    // attacker's link sent to a victim) cannot be finished here.
    if challenge.as_deref() != Some(challenge_of(body.code_verifier.trim()).as_str()) {
        return Err(ApiError::InvalidField {
            field: "code_verifier".into(),
            detail: Text::new("oauth.verifier-does-not-match"),
        });
    }
    let subject = settings
        .exchange_code(&body.code)
        .await
        .map_err(|refusal| match refusal {
            IdentityRefusal::BadCode => ApiError::BadCode,
            IdentityRefusal::Unavailable(cause) => ApiError::Unavailable(cause),
        })?;
    if let Some(user_id) = link_user {
        link_identity(&state, &subject, user_id).await?;
        return Ok((
            StatusCode::OK,
            axum::Json(CallbackView {
                outcome: "linked".into(),
                session: None,
                link_ticket: None,
            }),
        ));
    }
    let account: Option<(uuid::Uuid, String)> = sqlx::query_as(
        "SELECT c.user_id, c.role FROM external_identities e JOIN credentials c ON c.user_id = e.user_id
          WHERE e.provider = $1 AND e.subject = $2",
    )
    .bind(PROVIDER)
    .bind(&subject)
    .fetch_optional(&state.pool)
    .await?;
    match account {
        Some((user_id, role)) => {
            let role = Role::parse(&role)
                .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("unknown role {role}")))?;
            let session = open_session(
                &state,
                Actor { id: user_id, role },
                domain::activity::SignInMethod::Oauth,
                &context,
            )
            .await?;
            Ok((
                StatusCode::OK,
                axum::Json(CallbackView {
                    outcome: "signed_in".into(),
                    session: Some(session),
                    link_ticket: None,
                }),
            ))
        }
        None => {
            let ticket = random_token();
            sqlx::query(
                "INSERT INTO oauth_link_tickets (ticket_hash, provider, subject, expires_at) VALUES ($1, $2, $3, now() + interval '30 minutes')",
            )
            .bind(Sha256::digest(ticket.as_bytes()).to_vec())
            .bind(PROVIDER)
            .bind(&subject)
            .execute(&state.pool)
            .await?;
            Ok((
                StatusCode::OK,
                axum::Json(CallbackView {
                    outcome: "unlinked".into(),
                    session: None,
                    link_ticket: Some(ticket),
                }),
            ))
        }
    }
}

async fn link_identity(
    state: &AppState,
    subject: &str,
    user_id: uuid::Uuid,
) -> Result<(), ApiError> {
    let linked = sqlx::query(
        "INSERT INTO external_identities (provider, subject, user_id) VALUES ($1, $2, $3)
         ON CONFLICT (provider, subject) DO UPDATE SET linked_at = external_identities.linked_at
         WHERE external_identities.user_id = EXCLUDED.user_id",
    )
    .bind(PROVIDER)
    .bind(subject)
    .bind(user_id)
    .execute(&state.pool)
    .await?
    .rows_affected();
    if linked == 0 {
        return Err(ApiError::Conflict(Text::new(
            "oauth.wechat-account-linked-another-account",
        )));
    }
    Ok(())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    pub link_ticket: Line<200>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LinkView {
    pub linked: bool,
}

/// Link the WeChat identity behind a ticket to your account (signed in, and re-authenticated
/// within the last five minutes).
#[utoipa::path(post, path = "/api/v1/oauth/wechat/link", tag = "sessions", request_body = LinkBody, security(("bearer" = ["customer", "worker", "admin", "analyst"])),
    responses((status = 200, body = LinkView), (status = 404, description = "WeChat sign-in is not configured", body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn link(
    State(state): State<AppState>,
    verified: crate::auth::Verified,
    AppJson(body): AppJson<LinkBody>,
) -> Result<axum::Json<LinkView>, ApiError> {
    require_fresh_reauthentication(&state, &verified).await?;
    let actor = verified.actor;
    let subject: Option<String> = sqlx::query_scalar(
        "UPDATE oauth_link_tickets SET used_at = now()
          WHERE ticket_hash = $1 AND provider = $2 AND used_at IS NULL AND expires_at > now()
          RETURNING subject",
    )
    .bind(Sha256::digest(body.link_ticket.trim().as_bytes()).to_vec())
    .bind(PROVIDER)
    .fetch_optional(&state.pool)
    .await?;
    let subject = subject
        .ok_or_else(|| ApiError::Invalid(Text::new("oauth.link-ticket-unknown-used-expired")))?;
    link_identity(&state, &subject, actor.id).await?;
    Ok(axum::Json(LinkView { linked: true }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LinkedAccount {
    /// `wechat`.
    pub provider: String,
    pub linked_at: DateTime<Utc>,
}

/// The sign-in providers linked to your account.
#[utoipa::path(get, path = "/api/v1/me/linked-accounts", tag = "sessions", security(("bearer" = ["customer", "worker", "admin", "analyst"])),
    responses((status = 200, body = [LinkedAccount])))]
pub async fn linked_accounts(
    State(state): State<AppState>,
    verified: crate::auth::Verified,
) -> Result<axum::Json<Vec<LinkedAccount>>, ApiError> {
    let rows: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT provider, linked_at FROM external_identities WHERE user_id = $1 ORDER BY linked_at",
    )
    .bind(verified.actor.id)
    .fetch_all(&state.pool)
    .await?;
    Ok(axum::Json(
        rows.into_iter()
            .map(|(provider, linked_at)| LinkedAccount {
                provider,
                linked_at,
            })
            .collect(),
    ))
}

/// Remove a linked sign-in provider from your account.
#[utoipa::path(delete, path = "/api/v1/me/linked-accounts/{provider}", tag = "sessions", security(("bearer" = ["customer", "worker", "admin", "analyst"])),
    params(("provider" = String, Path, description = "`wechat`")),
    responses((status = 204), (status = 404, body = crate::error::Problem)))]
pub async fn unlink(
    State(state): State<AppState>,
    verified: crate::auth::Verified,
    AppPath(provider): AppPath<String>,
) -> Result<StatusCode, ApiError> {
    let removed = remove_links(&state.pool, verified.actor.id, Some(&provider)).await?;
    if removed == 0 {
        return Err(ApiError::not_found("绑定的账户", "linked account"));
    }
    Ok(StatusCode::NO_CONTENT)
}
