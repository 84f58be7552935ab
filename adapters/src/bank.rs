//! The built-in sandbox bank.

use application::ports::{BankTransfer, Transfer};
use domain::Fen;
use sqlx::PgPool;
use uuid::Uuid;

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
