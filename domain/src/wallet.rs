//! The `Wallet` aggregate: one worker's income and withdrawals.
//!
//! Income arrives pending (from a released escrow) and becomes available once its settlement
//! date has passed; a withdrawal reserves available money at once (so it cannot be spent twice),
//! waits for an admin, and is paid out through the bank port, or returned to available if
//! rejected or if the payout fails.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ledger::{Account, Posting};
use crate::values::{Actor, Fen};

#[derive(Debug, Clone, PartialEq)]
pub enum WalletCommand {
    /// The worker's share of a completed order; settles at `settles_at`.
    RecordIncome {
        worker_id: Uuid,
        order_id: Uuid,
        amount: Fen,
        settles_at: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    /// From the settlement job: every income whose date has passed becomes available.
    Settle { now: DateTime<Utc> },
    RequestWithdrawal {
        withdrawal_id: Uuid,
        amount: Fen,
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WalletEvent {
    IncomeRecorded {
        worker_id: Uuid,
        order_id: Uuid,
        amount: Fen,
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
}

impl DomainEvent for WalletEvent {
    fn event_type(&self) -> String {
        match self {
            WalletEvent::IncomeRecorded { .. } => "IncomeRecorded",
            WalletEvent::IncomeSettled { .. } => "IncomeSettled",
            WalletEvent::WithdrawalRequested { .. } => "WithdrawalRequested",
            WalletEvent::WithdrawalApproved { .. } => "WithdrawalApproved",
            WalletEvent::WithdrawalRejected { .. } => "WithdrawalRejected",
            WalletEvent::PayoutSucceeded { .. } => "PayoutSucceeded",
            WalletEvent::PayoutFailed { .. } => "PayoutFailed",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        crate::EVENT_VERSION.to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WalletError {
    #[error("提现金额 {requested} 超过可提现余额 {available} / {requested} is more than the {available} available")]
    InsufficientFunds { requested: Fen, available: Fen },
    #[error("提现金额必须大于零 / a withdrawal must be more than zero")]
    EmptyWithdrawal,
    #[error("提现申请不存在 / no such withdrawal")]
    NoSuchWithdrawal,
    #[error("提现申请状态为 {0}，不能执行此操作 / not possible while the withdrawal is {0}")]
    WithdrawalState(&'static str),
    #[error("钱包不存在 / no such wallet")]
    NotFound,
    #[error("请填写原因 / a reason is required")]
    ReasonRequired,
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
}

impl WithdrawalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WithdrawalStatus::Requested => "requested",
            WithdrawalStatus::Approved => "approved",
            WithdrawalStatus::Rejected => "rejected",
            WithdrawalStatus::Paid => "paid",
            WithdrawalStatus::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Withdrawal {
    pub withdrawal_id: Uuid,
    pub amount: i64,
    pub status: WithdrawalStatus,
    pub requested_at: DateTime<Utc>,
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
                settles_at,
                now,
            } => Ok(if self.orders.contains(&order_id) {
                vec![]
            } else {
                vec![WalletEvent::IncomeRecorded {
                    worker_id,
                    order_id,
                    amount,
                    settles_at,
                    recorded_at: now,
                }]
            }),
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
                now,
            } => {
                if self.withdrawal(withdrawal_id).is_ok() {
                    // The same request again (a retry): nothing more is reserved.
                    return Ok(vec![]);
                }
                if amount.get() == 0 {
                    return Err(WalletError::EmptyWithdrawal);
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
                WithdrawalStatus::Approved => Ok(vec![]),
                other => Err(WalletError::WithdrawalState(other.as_str())),
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
            // The escrow release already credited pending income.
            WalletEvent::IncomeRecorded { .. } | WalletEvent::WithdrawalApproved { .. } => vec![],
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
        }
    }
}

impl Aggregate for Wallet {
    const TYPE: &'static str = "wallet";
    type Command = WalletCommand;
    type Event = WalletEvent;
    type Error = WalletError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        let set = |wallet: &mut Wallet, withdrawal_id: Uuid, status: WithdrawalStatus| {
            for withdrawal in &mut wallet.withdrawals {
                if withdrawal.withdrawal_id == withdrawal_id {
                    withdrawal.status = status;
                }
            }
        };
        match event {
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
            WalletEvent::WithdrawalRequested {
                withdrawal_id,
                amount,
                requested_at,
            } => {
                self.available -= amount.get();
                self.in_transit += amount.get();
                self.withdrawals.push(Withdrawal {
                    withdrawal_id,
                    amount: amount.get(),
                    status: WithdrawalStatus::Requested,
                    requested_at,
                });
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
