//! The `Wallet` aggregate: one worker's income and withdrawals.
//!
//! Income arrives pending (from a released escrow) and becomes available once its settlement
//! date has passed; a withdrawal reserves available money at once (so it cannot be spent twice),
//! waits for an admin, and is paid out through the bank port, or returned to available if
//! rejected or if the payout fails.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ledger::{Account, Leg, Posting};
use crate::message::{Explain, Text};
use crate::values::{Actor, Fen, Sealed};

/// Where a worker's withdrawals are paid: the card number is sealed under the worker's key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BankAccount {
    /// Sealed under the worker's key.
    pub holder_name: Sealed,
    pub bank: String,
    pub number: Sealed,
    /// e.g. `6222 **** **** 1234`.
    pub masked: String,
}

/// Where a worker's income came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncomeKind {
    /// The worker's share of a completed order's payment.
    #[default]
    Service,
    /// The worker's share of the fee kept when the customer cancelled late.
    CancellationFee,
}

impl IncomeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IncomeKind::Service => "service",
            IncomeKind::CancellationFee => "cancellation_fee",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum WalletCommand {
    /// The worker's share of a completed order, or of a late cancellation's fee; settles at
    /// `settles_at`. One income per order.
    RecordIncome {
        worker_id: Uuid,
        order_id: Uuid,
        amount: Fen,
        kind: IncomeKind,
        settles_at: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    SetBankAccount {
        worker_id: Uuid,
        account: BankAccount,
        now: DateTime<Utc>,
    },
    /// From the settlement job: every income whose date has passed becomes available.
    Settle { now: DateTime<Utc> },
    /// With `checks`, the risk checks are decided here, in the wallet's own stream, so daily
    /// limits hold under parallel requests; the account the request is paid to is fixed now.
    RequestWithdrawal {
        withdrawal_id: Uuid,
        amount: Fen,
        checks: Option<WithdrawalChecks>,
        now: DateTime<Utc>,
    },
    ApproveWithdrawal {
        withdrawal_id: Uuid,
        by: Actor,
        now: DateTime<Utc>,
    },
    RejectWithdrawal {
        withdrawal_id: Uuid,
        by: Actor,
        reason: String,
        now: DateTime<Utc>,
    },
    RecordPayout {
        withdrawal_id: Uuid,
        succeeded: bool,
        bank_reference: String,
        now: DateTime<Utc>,
    },
    /// Takes back the worker's share of a dispute refund: from that order's pending income
    /// first, then from the available balance.
    Recover {
        refund_id: Uuid,
        order_id: Uuid,
        amount: Fen,
        now: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WalletEvent {
    BankAccountSet {
        worker_id: Uuid,
        account: BankAccount,
        set_at: DateTime<Utc>,
    },
    IncomeRecorded {
        worker_id: Uuid,
        order_id: Uuid,
        amount: Fen,
        /// Absent in events written before fees were shared: those are all service income.
        #[serde(default, skip_serializing_if = "is_service")]
        kind: IncomeKind,
        settles_at: DateTime<Utc>,
        recorded_at: DateTime<Utc>,
    },
    IncomeSettled {
        order_id: Uuid,
        amount: Fen,
        settled_at: DateTime<Utc>,
    },
    WithdrawalRequested {
        withdrawal_id: Uuid,
        amount: Fen,
        requested_at: DateTime<Utc>,
        /// Where it is paid: the account on file when it was asked for (absent in events
        /// written before destinations were fixed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<BankAccount>,
    },
    /// A withdrawal not yet approved, called off because the bank account it was to be paid
    /// to was replaced: the money is available again.
    WithdrawalCancelled {
        withdrawal_id: Uuid,
        amount: Fen,
        reason: String,
        cancelled_at: DateTime<Utc>,
    },
    WithdrawalApproved {
        withdrawal_id: Uuid,
        by: Actor,
        approved_at: DateTime<Utc>,
    },
    WithdrawalRejected {
        withdrawal_id: Uuid,
        amount: Fen,
        by: Actor,
        reason: String,
        rejected_at: DateTime<Utc>,
    },
    PayoutSucceeded {
        withdrawal_id: Uuid,
        amount: Fen,
        bank_reference: String,
        paid_at: DateTime<Utc>,
    },
    PayoutFailed {
        withdrawal_id: Uuid,
        amount: Fen,
        bank_reference: String,
        failed_at: DateTime<Utc>,
    },
    DisputeRecovered {
        refund_id: Uuid,
        order_id: Uuid,
        from_pending: Fen,
        from_available: Fen,
        recovered_at: DateTime<Utc>,
    },
}

fn is_service(kind: &IncomeKind) -> bool {
    *kind == IncomeKind::Service
}

impl DomainEvent for WalletEvent {
    fn event_type(&self) -> String {
        match self {
            WalletEvent::BankAccountSet { .. } => "BankAccountSet",
            WalletEvent::IncomeRecorded { .. } => "IncomeRecorded",
            WalletEvent::IncomeSettled { .. } => "IncomeSettled",
            WalletEvent::WithdrawalRequested { .. } => "WithdrawalRequested",
            WalletEvent::WithdrawalApproved { .. } => "WithdrawalApproved",
            WalletEvent::WithdrawalRejected { .. } => "WithdrawalRejected",
            WalletEvent::WithdrawalCancelled { .. } => "WithdrawalCancelled",
            WalletEvent::PayoutSucceeded { .. } => "PayoutSucceeded",
            WalletEvent::PayoutFailed { .. } => "PayoutFailed",
            WalletEvent::DisputeRecovered { .. } => "DisputeRecovered",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        crate::upcast::current_version(&self.event_type()).to_owned()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum WalletError {
    InsufficientFunds { requested: Fen, available: Fen },
    EmptyWithdrawal,
    NoSuchWithdrawal,
    WithdrawalState(&'static str),
    NotFound,
    ReasonRequired,
    CannotRecover { requested: Fen, held: Fen },
    Risk(WithdrawalRisk),
    AccountChanged,
}

impl Explain for WalletError {
    fn text(&self) -> Text {
        match self {
            WalletError::InsufficientFunds {
                available,
                requested,
            } => Text::new("wallet.insufficient-funds")
                .with("available", available)
                .with("requested", requested),
            WalletError::EmptyWithdrawal => Text::new("wallet.empty-withdrawal"),
            WalletError::NoSuchWithdrawal => Text::new("wallet.no-such-withdrawal"),
            WalletError::WithdrawalState(v0) => Text::new("wallet.withdrawal-state").with("0", v0),
            WalletError::NotFound => Text::new("wallet.not-found"),
            WalletError::ReasonRequired => Text::new("wallet.reason-required"),
            WalletError::CannotRecover { held, requested } => Text::new("wallet.cannot-recover")
                .with("held", held)
                .with("requested", requested),
            WalletError::Risk(inner) => inner.text(),
            WalletError::AccountChanged => Text::new("wallet.account-changed"),
        }
    }
}

crate::message::explained!(WalletError);

/// What the wallet needs from outside to judge a withdrawal: whether the holder of the
/// account on file (the one set at `account_set_at`) is the worker's verified identity, whether
/// they have an open dispute, and the platform's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WithdrawalChecks {
    pub account_set_at: DateTime<Utc>,
    pub holder_verified: bool,
    pub open_dispute: bool,
    pub rules: WithdrawalRules,
}

/// Where a withdrawal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawalStatus {
    Requested,
    Approved,
    Rejected,
    Paid,
    Failed,
    /// Called off before approval because the bank account was replaced.
    Cancelled,
}

impl WithdrawalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WithdrawalStatus::Requested => "requested",
            WithdrawalStatus::Approved => "approved",
            WithdrawalStatus::Rejected => "rejected",
            WithdrawalStatus::Paid => "paid",
            WithdrawalStatus::Failed => "failed",
            WithdrawalStatus::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Withdrawal {
    pub withdrawal_id: Uuid,
    pub amount: i64,
    pub status: WithdrawalStatus,
    pub requested_at: DateTime<Utc>,
    /// The account it is paid to, fixed when it was asked for.
    #[serde(default)]
    pub to: Option<BankAccount>,
}

/// A worker's money, as their wallet's events fold it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Wallet {
    pub worker_id: Option<Uuid>,
    /// Incomes not yet settled: (order, amount, settles at).
    pub pending: Vec<(Uuid, i64, DateTime<Utc>)>,
    /// Orders whose income was ever recorded, so a repeat records nothing.
    pub orders: Vec<Uuid>,
    pub available: i64,
    pub in_transit: i64,
    pub withdrawals: Vec<Withdrawal>,
    #[serde(default)]
    pub bank_account: Option<(BankAccount, DateTime<Utc>)>,
    /// Dispute refunds already recovered, so a repeat takes nothing more.
    #[serde(default)]
    pub recovered: Vec<Uuid>,
}

impl Wallet {
    pub fn pending_total(&self) -> i64 {
        self.pending.iter().map(|(_, amount, _)| amount).sum()
    }

    fn withdrawal(&self, withdrawal_id: Uuid) -> Result<&Withdrawal, WalletError> {
        self.withdrawals
            .iter()
            .find(|withdrawal| withdrawal.withdrawal_id == withdrawal_id)
            .ok_or(WalletError::NoSuchWithdrawal)
    }

    pub(crate) fn decide(&self, command: WalletCommand) -> Result<Vec<WalletEvent>, WalletError> {
        match command {
            WalletCommand::RecordIncome {
                worker_id,
                order_id,
                amount,
                kind,
                settles_at,
                now,
            } => Ok(if self.orders.contains(&order_id) {
                vec![]
            } else {
                vec![WalletEvent::IncomeRecorded {
                    worker_id,
                    order_id,
                    amount,
                    kind,
                    settles_at,
                    recorded_at: now,
                }]
            }),
            WalletCommand::SetBankAccount {
                worker_id,
                account,
                now,
            } => {
                // Withdrawals not yet approved were checked against the old account: they are
                // called off, and the new account starts its own age.
                let mut events = vec![WalletEvent::BankAccountSet {
                    worker_id,
                    account,
                    set_at: now,
                }];
                events.extend(
                    self.withdrawals
                        .iter()
                        .filter(|withdrawal| withdrawal.status == WithdrawalStatus::Requested)
                        .map(|withdrawal| WalletEvent::WithdrawalCancelled {
                            withdrawal_id: withdrawal.withdrawal_id,
                            amount: Fen::literal(withdrawal.amount),
                            reason: "银行卡已更换 / the bank account was changed".to_owned(),
                            cancelled_at: now,
                        }),
                );
                Ok(events)
            }
            _ if self.worker_id.is_none() => Err(WalletError::NotFound),
            WalletCommand::Settle { now } => Ok(self
                .pending
                .iter()
                .filter(|(_, _, settles_at)| *settles_at <= now)
                .map(|(order_id, amount, _)| WalletEvent::IncomeSettled {
                    order_id: *order_id,
                    amount: Fen::literal(*amount),
                    settled_at: now,
                })
                .collect()),
            WalletCommand::RequestWithdrawal {
                withdrawal_id,
                amount,
                checks,
                now,
            } => {
                if self.withdrawal(withdrawal_id).is_ok() {
                    // The same request again (a retry): nothing more is reserved.
                    return Ok(vec![]);
                }
                if amount.get() == 0 {
                    return Err(WalletError::EmptyWithdrawal);
                }
                if let Some(checks) = checks {
                    let set_at = self.bank_account.as_ref().map(|(_, set_at)| *set_at);
                    if set_at.is_some() && set_at != Some(checks.account_set_at) {
                        return Err(WalletError::AccountChanged);
                    }
                    self.check_withdrawal(
                        amount,
                        checks.holder_verified,
                        checks.open_dispute,
                        &checks.rules,
                        now,
                    )
                    .map_err(WalletError::Risk)?;
                }
                if amount.get() > self.available {
                    return Err(WalletError::InsufficientFunds {
                        requested: amount,
                        available: Fen::literal(self.available),
                    });
                }
                Ok(vec![WalletEvent::WithdrawalRequested {
                    withdrawal_id,
                    amount,
                    requested_at: now,
                    to: self
                        .bank_account
                        .as_ref()
                        .map(|(account, _)| account.clone()),
                }])
            }
            WalletCommand::ApproveWithdrawal {
                withdrawal_id,
                by,
                now,
            } => match self.withdrawal(withdrawal_id)?.status {
                WithdrawalStatus::Requested => Ok(vec![WalletEvent::WithdrawalApproved {
                    withdrawal_id,
                    by,
                    approved_at: now,
                }]),
                // Approved already (and perhaps paid out): a retried approval.
                WithdrawalStatus::Approved | WithdrawalStatus::Paid | WithdrawalStatus::Failed => {
                    Ok(vec![])
                }
                WithdrawalStatus::Rejected => Err(WalletError::WithdrawalState("rejected")),
                WithdrawalStatus::Cancelled => Err(WalletError::WithdrawalState("cancelled")),
            },
            WalletCommand::RejectWithdrawal {
                withdrawal_id,
                by,
                reason,
                now,
            } => {
                let withdrawal = self.withdrawal(withdrawal_id)?;
                if withdrawal.status != WithdrawalStatus::Requested {
                    return Err(WalletError::WithdrawalState(withdrawal.status.as_str()));
                }
                let reason = reason.trim();
                if reason.is_empty() {
                    return Err(WalletError::ReasonRequired);
                }
                Ok(vec![WalletEvent::WithdrawalRejected {
                    withdrawal_id,
                    amount: Fen::literal(withdrawal.amount),
                    by,
                    reason: reason.chars().take(500).collect(),
                    rejected_at: now,
                }])
            }
            WalletCommand::Recover {
                refund_id,
                order_id,
                amount,
                now,
            } => {
                if self.recovered.contains(&refund_id) {
                    return Ok(vec![]);
                }
                let pending: i64 = self
                    .pending
                    .iter()
                    .filter(|(pending, _, _)| *pending == order_id)
                    .map(|(_, held, _)| held)
                    .sum();
                let from_pending = pending.min(amount.get());
                let from_available = amount.get() - from_pending;
                if from_available > self.available {
                    return Err(WalletError::CannotRecover {
                        requested: amount,
                        held: Fen::literal(pending + self.available),
                    });
                }
                Ok(vec![WalletEvent::DisputeRecovered {
                    refund_id,
                    order_id,
                    from_pending: Fen::literal(from_pending),
                    from_available: Fen::literal(from_available),
                    recovered_at: now,
                }])
            }
            WalletCommand::RecordPayout {
                withdrawal_id,
                succeeded,
                bank_reference,
                now,
            } => {
                let withdrawal = self.withdrawal(withdrawal_id)?;
                match withdrawal.status {
                    WithdrawalStatus::Approved => {}
                    // A payout already recorded: a repeated answer from the bank.
                    WithdrawalStatus::Paid | WithdrawalStatus::Failed => return Ok(vec![]),
                    other => return Err(WalletError::WithdrawalState(other.as_str())),
                }
                let amount = Fen::literal(withdrawal.amount);
                Ok(vec![if succeeded {
                    WalletEvent::PayoutSucceeded {
                        withdrawal_id,
                        amount,
                        bank_reference,
                        paid_at: now,
                    }
                } else {
                    WalletEvent::PayoutFailed {
                        withdrawal_id,
                        amount,
                        bank_reference,
                        failed_at: now,
                    }
                }])
            }
        }
    }

    /// What a wallet event does to the ledger; `worker_id` is the wallet's owner.
    pub fn postings(worker_id: Uuid, event: &WalletEvent) -> Vec<Posting> {
        let pending = Account::WorkerPending(worker_id);
        let available = Account::WorkerAvailable(worker_id);
        let transit = Account::WithdrawalsInTransit(worker_id);
        match event {
            // The escrow release (or the refund that kept a fee) already credited pending income.
            WalletEvent::IncomeRecorded { .. }
            | WalletEvent::WithdrawalApproved { .. }
            | WalletEvent::BankAccountSet { .. } => vec![],
            WalletEvent::IncomeSettled { amount, .. } => vec![Posting::transfer(
                "income_settled",
                pending,
                available,
                amount.get(),
            )],
            WalletEvent::WithdrawalRequested { amount, .. } => vec![Posting::transfer(
                "withdrawal_reserved",
                available,
                transit,
                amount.get(),
            )],
            WalletEvent::WithdrawalRejected { amount, .. } => vec![Posting::transfer(
                "withdrawal_rejected",
                transit,
                available,
                amount.get(),
            )],
            WalletEvent::WithdrawalCancelled { amount, .. } => vec![Posting::transfer(
                "withdrawal_cancelled",
                transit,
                available,
                amount.get(),
            )],
            WalletEvent::PayoutSucceeded { amount, .. } => vec![Posting::transfer(
                "payout_sent",
                transit,
                Account::CustomerPaymentsClearing,
                amount.get(),
            )],
            WalletEvent::PayoutFailed { amount, .. } => vec![Posting::transfer(
                "payout_returned",
                transit,
                available,
                amount.get(),
            )],
            WalletEvent::DisputeRecovered {
                from_pending,
                from_available,
                ..
            } => vec![Posting {
                kind: "dispute_recovered",
                legs: vec![
                    Leg {
                        account: pending,
                        amount: from_pending.get(),
                    },
                    Leg {
                        account: available,
                        amount: from_available.get(),
                    },
                    Leg {
                        account: Account::DisputeRecoveries,
                        amount: -(from_pending.get() + from_available.get()),
                    },
                ],
            }],
        }
    }
}

crate::aggregate!(Wallet, "wallet", WalletCommand, WalletEvent, WalletError);

impl Wallet {
    /// Folds one event into the state: the aggregate's `apply`.
    fn fold(&mut self, event: WalletEvent) {
        let set = |wallet: &mut Wallet, withdrawal_id: Uuid, status: WithdrawalStatus| {
            for withdrawal in &mut wallet.withdrawals {
                if withdrawal.withdrawal_id == withdrawal_id {
                    withdrawal.status = status;
                }
            }
        };
        match event {
            WalletEvent::BankAccountSet {
                worker_id,
                account,
                set_at,
            } => {
                self.worker_id = Some(worker_id);
                self.bank_account = Some((account, set_at));
            }
            WalletEvent::IncomeRecorded {
                worker_id,
                order_id,
                amount,
                settles_at,
                ..
            } => {
                self.worker_id = Some(worker_id);
                self.orders.push(order_id);
                self.pending.push((order_id, amount.get(), settles_at));
            }
            WalletEvent::IncomeSettled {
                order_id, amount, ..
            } => {
                self.pending.retain(|(pending, _, _)| *pending != order_id);
                self.available += amount.get();
            }
            WalletEvent::DisputeRecovered {
                refund_id,
                order_id,
                from_pending,
                from_available,
                ..
            } => {
                for (pending, held, _) in &mut self.pending {
                    if *pending == order_id {
                        *held -= from_pending.get();
                    }
                }
                self.pending
                    .retain(|(pending, held, _)| *pending != order_id || *held > 0);
                self.available -= from_available.get();
                self.recovered.push(refund_id);
            }
            WalletEvent::WithdrawalRequested {
                withdrawal_id,
                amount,
                requested_at,
                to,
            } => {
                self.available -= amount.get();
                self.in_transit += amount.get();
                self.withdrawals.push(Withdrawal {
                    withdrawal_id,
                    amount: amount.get(),
                    status: WithdrawalStatus::Requested,
                    requested_at,
                    to,
                });
            }
            WalletEvent::WithdrawalCancelled {
                withdrawal_id,
                amount,
                ..
            } => {
                self.in_transit -= amount.get();
                self.available += amount.get();
                set(self, withdrawal_id, WithdrawalStatus::Cancelled);
            }
            WalletEvent::WithdrawalApproved { withdrawal_id, .. } => {
                set(self, withdrawal_id, WithdrawalStatus::Approved)
            }
            WalletEvent::WithdrawalRejected {
                withdrawal_id,
                amount,
                ..
            } => {
                self.in_transit -= amount.get();
                self.available += amount.get();
                set(self, withdrawal_id, WithdrawalStatus::Rejected);
            }
            WalletEvent::PayoutSucceeded {
                withdrawal_id,
                amount,
                ..
            } => {
                self.in_transit -= amount.get();
                set(self, withdrawal_id, WithdrawalStatus::Paid);
            }
            WalletEvent::PayoutFailed {
                withdrawal_id,
                amount,
                ..
            } => {
                self.in_transit -= amount.get();
                self.available += amount.get();
                set(self, withdrawal_id, WithdrawalStatus::Failed);
            }
        }
    }
}

/// The limits a withdrawal request is checked against before any money is reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithdrawalRules {
    pub minimum: i64,
    pub daily_maximum: i64,
    /// Requests in any 24 hours.
    pub daily_requests: usize,
    /// How long a bank account must have been on file, in hours.
    pub account_age_hours: i64,
}

impl Default for WithdrawalRules {
    fn default() -> Self {
        WithdrawalRules {
            minimum: 1_000,
            daily_maximum: 500_000,
            daily_requests: 3,
            account_age_hours: 24,
        }
    }
}

/// Why a withdrawal request was refused by the risk checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WithdrawalRisk {
    NoBankAccount,
    BelowMinimum(Fen),
    OverDailyMaximum(Fen),
    TooFrequent(usize),
    NameMismatch,
    AccountTooNew(i64),
    OpenDispute,
}

impl Explain for WithdrawalRisk {
    fn text(&self) -> Text {
        match self {
            WithdrawalRisk::NoBankAccount => Text::new("withdrawal.no-bank-account"),
            WithdrawalRisk::BelowMinimum(v0) => Text::new("withdrawal.below-minimum").with("0", v0),
            WithdrawalRisk::OverDailyMaximum(v0) => {
                Text::new("withdrawal.over-daily-maximum").with("0", v0)
            }
            WithdrawalRisk::TooFrequent(v0) => Text::new("withdrawal.too-frequent").with("0", v0),
            WithdrawalRisk::NameMismatch => Text::new("withdrawal.name-mismatch"),
            WithdrawalRisk::AccountTooNew(v0) => {
                Text::new("withdrawal.account-too-new").with("0", v0)
            }
            WithdrawalRisk::OpenDispute => Text::new("withdrawal.open-dispute"),
        }
    }
}

crate::message::explained!(WithdrawalRisk);

impl Wallet {
    /// The risk checks of a new withdrawal: amount limits, velocity, the account holder against
    /// the verified identity (compared outside, where the sealed names can be opened), the
    /// account's age, and open disputes. Withdrawals rejected or called off do not count
    /// towards the day's limits.
    pub fn check_withdrawal(
        &self,
        amount: Fen,
        holder_verified: bool,
        open_dispute: bool,
        rules: &WithdrawalRules,
        now: DateTime<Utc>,
    ) -> Result<(), WithdrawalRisk> {
        let (_, since) = self
            .bank_account
            .as_ref()
            .ok_or(WithdrawalRisk::NoBankAccount)?;
        if amount.get() < rules.minimum {
            return Err(WithdrawalRisk::BelowMinimum(Fen::literal(rules.minimum)));
        }
        let day_ago = now - chrono::Duration::hours(24);
        let recent: Vec<&Withdrawal> = self
            .withdrawals
            .iter()
            .filter(|withdrawal| {
                withdrawal.requested_at > day_ago
                    && !matches!(
                        withdrawal.status,
                        WithdrawalStatus::Rejected | WithdrawalStatus::Cancelled
                    )
            })
            .collect();
        if recent.len() >= rules.daily_requests {
            return Err(WithdrawalRisk::TooFrequent(rules.daily_requests));
        }
        let total: i64 = recent.iter().map(|withdrawal| withdrawal.amount).sum();
        if total + amount.get() > rules.daily_maximum {
            return Err(WithdrawalRisk::OverDailyMaximum(Fen::literal(
                rules.daily_maximum,
            )));
        }
        if !holder_verified {
            return Err(WithdrawalRisk::NameMismatch);
        }
        if now - *since < chrono::Duration::hours(rules.account_age_hours) {
            return Err(WithdrawalRisk::AccountTooNew(rules.account_age_hours));
        }
        if open_dispute {
            return Err(WithdrawalRisk::OpenDispute);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 10, 0, 0)
            .single()
            .expect("time")
    }

    fn wallet_with(available: i64, account_set: DateTime<Utc>) -> Wallet {
        Wallet {
            worker_id: Some(Uuid::from_u128(1)),
            available,
            bank_account: Some((
                BankAccount {
                    holder_name: Sealed::from_ciphertext("v1.holder".into()),
                    bank: "中国银行".into(),
                    number: Sealed::from_ciphertext("v1.x.y".into()),
                    masked: "6222 **** **** 1234".into(),
                },
                account_set,
            )),
            ..Wallet::default()
        }
    }

    #[test]
    fn withdrawals_are_checked_for_limits_velocity_name_account_age_and_disputes() {
        let rules = WithdrawalRules::default();
        let old = now() - chrono::Duration::days(3);
        let wallet = wallet_with(1_000_000, old);
        let check = |wallet: &Wallet, amount: i64, name: &str, dispute: bool| {
            wallet.check_withdrawal(
                Fen::literal(amount),
                name == "张阿姨",
                dispute,
                &rules,
                now(),
            )
        };
        assert_eq!(check(&wallet, 50_000, "张阿姨", false), Ok(()));
        assert_eq!(
            check(&Wallet::default(), 50_000, "张阿姨", false),
            Err(WithdrawalRisk::NoBankAccount)
        );
        assert!(matches!(
            check(&wallet, 999, "张阿姨", false),
            Err(WithdrawalRisk::BelowMinimum(_))
        ));
        assert!(matches!(
            check(&wallet, 500_001, "张阿姨", false),
            Err(WithdrawalRisk::OverDailyMaximum(_))
        ));
        assert_eq!(
            check(&wallet, 50_000, "李四", false),
            Err(WithdrawalRisk::NameMismatch)
        );
        assert_eq!(
            check(&wallet_with(1_000_000, now()), 50_000, "张阿姨", false),
            Err(WithdrawalRisk::AccountTooNew(24))
        );
        assert_eq!(
            check(&wallet, 50_000, "张阿姨", true),
            Err(WithdrawalRisk::OpenDispute)
        );
        let mut busy = wallet.clone();
        for index in 0..3 {
            busy.withdrawals.push(Withdrawal {
                withdrawal_id: Uuid::from_u128(index),
                amount: 2_000,
                status: WithdrawalStatus::Paid,
                requested_at: now() - chrono::Duration::hours(2),
                to: None,
            });
        }
        assert_eq!(
            check(&busy, 2_000, "张阿姨", false),
            Err(WithdrawalRisk::TooFrequent(3))
        );
    }

    fn checks(wallet: &Wallet) -> WithdrawalChecks {
        WithdrawalChecks {
            account_set_at: wallet.bank_account.as_ref().expect("account").1,
            holder_verified: true,
            open_dispute: false,
            rules: WithdrawalRules::default(),
        }
    }

    fn request(wallet: &Wallet, id: u128, amount: i64) -> Result<Vec<WalletEvent>, WalletError> {
        wallet.decide(WalletCommand::RequestWithdrawal {
            withdrawal_id: Uuid::from_u128(id),
            amount: Fen::literal(amount),
            checks: Some(checks(wallet)),
            now: now(),
        })
    }

    #[test]
    fn the_daily_limits_are_decided_in_the_wallets_stream_and_the_destination_is_fixed() {
        let mut wallet = wallet_with(1_000_000, now() - chrono::Duration::days(3));
        for id in 1..=3 {
            let events = request(&wallet, id, 10_000).expect("within the limits");
            let WalletEvent::WithdrawalRequested { to, .. } = &events[0] else {
                panic!("{events:?}")
            };
            assert_eq!(
                to.as_ref().map(|account| account.masked.as_str()),
                Some("6222 **** **** 1234")
            );
            for event in events {
                wallet.fold(event);
            }
        }
        // A fourth in the same day, however it arrives, is refused by the stream itself.
        assert_eq!(
            request(&wallet, 4, 10_000),
            Err(WalletError::Risk(WithdrawalRisk::TooFrequent(3)))
        );
    }

    #[test]
    fn a_new_bank_account_calls_off_unapproved_withdrawals_and_restarts_the_age_clock() {
        let mut wallet = wallet_with(100_000, now() - chrono::Duration::days(3));
        let checked = checks(&wallet);
        for event in request(&wallet, 1, 20_000).expect("requested") {
            wallet.fold(event);
        }
        let replaced = wallet
            .decide(WalletCommand::SetBankAccount {
                worker_id: Uuid::from_u128(1),
                account: BankAccount {
                    holder_name: Sealed::from_ciphertext("v1.holder".into()),
                    bank: "工商银行".into(),
                    number: Sealed::from_ciphertext("v1.a.b".into()),
                    masked: "6212 **** **** 9999".into(),
                },
                now: now(),
            })
            .expect("set");
        assert!(matches!(
            replaced[1],
            WalletEvent::WithdrawalCancelled { amount, .. } if amount == Fen::literal(20_000)
        ));
        for event in replaced {
            wallet.fold(event);
        }
        assert_eq!((wallet.available, wallet.in_transit), (100_000, 0));
        // A request checked against the old account is refused; against the new one, the
        // account is too new.
        assert_eq!(
            wallet.decide(WalletCommand::RequestWithdrawal {
                withdrawal_id: Uuid::from_u128(2),
                amount: Fen::literal(10_000),
                checks: Some(checked),
                now: now(),
            }),
            Err(WalletError::AccountChanged)
        );
        assert_eq!(
            request(&wallet, 3, 10_000),
            Err(WalletError::Risk(WithdrawalRisk::AccountTooNew(24)))
        );
    }
}
