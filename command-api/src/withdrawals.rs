//! Paying workers out: the `BankTransfer` port, the sandbox bank, and the payout step that
//! follows an admin's approval. A payout is keyed by the withdrawal, so a retried approval or a
//! repeated job run never pays twice; a refused transfer returns the money to available.

use domain::wallet::{Wallet, WalletCommand, WithdrawalStatus};
use domain::Fen;
use sqlx::PgPool;
use uuid::Uuid;

use crate::commands::CommandContext;
use crate::error::ApiError;
use crate::state::AppState;

/// The bank's answer to a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub succeeded: bool,
    pub reference: String,
}

#[async_trait::async_trait]
pub trait BankTransfer: Send + Sync {
    /// Sends `amount` to the account. Asking again for the same withdrawal returns the first
    /// answer.
    async fn pay(
        &self,
        withdrawal_id: Uuid,
        account_number: &str,
        account_masked: &str,
        holder_name: &str,
        amount: Fen,
    ) -> anyhow::Result<Transfer>;
}

/// The built-in sandbox bank: refuses transfers to card numbers ending in `0000` (to try the
/// failure path), pays everything else.
pub struct SandboxBank {
    pub pool: PgPool,
}

#[async_trait::async_trait]
impl BankTransfer for SandboxBank {
    async fn pay(
        &self,
        withdrawal_id: Uuid,
        account_number: &str,
        account_masked: &str,
        _holder_name: &str,
        amount: Fen,
    ) -> anyhow::Result<Transfer> {
        let succeeded = !account_number.ends_with("0000");
        sqlx::query(
            "INSERT INTO sandbox_payouts (withdrawal_id, account_masked, amount, succeeded, bank_reference)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (withdrawal_id) DO NOTHING",
        )
        .bind(withdrawal_id)
        .bind(account_masked)
        .bind(amount.get())
        .bind(succeeded)
        .bind(format!("SBXB{}", withdrawal_id.simple()))
        .execute(&self.pool)
        .await?;
        let (succeeded, reference): (bool, String) = sqlx::query_as(
            "SELECT succeeded, bank_reference FROM sandbox_payouts WHERE withdrawal_id = $1",
        )
        .bind(withdrawal_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(Transfer {
            succeeded,
            reference,
        })
    }
}

/// Pays out an approved withdrawal and records the bank's answer. Does nothing for one that is
/// not (or no longer) approved.
pub async fn pay_out(
    state: &AppState,
    worker_id: Uuid,
    withdrawal_id: Uuid,
    context: &CommandContext,
) -> Result<(), ApiError> {
    let (wallet, _): (Wallet, usize) = state.wallets.load(worker_id).await?;
    let Some(withdrawal) = wallet
        .withdrawals
        .iter()
        .find(|withdrawal| withdrawal.withdrawal_id == withdrawal_id)
    else {
        return Err(ApiError::not_found("提现申请", "withdrawal"));
    };
    if withdrawal.status != WithdrawalStatus::Approved {
        return Ok(());
    }
    // Paid to the account fixed when it was asked for, or not at all; only withdrawals asked
    // for before destinations were fixed fall back to the account on file.
    let account = match &withdrawal.to {
        Some(account) => account,
        None => {
            &wallet
                .bank_account
                .as_ref()
                .ok_or_else(|| ApiError::not_found("银行卡", "bank account"))?
                .0
        }
    };
    let mut opened = state
        .vault
        .open_all(&[&account.number, &account.holder_name])
        .await
        .map_err(crate::error::vault_error)?
        .into_iter();
    let erased = || ApiError::IllegalState("银行卡信息已删除 / the bank account was erased".into());
    let number = opened.next().flatten().ok_or_else(erased)?;
    let holder_name = opened.next().flatten().ok_or_else(erased)?;
    let transfer = state
        .bank
        .pay(
            withdrawal_id,
            &number,
            &account.masked,
            &holder_name,
            Fen::literal(withdrawal.amount),
        )
        .await
        .map_err(ApiError::Unavailable)?;
    state
        .wallets
        .execute_deciding_again(
            worker_id,
            WalletCommand::RecordPayout {
                withdrawal_id,
                succeeded: transfer.succeeded,
                bank_reference: transfer.reference,
                now: context.occurred_at,
            },
            context,
        )
        .await?;
    Ok(())
}
