//! The ledger read model: every posting's legs and each account's balance, folded from payment
//! and wallet events by the same functions the domain defines, so rebuilding this projection
//! from position zero is rebuilding the ledger.

use anyhow::Context;
use domain::ledger::Posting;
use domain::payment::{Payment, PaymentEvent};
use domain::wallet::{Wallet, WalletEvent};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::log::StoredEvent;
use crate::projector::Projection;

pub struct LedgerProjection;

#[async_trait::async_trait]
impl Projection for LedgerProjection {
    fn name(&self) -> &'static str {
        "ledger"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["ledger_legs", "account_balances"]
    }

    fn create_tables(&self, schema: &str) -> String {
        format!(
            "CREATE TABLE {schema}.ledger_legs (
                position     bigint      NOT NULL,
                posting      smallint    NOT NULL,
                leg          smallint    NOT NULL,
                kind         text        NOT NULL,
                account      text        NOT NULL,
                amount       bigint      NOT NULL,
                aggregate_id text        NOT NULL,
                recorded_at  timestamptz NOT NULL,
                PRIMARY KEY (position, posting, leg)
            );
            CREATE INDEX ON {schema}.ledger_legs (account, position);
            CREATE TABLE {schema}.account_balances (
                account      text PRIMARY KEY,
                debit_normal boolean NOT NULL,
                -- Debit-positive sum of every leg.
                signed_sum   bigint  NOT NULL
            );"
        )
    }

    async fn apply(
        &self,
        connection: &mut PgConnection,
        schema: &str,
        event: &StoredEvent,
    ) -> anyhow::Result<()> {
        let postings: Vec<Posting> = match event.aggregate_type.as_str() {
            "payment" => Payment::postings(&event.decode::<PaymentEvent>()?),
            "wallet" => {
                let worker_id: Uuid = event.aggregate_id.parse().context("wallet id")?;
                Wallet::postings(worker_id, &event.decode::<WalletEvent>()?)
            }
            _ => return Ok(()),
        };
        for (posting_index, posting) in postings.iter().enumerate() {
            anyhow::ensure!(
                posting.is_balanced(),
                "an unbalanced posting at position {}",
                event.position
            );
            for (leg_index, leg) in posting.legs.iter().enumerate() {
                let inserted = sqlx::query(&format!(
                    "INSERT INTO {schema}.ledger_legs
                         (position, posting, leg, kind, account, amount, aggregate_id, recorded_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING"
                ))
                .bind(event.position)
                .bind(posting_index as i16)
                .bind(leg_index as i16)
                .bind(posting.kind)
                .bind(leg.account.code())
                .bind(leg.amount)
                .bind(&event.aggregate_id)
                .bind(event.recorded_at)
                .execute(&mut *connection)
                .await?
                .rows_affected();
                if inserted == 1 {
                    sqlx::query(&format!(
                        "INSERT INTO {schema}.account_balances (account, debit_normal, signed_sum)
                         VALUES ($1, $2, $3)
                         ON CONFLICT (account) DO UPDATE
                         SET signed_sum = {schema}.account_balances.signed_sum + $3"
                    ))
                    .bind(leg.account.code())
                    .bind(leg.account.debit_normal())
                    .bind(leg.amount)
                    .execute(&mut *connection)
                    .await?;
                }
            }
        }
        Ok(())
    }
}

/// Every account's balance on its normal side, by account code.
pub async fn balances(pool: &PgPool) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "SELECT account, CASE WHEN debit_normal THEN signed_sum ELSE -signed_sum END
           FROM read_account_balances ORDER BY account",
    )
    .fetch_all(pool)
    .await
}

/// The debit-positive sum of every leg ever posted: zero when the books balance.
pub async fn trial_balance(pool: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COALESCE(sum(signed_sum), 0)::bigint FROM read_account_balances")
        .fetch_one(pool)
        .await
}
