//! Registering, signing in, the catalogue and "who am I".

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use domain::catalogue::{catalogue, ServiceCode};
use domain::customer::CustomerCommand;
use domain::worker::{ServiceArea, WorkerCommand, WorkerProfile};
use domain::{Actor, PhoneNumber, PricingUnit, Role};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{hash_password, Caller};
use crate::error::ApiError;
use crate::extract::AppJson;
use crate::extract::RequestContext;
use crate::routes::credentials::{check_password, normalise_login};
use crate::state::AppState;
use crate::text::Line;
use application::commands::CommandContext;
use domain::message::Text;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(me))
        .routes(routes!(list_catalogue))
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    Customer,
    Worker,
}

/// A worker's profile at registration.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkerProfileBody {
    #[schema(value_type = Vec<crate::schemas::Service>, example = json!(["daily_cleaning"]))]
    pub skills: Vec<ServiceCode>,
    pub years_of_experience: u8,
    #[serde(default)]
    pub languages: Vec<Line<20>>,
    pub city: Line<40>,
    pub districts: Vec<Line<40>>,
    /// Object-store key of the profile photo.
    #[serde(default)]
    pub photo_ref: Option<Line<200>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    pub kind: AccountKind,
    /// E-mail address or mobile number used to sign in.
    pub login: Line<254>,
    /// The one-time code sent to `login` (request it with purpose `register`).
    pub verification_code: Line<12>,
    pub password: String,
    pub name: Line<40>,
    /// Mainland China mobile number; defaults to `login` when that is one. Required for workers.
    pub phone: Option<Line<20>>,
    /// Required when `kind` is `worker`.
    pub worker: Option<WorkerProfileBody>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AccountCreated {
    pub user_id: Uuid,
    pub role: String,
}

/// Register a customer or worker account.
#[utoipa::path(post, path = "/api/v1/accounts", security(()), tag = "accounts", request_body = RegisterBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 201, body = AccountCreated), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn register(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppJson(body): AppJson<RegisterBody>,
) -> Result<(StatusCode, axum::Json<AccountCreated>), ApiError> {
    let login = normalise_login(&body.login)?;
    check_password(&body.password)?;
    let phone = match &body.phone {
        Some(raw) => Some(PhoneNumber::parse(raw)?),
        None => PhoneNumber::parse(&login).ok(),
    };
    let now = Utc::now();
    // A retry after a lost answer (same Idempotency-Key, same login) registers the same
    // account; the id is keyed with the server's secret, so nobody can predict it from the
    // client's key, or claim another login's id with a key of their choosing.
    let user_id = match &context.idempotency_key {
        Some(key) => {
            use hmac::Mac;
            let mac = state
                .token_key
                .code_mac(&["account-id", &login, key])
                .finalize()
                .into_bytes();
            Uuid::new_v5(&Uuid::NAMESPACE_OID, &mac)
        }
        None => Uuid::now_v7(),
    };
    // The phone number enters the log sealed under the new person's own key.
    let name = domain::PersonName::parse(&body.name)?;
    // Name and phone number enter the log sealed under the new person's own key.
    let mut plaintexts = vec![name.as_str()];
    plaintexts.extend(phone.as_ref().map(PhoneNumber::as_str));
    let mut sealed = state
        .vault
        .seal_all(user_id, &plaintexts)
        .await
        .map_err(crate::error::vault_error)?
        .into_iter();
    let name = sealed.next().expect("the name was sealed");
    let phone = sealed.next();
    let (role, command) = match (body.kind, body.worker) {
        (AccountKind::Customer, None) => (Role::Customer, None),
        (AccountKind::Customer, Some(_)) => {
            return Err(ApiError::Invalid(Text::new(
                "accounts.worker-only-worker-accounts",
            )))
        }
        (AccountKind::Worker, None) => {
            return Err(ApiError::Invalid(Text::new(
                "accounts.worker-required-worker-accounts",
            )))
        }
        (AccountKind::Worker, Some(profile)) => (
            Role::Worker,
            Some(WorkerCommand::Register {
                worker_id: user_id,
                profile: WorkerProfile {
                    name: name.clone(),
                    phone: phone.clone().ok_or_else(|| {
                        ApiError::Invalid(Text::new("accounts.workers-must-give-mobile-number"))
                    })?,
                    years_of_experience: profile.years_of_experience,
                    languages: profile.languages.into_iter().map(String::from).collect(),
                    service_area: ServiceArea {
                        city: String::from(profile.city),
                        districts: profile.districts.into_iter().map(String::from).collect(),
                    },
                    photo_ref: profile.photo_ref.map(String::from),
                }
                .validated()?,
                skills: profile.skills,
                now,
            }),
        ),
    };
    let taken: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM credentials WHERE login = $1)")
            .bind(&login)
            .fetch_one(&state.pool)
            .await?;
    if taken {
        return Err(ApiError::Conflict(Text::new(
            "accounts.login-already-registered",
        )));
    }
    // Only someone who holds the login's phone or mailbox may register it.
    crate::routes::credentials::consume_code(
        &state.pool,
        &state.token_key,
        crate::routes::credentials::Purpose::Register,
        &login,
        &body.verification_code,
    )
    .await?;
    let password_hash = {
        let password = body.password.clone();
        state
            .passwords
            .run(move || hash_password(&password))
            .await??
    };
    // The credentials row reserves the login; the profile goes to the event log. If the
    // profile is refused, the reservation is withdrawn.
    let inserted = sqlx::query(
        "INSERT INTO credentials (user_id, login, role, password_hash) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(user_id)
    .bind(&login)
    .bind(role.as_str())
    .bind(&password_hash)
    .execute(&state.pool)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(ApiError::Conflict(Text::new(
            "accounts.login-already-registered",
        )));
    }
    let context = CommandContext {
        actor: Some(Actor { id: user_id, role }),
        ..context
    };
    let outcome = match command {
        Some(worker_command) => state
            .workers
            .execute(user_id, worker_command, &context)
            .await
            .map(|_| ())
            .map_err(ApiError::from),
        None => state
            .customers
            .execute(
                user_id,
                CustomerCommand::Register {
                    customer_id: user_id,
                    name,
                    phone,
                    now,
                },
                &context,
            )
            .await
            .map(|_| ())
            .map_err(ApiError::from),
    };
    if let Err(error) = outcome {
        sqlx::query("DELETE FROM credentials WHERE user_id = $1")
            .bind(user_id)
            .execute(&state.pool)
            .await?;
        return Err(error);
    }
    Ok((
        StatusCode::CREATED,
        axum::Json(AccountCreated {
            user_id,
            role: role.as_str().to_owned(),
        }),
    ))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Me {
    pub user_id: Uuid,
    pub role: String,
    pub login: String,
}

/// The signed-in account.
#[utoipa::path(get, path = "/api/v1/me", tag = "accounts", security(("bearer" = ["customer", "worker", "admin", "analyst"])),
    responses((status = 200, body = Me), (status = 401, body = crate::error::Problem)))]
pub async fn me(State(state): State<AppState>, caller: Caller) -> Result<axum::Json<Me>, ApiError> {
    let actor = caller.actor()?;
    let login: Option<String> =
        sqlx::query_scalar("SELECT login FROM credentials WHERE user_id = $1")
            .bind(actor.id)
            .fetch_optional(&state.pool)
            .await?;
    let login = login.ok_or_else(|| ApiError::not_found("账户", "account"))?;
    let masked = match PhoneNumber::parse(&login) {
        Ok(phone) => phone.masked(),
        Err(_) => login,
    };
    Ok(axum::Json(Me {
        user_id: actor.id,
        role: actor.role.as_str().into(),
        login: masked,
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CatalogueEntry {
    pub code: String,
    pub category_zh: String,
    pub category_en: String,
    pub name_zh: String,
    pub name_en: String,
    pub description_zh: String,
    pub description_en: String,
    /// Fen.
    pub min_unit_price: i64,
    /// Fen.
    pub max_unit_price: i64,
    /// `per_hour`, `per_visit` or `per_term_26_days`.
    pub pricing_unit: String,
    pub typical_duration_minutes: u32,
    pub min_duration_minutes: u32,
    pub max_duration_minutes: u32,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CatalogueParams {
    /// Words in the Chinese or English name, category or description, e.g. 保洁 or cleaning.
    pub q: Option<Line<100>>,
    /// Services whose price range reaches at least this unit price (fen)...
    pub min_price: Option<i64>,
    /// ...and starts at or below this one (fen).
    pub max_price: Option<i64>,
    /// Services that can be booked for this many minutes.
    pub duration_minutes: Option<u32>,
    /// `per_hour`, `per_visit` or `per_term_26_days`.
    pub pricing_unit: Option<Line<20>>,
}

/// The services on offer, in Chinese and English, filtered.
#[utoipa::path(get, path = "/api/v1/catalogue", security(()), tag = "catalogue", params(CatalogueParams),
    responses((status = 200, body = [CatalogueEntry]), (status = 422, body = crate::error::Problem)))]
pub async fn list_catalogue(
    crate::extract::AppQuery(params): crate::extract::AppQuery<CatalogueParams>,
) -> Result<axum::Json<Vec<CatalogueEntry>>, ApiError> {
    if params.min_price.is_some_and(|price| price < 0)
        || params.max_price.is_some_and(|price| price < 0)
    {
        return Err(ApiError::Invalid(Text::new(
            "accounts.prices-must-not-negative",
        )));
    }
    if let Some(unit) = &params.pricing_unit {
        if !["per_hour", "per_visit", "per_term_26_days"].contains(&unit.as_str()) {
            return Err(ApiError::Invalid(
                Text::new("accounts.unknown-pricing-unit").with("unit", unit),
            ));
        }
    }
    let text = params
        .q
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(str::to_lowercase);
    let entries = list_all().into_iter().filter(|entry| {
        let text_matches = text.as_deref().is_none_or(|text| {
            [
                &entry.name_zh,
                &entry.name_en,
                &entry.category_zh,
                &entry.category_en,
                &entry.description_zh,
                &entry.description_en,
            ]
            .iter()
            .any(|field| field.to_lowercase().contains(text))
        });
        text_matches
            && params
                .min_price
                .is_none_or(|price| entry.max_unit_price >= price)
            && params
                .max_price
                .is_none_or(|price| entry.min_unit_price <= price)
            && params.duration_minutes.is_none_or(|minutes| {
                entry.min_duration_minutes <= minutes && minutes <= entry.max_duration_minutes
            })
            && params
                .pricing_unit
                .as_deref()
                .is_none_or(|unit| entry.pricing_unit == unit)
    });
    Ok(axum::Json(entries.collect()))
}

fn list_all() -> Vec<CatalogueEntry> {
    catalogue()
        .iter()
        .map(|spec| CatalogueEntry {
            code: spec.code.as_str().into(),
            category_zh: spec.category_zh.into(),
            category_en: spec.category_en.into(),
            name_zh: spec.name_zh.into(),
            name_en: spec.name_en.into(),
            description_zh: spec.description_zh.into(),
            description_en: spec.description_en.into(),
            min_unit_price: spec.min_unit_price.get(),
            max_unit_price: spec.max_unit_price.get(),
            pricing_unit: match spec.pricing_unit {
                PricingUnit::PerHour => "per_hour",
                PricingUnit::PerVisit => "per_visit",
                PricingUnit::PerTerm26Days => "per_term_26_days",
            }
            .into(),
            typical_duration_minutes: spec.typical_duration_minutes,
            min_duration_minutes: spec.min_duration_minutes,
            max_duration_minutes: spec.max_duration_minutes,
        })
        .collect()
}

/// Creates an administrator's or analyst's credentials (from the CLI; there is no public route
/// for it).
pub async fn create_staff(
    pool: &sqlx::PgPool,
    login: &str,
    password: &str,
    role: Role,
) -> anyhow::Result<Uuid> {
    anyhow::ensure!(
        matches!(role, Role::Admin | Role::Analyst),
        "staff accounts are admins or analysts"
    );
    let login = normalise_login(login).map_err(|error| anyhow::anyhow!("{error}"))?;
    check_password(password).map_err(|error| anyhow::anyhow!("{error}"))?;
    let user_id = Uuid::now_v7();
    let password_hash = hash_password(password)?;
    let inserted = sqlx::query(
        "INSERT INTO credentials (user_id, login, role, password_hash) VALUES ($1, $2, $4, $3) ON CONFLICT DO NOTHING",
    )
    .bind(user_id)
    .bind(&login)
    .bind(password_hash)
    .bind(role.as_str())
    .execute(pool)
    .await?
    .rows_affected();
    anyhow::ensure!(inserted == 1, "the login {login} is already registered");
    Ok(user_id)
}
