//! Workers' bank accounts and withdrawals, and the admins' review of withdrawals.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::wallet::{
    BankAccount, Wallet, WalletCommand, WalletError, WithdrawalChecks, WithdrawalRisk,
};
use domain::worker::Worker;
use domain::Fen;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::RequestContext;
use crate::extract::{AppJson, AppPath, AppQuery};
use crate::state::AppState;
use crate::text::{Line, Paragraph};
use domain::message::Text;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(set_bank_account))
        .routes(routes!(request_withdrawal, my_withdrawals))
        .routes(routes!(admin_withdrawals))
        .routes(routes!(approve))
        .routes(routes!(reject))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BankAccountBody {
    /// Must be the worker's verified name.
    pub holder_name: Line<40>,
    pub bank: Line<40>,
    /// 12 to 19 digits.
    pub number: Line<40>,
}

/// Set the bank account withdrawals are paid to (workers). The number is sealed under the
/// worker's own key; only its last four digits are shown.
#[utoipa::path(put, path = "/api/v1/worker/bank-account", tag = "wallet", request_body = BankAccountBody, security(("bearer" = ["worker"])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 204), (status = 422, body = crate::error::Problem)))]
pub async fn set_bank_account(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppJson(body): AppJson<BankAccountBody>,
) -> Result<StatusCode, ApiError> {
    let worker_id = context.actor.ok_or(ApiError::Unauthenticated)?.id;
    let digits: String = body.number.chars().filter(|c| !c.is_whitespace()).collect();
    if !(12..=19).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(ApiError::Invalid(Text::new(
            "wallet.card-number-12-19-digits",
        )));
    }
    let holder_name = domain::values::required_text("开户名 holder name", &body.holder_name, 40)?;
    let bank = domain::values::required_text("开户行 bank", &body.bank, 60)?;
    // The number and the holder's name are sealed under the worker's own key.
    let mut sealed = state
        .vault
        .seal_all(worker_id, &[&digits, &holder_name])
        .await
        .map_err(crate::error::vault_error)?
        .into_iter();
    let number = sealed.next().expect("sealed");
    let holder_name = sealed.next().expect("sealed");
    let masked = format!("{} **** **** {}", &digits[..4], &digits[digits.len() - 4..]);
    let command = WalletCommand::SetBankAccount {
        worker_id,
        account: BankAccount {
            holder_name,
            bank,
            number,
            masked,
        },
        now: context.occurred_at,
    };
    state
        .wallets
        .execute_deciding_again(worker_id, command, &context)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalBody {
    /// Fen.
    pub amount: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WithdrawalView {
    pub withdrawal_id: Uuid,
    pub worker_id: Uuid,
    /// Fen.
    pub amount: i64,
    /// `requested`, `approved`, `rejected`, `paid` or `failed`.
    pub status: String,
    pub requested_at: DateTime<Utc>,
}

/// Ask to withdraw available income to your bank account (workers). Checked first: minimum and
/// daily maximum, how many requests today, the account holder against your verified name, the
/// account's age, and open disputes. The amount is reserved at once.
#[utoipa::path(post, path = "/api/v1/worker/withdrawals", tag = "wallet", request_body = WithdrawalBody, security(("bearer" = ["worker"])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry key: the same key never withdraws twice")),
    responses((status = 201, body = WithdrawalView), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn request_withdrawal(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppJson(body): AppJson<WithdrawalBody>,
) -> Result<Response, ApiError> {
    let worker_id = context.actor.ok_or(ApiError::Unauthenticated)?.id;
    let amount = Fen::new(body.amount)?;
    let withdrawal_id = context.new_aggregate_id("withdrawal");
    let (wallet, _): (Wallet, usize) = state.wallets.load(worker_id).await?;
    let retry = wallet
        .withdrawals
        .iter()
        .any(|withdrawal| withdrawal.withdrawal_id == withdrawal_id);
    let checks = if retry {
        None
    } else {
        let Some((account, account_set_at)) = wallet.bank_account.clone() else {
            // Refused as the wallet itself refuses a risky withdrawal.
            return Err(application::Error::from_refusal(WalletError::Risk(
                WithdrawalRisk::NoBankAccount,
            ))
            .into());
        };
        // The holder must be the identity the worker submitted at onboarding, with a clear
        // background check, not the profile's name, which the worker edits at will.
        let (worker, _): (Worker, usize) = state.workers.load(worker_id).await?;
        let identity_clear = worker
            .background
            .as_ref()
            .is_some_and(|outcome| outcome.clear());
        let legal_name = match (&worker.legal_name, identity_clear) {
            (Some(sealed), true) => state
                .vault
                .open(sealed)
                .await
                .map_err(crate::error::vault_error)?,
            _ => None,
        };
        let holder_name = state
            .vault
            .open(&account.holder_name)
            .await
            .map_err(crate::error::vault_error)?;
        let holder_verified = matches!(
            (legal_name, holder_name),
            (Some(legal_name), Some(holder_name)) if legal_name.trim() == holder_name.trim()
        );
        let open_dispute: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM read_orders WHERE worker_id = $1 AND status = 'disputed')",
        )
        .bind(worker_id)
        .fetch_one(&state.pool)
        .await?;
        Some(WithdrawalChecks {
            account_set_at,
            holder_verified,
            open_dispute,
            rules: state.money.withdrawals,
        })
    };
    // The checks are decided in the wallet's stream with the reservation, so parallel
    // requests cannot all pass the day's limits; the account is fixed on the request.
    let command = WalletCommand::RequestWithdrawal {
        withdrawal_id,
        amount,
        checks,
        now: context.occurred_at,
    };
    let committed = state
        .wallets
        .execute_deciding_again(worker_id, command, &context)
        .await?;
    let withdrawal = committed
        .state
        .withdrawals
        .iter()
        .find(|withdrawal| withdrawal.withdrawal_id == withdrawal_id)
        .ok_or_else(|| ApiError::not_found("提现申请", "withdrawal"))?;
    Ok((
        StatusCode::CREATED,
        [(
            header::LOCATION,
            format!("/api/v1/worker/withdrawals#{withdrawal_id}"),
        )],
        axum::Json(WithdrawalView {
            withdrawal_id,
            worker_id,
            amount: withdrawal.amount,
            status: withdrawal.status.as_str().to_owned(),
            requested_at: withdrawal.requested_at,
        }),
    )
        .into_response())
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MyWithdrawals {
    /// e.g. `6222 **** **** 1234`.
    pub bank_account: Option<String>,
    pub available: i64,
    pub withdrawals: Vec<WithdrawalView>,
    /// What a request is checked against, to show before asking.
    pub rules: WithdrawalRulesView,
}

/// The limits a withdrawal request is checked against.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WithdrawalRulesView {
    /// The smallest amount, in fen.
    pub minimum: i64,
    /// The most in any 24 hours, in fen.
    pub daily_maximum: i64,
    /// Requests in any 24 hours.
    pub daily_requests: usize,
    /// How long a bank account must have been on file, in hours.
    pub account_age_hours: i64,
}

/// Your bank account and withdrawals (workers).
#[utoipa::path(get, path = "/api/v1/worker/withdrawals", tag = "wallet", security(("bearer" = ["worker"])),
    responses((status = 200, body = MyWithdrawals)))]
pub async fn my_withdrawals(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<MyWithdrawals>, ApiError> {
    let worker_id = caller.actor()?.id;
    let (wallet, _): (Wallet, usize) = state.wallets.load(worker_id).await?;
    Ok(axum::Json(MyWithdrawals {
        bank_account: wallet
            .bank_account
            .as_ref()
            .map(|(account, _)| account.masked.clone()),
        available: wallet.available,
        rules: {
            let rules = &state.money.withdrawals;
            WithdrawalRulesView {
                minimum: rules.minimum,
                daily_maximum: rules.daily_maximum,
                daily_requests: rules.daily_requests,
                account_age_hours: rules.account_age_hours,
            }
        },
        withdrawals: wallet
            .withdrawals
            .iter()
            .rev()
            .map(|withdrawal| WithdrawalView {
                withdrawal_id: withdrawal.withdrawal_id,
                worker_id,
                amount: withdrawal.amount,
                status: withdrawal.status.as_str().to_owned(),
                requested_at: withdrawal.requested_at,
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AdminWithdrawalParams {
    /// `requested` (default), `approved`, `rejected`, `paid` or `failed`.
    pub status: Option<Line<30>>,
}

/// Withdrawals by status, oldest first (admins): `requested` is the review queue.
#[utoipa::path(get, path = "/api/v1/admin/withdrawals", tag = "wallet", security(("bearer" = ["admin"])), params(AdminWithdrawalParams),
    responses((status = 200, body = [WithdrawalView]), (status = 422, body = crate::error::Problem)))]
pub async fn admin_withdrawals(
    State(state): State<AppState>,
    AppQuery(params): AppQuery<AdminWithdrawalParams>,
) -> Result<axum::Json<Vec<WithdrawalView>>, ApiError> {
    let status = params
        .status
        .map(String::from)
        .unwrap_or_else(|| "requested".to_owned());
    if !["requested", "approved", "rejected", "paid", "failed"].contains(&status.as_str()) {
        return Err(ApiError::Invalid(
            Text::new("wallet.unknown-status").with("status", status),
        ));
    }
    let rows = sqlx::query_as::<_, (Uuid, Uuid, i64, String, DateTime<Utc>)>(
        "SELECT withdrawal_id, worker_id, amount, status, requested_at FROM read_withdrawals
          WHERE status = $1 ORDER BY requested_at LIMIT 500",
    )
    .bind(&status)
    .fetch_all(&state.pool)
    .await?;
    Ok(axum::Json(
        rows.into_iter()
            .map(|row| WithdrawalView {
                withdrawal_id: row.0,
                worker_id: row.1,
                amount: row.2,
                status: row.3,
                requested_at: row.4,
            })
            .collect(),
    ))
}

async fn owner(state: &AppState, withdrawal_id: Uuid) -> Result<Uuid, ApiError> {
    sqlx::query_scalar("SELECT worker_id FROM read_withdrawals WHERE withdrawal_id = $1")
        .bind(withdrawal_id)
        .fetch_optional(&state.pool)
        .await?
        .ok_or_else(|| ApiError::not_found("提现申请", "withdrawal"))
}

async fn view(
    state: &AppState,
    worker_id: Uuid,
    withdrawal_id: Uuid,
) -> Result<axum::Json<WithdrawalView>, ApiError> {
    let (wallet, _): (Wallet, usize) = state.wallets.load(worker_id).await?;
    let withdrawal = wallet
        .withdrawals
        .iter()
        .find(|withdrawal| withdrawal.withdrawal_id == withdrawal_id)
        .ok_or_else(|| ApiError::not_found("提现申请", "withdrawal"))?;
    Ok(axum::Json(WithdrawalView {
        withdrawal_id,
        worker_id,
        amount: withdrawal.amount,
        status: withdrawal.status.as_str().to_owned(),
        requested_at: withdrawal.requested_at,
    }))
}

/// Approve a withdrawal and pay it out through the bank (admins). Approving again pays nothing
/// more; a refused transfer returns the money to the worker's available balance.
#[utoipa::path(post, path = "/api/v1/admin/withdrawals/{withdrawal_id}/approve", tag = "wallet", security(("bearer" = ["admin"])),
    params(("withdrawal_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = WithdrawalView), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn approve(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(withdrawal_id): AppPath<Uuid>,
) -> Result<axum::Json<WithdrawalView>, ApiError> {
    let by = context.actor.ok_or(ApiError::Unauthenticated)?;
    let worker_id = owner(&state, withdrawal_id).await?;
    let command = WalletCommand::ApproveWithdrawal {
        withdrawal_id,
        by,
        now: context.occurred_at,
    };
    state
        .wallets
        .execute_deciding_again(worker_id, command, &context)
        .await?;
    application::withdrawals::pay_out(&state, worker_id, withdrawal_id, &context).await?;
    view(&state, worker_id, withdrawal_id).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    pub reason: Paragraph<500>,
}

/// Reject a withdrawal with a reason (admins); the money returns to available.
#[utoipa::path(post, path = "/api/v1/admin/withdrawals/{withdrawal_id}/reject", tag = "wallet", request_body = RejectBody, security(("bearer" = ["admin"])),
    params(("withdrawal_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = WithdrawalView), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn reject(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(withdrawal_id): AppPath<Uuid>,
    AppJson(body): AppJson<RejectBody>,
) -> Result<axum::Json<WithdrawalView>, ApiError> {
    let by = context.actor.ok_or(ApiError::Unauthenticated)?;
    let worker_id = owner(&state, withdrawal_id).await?;
    let command = WalletCommand::RejectWithdrawal {
        withdrawal_id,
        by,
        reason: String::from(body.reason),
        now: context.occurred_at,
    };
    state
        .wallets
        .execute_deciding_again(worker_id, command, &context)
        .await?;
    view(&state, worker_id, withdrawal_id).await
}
