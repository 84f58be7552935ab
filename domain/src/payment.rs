//! The `Payment` aggregate: one payment intent for one order, from creation through the
//! provider's confirmation, escrow, release at completion, and refunds.
//!
//! ```text
//! created → captured → released (commission to revenue, the rest to the worker's pending income)
//!        ↘ failed      ↘ refunds (from escrow, back through the original provider)
//! ```
//! A confirmation is accepted once: the same provider transaction again changes nothing, and one
//! that disagrees with the intent (amount, currency, another transaction) is refused.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ledger::{Account, Leg, Posting};
use crate::message::{Explain, Text};
use crate::values::{Actor, Fen};

/// How the customer pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    Alipay,
    WechatPay,
    BankCard,
}

impl PaymentMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentMethod::Alipay => "alipay",
            PaymentMethod::WechatPay => "wechat_pay",
            PaymentMethod::BankCard => "bank_card",
        }
    }
}

/// The only currency the platform takes.
pub const CURRENCY: &str = "CNY";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    #[default]
    New,
    Pending,
    Captured,
    Failed,
    /// The escrow went to commission and the worker.
    Released,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::New => "new",
            PaymentStatus::Pending => "pending",
            PaymentStatus::Captured => "captured",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Released => "released",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum PaymentCommand {
    Create {
        payment_id: Uuid,
        order_id: Uuid,
        customer_id: Uuid,
        amount: Fen,
        method: PaymentMethod,
        provider: String,
        now: DateTime<Utc>,
    },
    /// A verified notification (or query answer) that the customer paid.
    Capture {
        provider_transaction: String,
        amount: Fen,
        currency: String,
        now: DateTime<Utc>,
    },
    Fail {
        reason: String,
        now: DateTime<Utc>,
    },
    /// Part or all of the escrow goes back to the customer; `fee` of it is kept, as revenue
    /// less `fee_to_worker`, the share of the worker who had accepted a late-cancelled order.
    Refund {
        refund_id: Uuid,
        amount: Fen,
        fee: Fen,
        fee_to_worker: Option<FeeShare>,
        reason: String,
        by: Actor,
        now: DateTime<Utc>,
    },
    /// The provider paid a refund back.
    CompleteRefund {
        refund_id: Uuid,
        provider_refund: String,
        now: DateTime<Utc>,
    },
    /// After the escrow was released, part of the payment goes back to settle a dispute: the
    /// commission returns in proportion, and the worker's share is to be recovered from them.
    RefundAfterRelease {
        refund_id: Uuid,
        amount: Fen,
        reason: String,
        by: Actor,
        now: DateTime<Utc>,
    },
    /// The service was completed: commission to revenue, the rest to the worker.
    Release {
        worker_id: Uuid,
        /// Basis points (1/100 of a percent) of what is left in escrow.
        commission_bp: u32,
        now: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PaymentEvent {
    PaymentCreated {
        payment_id: Uuid,
        order_id: Uuid,
        customer_id: Uuid,
        amount: Fen,
        method: PaymentMethod,
        provider: String,
        created_at: DateTime<Utc>,
    },
    PaymentCaptured {
        provider_transaction: String,
        amount: Fen,
        captured_at: DateTime<Utc>,
    },
    PaymentFailed {
        reason: String,
        failed_at: DateTime<Utc>,
    },
    RefundIssued {
        refund_id: Uuid,
        amount: Fen,
        fee: Fen,
        /// Of the fee, the worker's share; absent in events written before fees were shared.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fee_to_worker: Option<FeeShare>,
        reason: String,
        by: Actor,
        issued_at: DateTime<Utc>,
    },
    RefundCompleted {
        refund_id: Uuid,
        amount: Fen,
        provider_refund: String,
        completed_at: DateTime<Utc>,
    },
    EscrowReleased {
        worker_id: Uuid,
        commission: Fen,
        worker_share: Fen,
        released_at: DateTime<Utc>,
    },
    /// A dispute refund after release: `from_commission` comes back from revenue and
    /// `from_worker` is owed by the worker until their wallet gives it back.
    RefundClawedBack {
        refund_id: Uuid,
        worker_id: Uuid,
        amount: Fen,
        from_commission: Fen,
        from_worker: Fen,
        reason: String,
        by: Actor,
        issued_at: DateTime<Utc>,
    },
}

impl DomainEvent for PaymentEvent {
    fn event_type(&self) -> String {
        match self {
            PaymentEvent::PaymentCreated { .. } => "PaymentCreated",
            PaymentEvent::PaymentCaptured { .. } => "PaymentCaptured",
            PaymentEvent::PaymentFailed { .. } => "PaymentFailed",
            PaymentEvent::RefundIssued { .. } => "RefundIssued",
            PaymentEvent::RefundCompleted { .. } => "RefundCompleted",
            PaymentEvent::EscrowReleased { .. } => "EscrowReleased",
            PaymentEvent::RefundClawedBack { .. } => "RefundClawedBack",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        crate::EVENT_VERSION.to_owned()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum PaymentError {
    NotFound,
    AlreadyExists,
    IllegalState(&'static str),
    AmountMismatch { expected: Fen, got: Fen },
    Currency(String),
    OtherTransaction,
    RefundTooLarge { requested: Fen, refundable: Fen },
    EmptyRefund,
    NoSuchRefund,
    BadCommission,
    ReasonRequired,
    ShareTooLarge { share: Fen, fee: Fen },
}

impl Explain for PaymentError {
    fn text(&self) -> Text {
        match self {
            PaymentError::NotFound => Text::new("payment.not-found"),
            PaymentError::AlreadyExists => Text::new("payment.already-exists"),
            PaymentError::IllegalState(v0) => Text::new("payment.illegal-state").with("0", v0),
            PaymentError::AmountMismatch { expected, got } => Text::new("payment.amount-mismatch")
                .with("expected", expected)
                .with("got", got),
            PaymentError::Currency(v0) => Text::new("payment.currency").with("0", v0),
            PaymentError::OtherTransaction => Text::new("payment.other-transaction"),
            PaymentError::RefundTooLarge {
                refundable,
                requested,
            } => Text::new("payment.refund-too-large")
                .with("refundable", refundable)
                .with("requested", requested),
            PaymentError::EmptyRefund => Text::new("payment.empty-refund"),
            PaymentError::NoSuchRefund => Text::new("payment.no-such-refund"),
            PaymentError::BadCommission => Text::new("payment.bad-commission"),
            PaymentError::ReasonRequired => Text::new("payment.reason-required"),
            PaymentError::ShareTooLarge { fee, share } => Text::new("payment.share-too-large")
                .with("fee", fee)
                .with("share", share),
        }
    }
}

crate::message::explained!(PaymentError);

/// The part of a kept cancellation fee that goes to a worker's pending income.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeShare {
    pub worker_id: Uuid,
    pub amount: Fen,
}

/// The state a payment's events fold into.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    pub status: PaymentStatus,
    pub payment_id: Option<Uuid>,
    pub order_id: Option<Uuid>,
    pub customer_id: Option<Uuid>,
    pub amount: i64,
    pub method: Option<PaymentMethod>,
    pub provider: String,
    pub provider_transaction: Option<String>,
    /// Still held for the order: captured, less refunds issued, until released.
    pub in_escrow: i64,
    /// Refunds issued and not yet paid back: (refund id, amount).
    pub pending_refunds: Vec<(Uuid, i64)>,
    pub refunded: i64,
    /// At release: the worker and their share.
    #[serde(default)]
    pub released_to: Option<(Uuid, i64)>,
    /// At release: the commission taken.
    #[serde(default)]
    pub released_commission: i64,
    /// Refunded after release, from the commission and from the worker's share.
    #[serde(default)]
    pub clawed_from_commission: i64,
    #[serde(default)]
    pub clawed_from_worker: i64,
    /// Every refund ever issued, so a repeated request issues nothing more.
    #[serde(default)]
    pub issued_refunds: Vec<Uuid>,
    /// Fees kept on cancellations, workers' shares included.
    #[serde(default)]
    pub fee_kept: i64,
    /// Of `fee_kept`, what went to workers.
    #[serde(default)]
    pub fees_to_workers: i64,
}

impl Payment {
    pub(crate) fn decide(
        &self,
        command: PaymentCommand,
    ) -> Result<Vec<PaymentEvent>, PaymentError> {
        use PaymentStatus as S;
        match (self.status, command) {
            (
                S::New,
                PaymentCommand::Create {
                    payment_id,
                    order_id,
                    customer_id,
                    amount,
                    method,
                    provider,
                    now,
                },
            ) => Ok(vec![PaymentEvent::PaymentCreated {
                payment_id,
                order_id,
                customer_id,
                amount,
                method,
                provider,
                created_at: now,
            }]),
            (S::New, _) => Err(PaymentError::NotFound),
            (_, PaymentCommand::Create { .. }) => Err(PaymentError::AlreadyExists),
            (
                status,
                PaymentCommand::Capture {
                    provider_transaction,
                    amount,
                    currency,
                    now,
                },
            ) => {
                if currency != CURRENCY {
                    return Err(PaymentError::Currency(currency));
                }
                if amount.get() != self.amount {
                    return Err(PaymentError::AmountMismatch {
                        expected: Fen::literal(self.amount),
                        got: amount,
                    });
                }
                match (status, &self.provider_transaction) {
                    (S::Pending | S::Failed, _) => Ok(vec![PaymentEvent::PaymentCaptured {
                        provider_transaction,
                        amount,
                        captured_at: now,
                    }]),
                    // The same confirmation again: already done.
                    (_, Some(known)) if *known == provider_transaction => Ok(vec![]),
                    _ => Err(PaymentError::OtherTransaction),
                }
            }
            (S::Pending, PaymentCommand::Fail { reason, now }) => {
                Ok(vec![PaymentEvent::PaymentFailed {
                    reason: required(&reason)?,
                    failed_at: now,
                }])
            }
            (
                S::Captured,
                PaymentCommand::Refund {
                    refund_id,
                    amount,
                    fee,
                    fee_to_worker,
                    reason,
                    by,
                    now,
                },
            ) => {
                if self.issued_refunds.contains(&refund_id) {
                    return Ok(vec![]);
                }
                if amount.get() + fee.get() == 0 {
                    return Err(PaymentError::EmptyRefund);
                }
                if let Some(share) = fee_to_worker {
                    if share.amount.get() > fee.get() {
                        return Err(PaymentError::ShareTooLarge {
                            share: share.amount,
                            fee,
                        });
                    }
                }
                let fee_to_worker = fee_to_worker.filter(|share| share.amount.get() > 0);
                let requested = amount.get() + fee.get();
                if requested > self.in_escrow {
                    return Err(PaymentError::RefundTooLarge {
                        requested: Fen::literal(requested),
                        refundable: Fen::literal(self.in_escrow),
                    });
                }
                if self
                    .pending_refunds
                    .iter()
                    .any(|(pending, _)| *pending == refund_id)
                {
                    return Ok(vec![]);
                }
                Ok(vec![PaymentEvent::RefundIssued {
                    refund_id,
                    amount,
                    fee,
                    fee_to_worker,
                    reason: required(&reason)?,
                    by,
                    issued_at: now,
                }])
            }
            (
                S::Released,
                PaymentCommand::RefundAfterRelease {
                    refund_id,
                    amount,
                    reason,
                    by,
                    now,
                },
            ) => {
                if self.issued_refunds.contains(&refund_id) {
                    return Ok(vec![]);
                }
                if amount.get() == 0 {
                    return Err(PaymentError::EmptyRefund);
                }
                let Some((worker_id, worker_share)) = self.released_to else {
                    return Err(PaymentError::IllegalState(self.status.as_str()));
                };
                let (from_commission, from_worker) = clawback_split(
                    self.released_commission,
                    worker_share,
                    self.clawed_from_commission,
                    self.clawed_from_worker,
                    amount.get(),
                )?;
                Ok(vec![PaymentEvent::RefundClawedBack {
                    refund_id,
                    worker_id,
                    amount,
                    from_commission: Fen::literal(from_commission),
                    from_worker: Fen::literal(from_worker),
                    reason: required(&reason)?,
                    by,
                    issued_at: now,
                }])
            }
            (
                _,
                PaymentCommand::CompleteRefund {
                    refund_id,
                    provider_refund,
                    now,
                },
            ) => {
                let (_, amount) = self
                    .pending_refunds
                    .iter()
                    .find(|(pending, _)| *pending == refund_id)
                    .ok_or(PaymentError::NoSuchRefund)?;
                Ok(vec![PaymentEvent::RefundCompleted {
                    refund_id,
                    amount: Fen::literal(*amount),
                    provider_refund,
                    completed_at: now,
                }])
            }
            (
                S::Captured,
                PaymentCommand::Release {
                    worker_id,
                    commission_bp,
                    now,
                },
            ) => {
                if commission_bp > 10_000 {
                    return Err(PaymentError::BadCommission);
                }
                // Rounded down in the worker's favour: the platform never takes a part of a fen.
                let commission = self.in_escrow * i64::from(commission_bp) / 10_000;
                Ok(vec![PaymentEvent::EscrowReleased {
                    worker_id,
                    commission: Fen::literal(commission),
                    worker_share: Fen::literal(self.in_escrow - commission),
                    released_at: now,
                }])
            }
            (status, _) => Err(PaymentError::IllegalState(status.as_str())),
        }
    }

    /// What a payment event does to the ledger.
    pub fn postings(event: &PaymentEvent) -> Vec<Posting> {
        match event {
            PaymentEvent::PaymentCreated { .. } | PaymentEvent::PaymentFailed { .. } => vec![],
            PaymentEvent::PaymentCaptured { amount, .. } => vec![Posting::transfer(
                "payment_captured",
                Account::CustomerPaymentsClearing,
                Account::PlatformEscrow,
                amount.get(),
            )],
            PaymentEvent::RefundIssued {
                amount,
                fee,
                fee_to_worker,
                ..
            } => {
                let mut legs = vec![Leg {
                    account: Account::PlatformEscrow,
                    amount: amount.get() + fee.get(),
                }];
                if amount.get() > 0 {
                    legs.push(Leg {
                        account: Account::RefundsPayable,
                        amount: -amount.get(),
                    });
                }
                let to_worker = fee_to_worker.map_or(0, |share| share.amount.get());
                if fee.get() - to_worker > 0 {
                    legs.push(Leg {
                        account: Account::CommissionRevenue,
                        amount: -(fee.get() - to_worker),
                    });
                }
                if let Some(share) = fee_to_worker.filter(|share| share.amount.get() > 0) {
                    legs.push(Leg {
                        account: Account::WorkerPending(share.worker_id),
                        amount: -share.amount.get(),
                    });
                }
                vec![Posting {
                    kind: "refund_issued",
                    legs,
                }]
            }
            PaymentEvent::RefundCompleted { amount, .. } => vec![Posting::transfer(
                "refund_paid",
                Account::RefundsPayable,
                Account::CustomerPaymentsClearing,
                amount.get(),
            )],
            PaymentEvent::RefundClawedBack {
                amount,
                from_commission,
                from_worker,
                ..
            } => vec![Posting {
                kind: "dispute_refund_issued",
                legs: vec![
                    Leg {
                        account: Account::CommissionRevenue,
                        amount: from_commission.get(),
                    },
                    Leg {
                        account: Account::DisputeRecoveries,
                        amount: from_worker.get(),
                    },
                    Leg {
                        account: Account::RefundsPayable,
                        amount: -amount.get(),
                    },
                ],
            }],
            PaymentEvent::EscrowReleased {
                worker_id,
                commission,
                worker_share,
                ..
            } => vec![Posting {
                kind: "escrow_released",
                legs: vec![
                    Leg {
                        account: Account::PlatformEscrow,
                        amount: commission.get() + worker_share.get(),
                    },
                    Leg {
                        account: Account::CommissionRevenue,
                        amount: -commission.get(),
                    },
                    Leg {
                        account: Account::WorkerPending(*worker_id),
                        amount: -worker_share.get(),
                    },
                ],
            }],
        }
    }
}

/// How a refund of `amount` after release divides between the commission and the worker's
/// share: in proportion to what was released, counted on the running total so that rounding
/// never takes more than either part held.
fn clawback_split(
    commission: i64,
    worker_share: i64,
    clawed_from_commission: i64,
    clawed_from_worker: i64,
    amount: i64,
) -> Result<(i64, i64), PaymentError> {
    let released = commission + worker_share;
    let clawed = clawed_from_commission + clawed_from_worker;
    let refundable = released - clawed;
    if amount > refundable {
        return Err(PaymentError::RefundTooLarge {
            requested: Fen::literal(amount),
            refundable: Fen::literal(refundable),
        });
    }
    let total_after = i128::from(clawed + amount);
    let commission_after =
        (total_after * i128::from(commission) / i128::from(released.max(1))) as i64;
    let from_commission = commission_after - clawed_from_commission;
    Ok((from_commission, amount - from_commission))
}

fn required(reason: &str) -> Result<String, PaymentError> {
    let trimmed = reason.trim();
    if trimmed.is_empty() {
        return Err(PaymentError::ReasonRequired);
    }
    Ok(trimmed.chars().take(500).collect())
}

crate::aggregate!(
    Payment,
    "payment",
    PaymentCommand,
    PaymentEvent,
    PaymentError
);

impl Payment {
    /// Folds one event into the state: the aggregate's `apply`.
    fn fold(&mut self, event: PaymentEvent) {
        match event {
            PaymentEvent::PaymentCreated {
                payment_id,
                order_id,
                customer_id,
                amount,
                method,
                provider,
                ..
            } => {
                self.status = PaymentStatus::Pending;
                self.payment_id = Some(payment_id);
                self.order_id = Some(order_id);
                self.customer_id = Some(customer_id);
                self.amount = amount.get();
                self.method = Some(method);
                self.provider = provider;
            }
            PaymentEvent::PaymentCaptured {
                provider_transaction,
                amount,
                ..
            } => {
                self.status = PaymentStatus::Captured;
                self.provider_transaction = Some(provider_transaction);
                self.in_escrow = amount.get();
            }
            PaymentEvent::PaymentFailed { .. } => self.status = PaymentStatus::Failed,
            PaymentEvent::RefundIssued {
                refund_id,
                amount,
                fee,
                fee_to_worker,
                ..
            } => {
                self.in_escrow -= amount.get() + fee.get();
                self.fee_kept += fee.get();
                self.fees_to_workers += fee_to_worker.map_or(0, |share| share.amount.get());
                if amount.get() > 0 {
                    self.pending_refunds.push((refund_id, amount.get()));
                }
                self.issued_refunds.push(refund_id);
            }
            PaymentEvent::RefundClawedBack {
                refund_id,
                amount,
                from_commission,
                from_worker,
                ..
            } => {
                self.pending_refunds.push((refund_id, amount.get()));
                self.clawed_from_commission += from_commission.get();
                self.clawed_from_worker += from_worker.get();
                self.issued_refunds.push(refund_id);
            }
            PaymentEvent::RefundCompleted {
                refund_id, amount, ..
            } => {
                self.pending_refunds
                    .retain(|(pending, _)| *pending != refund_id);
                self.refunded += amount.get();
            }
            PaymentEvent::EscrowReleased {
                worker_id,
                commission,
                worker_share,
                ..
            } => {
                self.status = PaymentStatus::Released;
                self.in_escrow = 0;
                self.released_to = Some((worker_id, worker_share.get()));
                self.released_commission = commission.get();
            }
        }
    }
}

/// How much of a cancelled order's payment goes back, from the platform's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundPolicy {
    /// Inside this many hours before the start, a fee is kept.
    pub fee_window_hours: i64,
    /// The fee, in basis points of the amount paid.
    pub late_fee_bp: u32,
    /// The share of a kept fee that goes to the worker who had accepted the order, in basis
    /// points of the fee.
    pub worker_share_bp: u32,
}

impl Default for RefundPolicy {
    fn default() -> Self {
        RefundPolicy {
            fee_window_hours: 24,
            late_fee_bp: 2_000,
            worker_share_bp: 5_000,
        }
    }
}

/// What a cancellation gives back: the refund and the fee kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancellationTerms {
    pub refund: Fen,
    pub fee: Fen,
}

/// What a cancellation does with a captured payment, decided when the order is cancelled and
/// recorded on the order, so the refund can be finished later from the log alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancellationSettlement {
    pub payment_id: Uuid,
    pub refund: Fen,
    pub fee: Fen,
    /// The accepted worker's share of the fee, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_worker: Option<FeeShare>,
}

impl CancellationSettlement {
    /// The id of the refund this settlement issues: one cancellation per order, so one refund,
    /// whichever process or retry issues it.
    pub fn refund_id(&self, order_id: Uuid) -> Uuid {
        Uuid::new_v5(
            &self.payment_id,
            format!("cancellation-refund:{order_id}").as_bytes(),
        )
    }
}

impl RefundPolicy {
    /// Full refund before a worker is assigned; a fee inside the window before the start; no
    /// refund once the service has started.
    pub fn terms(
        &self,
        paid: Fen,
        worker_assigned: bool,
        start: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> CancellationTerms {
        let paid = paid.get();
        let (refund, fee) = if now >= start {
            (0, 0)
        } else if !worker_assigned || start - now > chrono::Duration::hours(self.fee_window_hours) {
            (paid, 0)
        } else {
            let fee = paid * i64::from(self.late_fee_bp.min(10_000)) / 10_000;
            (paid - fee, fee)
        };
        CancellationTerms {
            refund: Fen::literal(refund),
            fee: Fen::literal(fee),
        }
    }

    /// The share of `fee` for the worker who had accepted the order (none without one, or when
    /// it rounds down to nothing).
    pub fn fee_share(&self, fee: Fen, accepted_by: Option<Uuid>) -> Option<FeeShare> {
        let amount = fee.get() * i64::from(self.worker_share_bp.min(10_000)) / 10_000;
        accepted_by
            .filter(|_| amount > 0)
            .map(|worker_id| FeeShare {
                worker_id,
                amount: Fen::literal(amount),
            })
    }
}

/// The platform's commission in basis points for a service and a worker's level, before any
/// admin override: care work carries less than cleaning, and higher levels keep more.
pub fn default_commission_bp(service: crate::ServiceCode, level: crate::onboarding::Level) -> u32 {
    use crate::onboarding::Level;
    use crate::ServiceCode as S;
    let base: u32 = match service {
        S::DailyCleaning | S::DeepCleaning | S::HomeRepair => 2_000,
        S::Nanny | S::InfantCarer => 1_500,
        S::MaternityNurse => 1_200,
    };
    let discount = match level {
        Level::Gold => 300,
        Level::Silver => 150,
        Level::Standard => 0,
    };
    base - discount
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn cancellation_terms_follow_the_policy() {
        let policy = RefundPolicy::default();
        let start = Utc
            .with_ymd_and_hms(2026, 5, 1, 9, 0, 0)
            .single()
            .expect("time");
        let paid = Fen::literal(15_000);
        let at = |hours_before: i64| start - chrono::Duration::hours(hours_before);
        let terms = |assigned, now| policy.terms(paid, assigned, start, now);
        assert_eq!(terms(false, at(2)).refund, paid, "no worker yet: all of it");
        assert_eq!(terms(true, at(48)).refund, paid, "well ahead: all of it");
        assert_eq!(
            terms(true, at(3)),
            CancellationTerms {
                refund: Fen::literal(12_000),
                fee: Fen::literal(3_000)
            }
        );
        assert_eq!(
            terms(true, start).refund,
            Fen::ZERO,
            "after the start: nothing"
        );
    }
}
