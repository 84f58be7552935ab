//! Paying workers out: the `BankTransfer` port and the payout step that
//! follows an admin's approval. A payout is keyed by the withdrawal, so a retried approval or a
//! repeated job run never pays twice; a refused transfer returns the money to available.

use domain::wallet::{Wallet, WalletCommand, WithdrawalStatus};
use domain::Fen;
use uuid::Uuid;

use crate::commands::CommandContext;
use crate::error::{Error, Refusal};
use crate::services::Services;
use domain::message::Text;

/// Pays out an approved withdrawal and records the bank's answer. Does nothing for one that is
/// not (or no longer) approved.
pub async fn pay_out(
    services: &Services,
    worker_id: Uuid,
    withdrawal_id: Uuid,
    context: &CommandContext,
) -> crate::Result<()> {
    let (wallet, _): (Wallet, usize) = services.wallets.load(worker_id).await?;
    let Some(withdrawal) = wallet
        .withdrawals
        .iter()
        .find(|withdrawal| withdrawal.withdrawal_id == withdrawal_id)
    else {
        return Err(Error::not_found("提现申请", "withdrawal"));
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
                .ok_or_else(|| Error::not_found("银行卡", "bank account"))?
                .0
        }
    };
    let mut opened = services
        .vault
        .open_all(&[&account.number, &account.holder_name])
        .await?
        .into_iter();
    let erased = || {
        Error::refused(
            Refusal::IllegalState,
            Text::new("withdrawals.bank-account-erased"),
        )
    };
    let number = opened.next().flatten().ok_or_else(erased)?;
    let holder_name = opened.next().flatten().ok_or_else(erased)?;
    // The approval is committed before the bank hears of it.
    crate::commands::flush().await?;
    let transfer = services
        .bank
        .pay(
            withdrawal_id,
            &number,
            &account.masked,
            &holder_name,
            Fen::literal(withdrawal.amount),
        )
        .await
        .map_err(Error::Unavailable)?;
    services
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
