//! The double-entry ledger: every movement of money is a posting whose legs sum to zero.
//!
//! A leg's amount is signed fen: positive debits the account, negative credits it. Each account
//! has a normal side; its balance read on that side must never go below zero. Postings are not
//! stored as events of their own: they follow, by one pure function per event, from the payment
//! and wallet events that cause them, so the ledger rebuilt from the log is the ledger.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The accounts money moves between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "account", content = "worker_id", rename_all = "snake_case")]
pub enum Account {
    /// Money the payment providers hold for us (an asset: debit-normal).
    CustomerPaymentsClearing,
    /// Customers' money held until their service is completed.
    PlatformEscrow,
    /// The platform's commission, earned at completion.
    CommissionRevenue,
    /// Refunds promised to customers, not yet paid back through the provider.
    RefundsPayable,
    /// A worker's income before the settlement period has passed.
    WorkerPending(Uuid),
    /// A worker's income they may withdraw.
    WorkerAvailable(Uuid),
    /// Withdrawals approved and on their way to a worker's bank.
    WithdrawalsInTransit(Uuid),
    /// A worker's share of a dispute refund, refunded to the customer and not yet taken back
    /// from the worker's income (an asset: debit-normal).
    DisputeRecoveries,
}

impl Account {
    /// Assets grow with debits; everything else here grows with credits.
    pub fn debit_normal(self) -> bool {
        matches!(
            self,
            Account::CustomerPaymentsClearing | Account::DisputeRecoveries
        )
    }

    /// The stable name used in the read model and reports.
    pub fn code(self) -> String {
        match self {
            Account::CustomerPaymentsClearing => "customer_payments_clearing".to_owned(),
            Account::PlatformEscrow => "platform_escrow".to_owned(),
            Account::CommissionRevenue => "commission_revenue".to_owned(),
            Account::RefundsPayable => "refunds_payable".to_owned(),
            Account::WorkerPending(worker) => format!("worker_pending:{worker}"),
            Account::WorkerAvailable(worker) => format!("worker_available:{worker}"),
            Account::WithdrawalsInTransit(worker) => format!("withdrawals_in_transit:{worker}"),
            Account::DisputeRecoveries => "dispute_recoveries".to_owned(),
        }
    }
}

impl fmt::Display for Account {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.code())
    }
}

/// One side of a posting: signed fen, debit positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leg {
    pub account: Account,
    pub amount: i64,
}

/// A balanced set of legs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting {
    /// What caused it, e.g. `payment_captured`.
    pub kind: &'static str,
    pub legs: Vec<Leg>,
}

impl Posting {
    /// A posting moving `amount` fen from `credit` to `debit`.
    pub fn transfer(kind: &'static str, debit: Account, credit: Account, amount: i64) -> Posting {
        Posting {
            kind,
            legs: vec![
                Leg {
                    account: debit,
                    amount,
                },
                Leg {
                    account: credit,
                    amount: -amount,
                },
            ],
        }
    }

    pub fn is_balanced(&self) -> bool {
        self.legs.iter().map(|leg| leg.amount).sum::<i64>() == 0
    }
}

/// Balances by account, as postings fold into them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    /// Signed (debit-positive) sums per account.
    sums: BTreeMap<Account, i64>,
    pub postings: usize,
}

impl Ledger {
    pub fn post(&mut self, posting: &Posting) {
        debug_assert!(posting.is_balanced(), "{posting:?}");
        for leg in &posting.legs {
            *self.sums.entry(leg.account).or_default() += leg.amount;
        }
        self.postings += 1;
    }

    /// The balance on the account's normal side.
    pub fn balance(&self, account: Account) -> i64 {
        let sum = self.sums.get(&account).copied().unwrap_or(0);
        if account.debit_normal() {
            sum
        } else {
            -sum
        }
    }

    /// Every account with its normal-side balance.
    pub fn balances(&self) -> impl Iterator<Item = (Account, i64)> + '_ {
        self.sums
            .keys()
            .map(|account| (*account, self.balance(*account)))
    }

    /// The sum of every signed amount: zero as long as every posting balanced.
    pub fn trial_balance(&self) -> i64 {
        self.sums.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transfer_balances_and_moves_money_between_normal_sides() {
        let worker = Uuid::from_u128(7);
        let mut ledger = Ledger::default();
        ledger.post(&Posting::transfer(
            "payment_captured",
            Account::CustomerPaymentsClearing,
            Account::PlatformEscrow,
            15_000,
        ));
        ledger.post(&Posting {
            kind: "service_completed",
            legs: vec![
                Leg {
                    account: Account::PlatformEscrow,
                    amount: 15_000,
                },
                Leg {
                    account: Account::CommissionRevenue,
                    amount: -3_000,
                },
                Leg {
                    account: Account::WorkerPending(worker),
                    amount: -12_000,
                },
            ],
        });
        assert_eq!(ledger.balance(Account::CustomerPaymentsClearing), 15_000);
        assert_eq!(ledger.balance(Account::PlatformEscrow), 0);
        assert_eq!(ledger.balance(Account::CommissionRevenue), 3_000);
        assert_eq!(ledger.balance(Account::WorkerPending(worker)), 12_000);
        assert_eq!(ledger.trial_balance(), 0);
        assert_eq!(
            Account::WorkerPending(worker).code(),
            format!("worker_pending:{worker}")
        );
    }
}
