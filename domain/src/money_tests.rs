//! Property tests of the money model: random sequences of payments, duplicate confirmations,
//! refunds, completions, settlements, withdrawals and payouts, run through the `Payment` and
//! `Wallet` aggregates. After every step: every posting balances, no account's balance goes
//! negative, money is conserved, the aggregates agree with the ledger, and the ledger rebuilt
//! from the events equals the live one.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::Aggregate;
use proptest::prelude::*;
use uuid::Uuid;

use crate::ledger::{Account, Ledger};
use crate::payment::{Payment, PaymentCommand, PaymentEvent, PaymentMethod};
use crate::values::{Actor, Fen, Role};
use crate::wallet::{Wallet, WalletCommand, WalletEvent, WithdrawalStatus};

const ORDERS: usize = 6;
const WORKERS: usize = 3;

#[derive(Debug, Clone)]
enum Step {
    Pay {
        order: usize,
        amount: i64,
    },
    NotifyAgain {
        order: usize,
    },
    /// A refund keeping `fee`; with `share`, a late cancellation: that worker gets that many
    /// basis points of the fee as income, and the order is never completed afterwards.
    Refund {
        order: usize,
        amount: i64,
        fee: i64,
        share: Option<(usize, u32)>,
    },
    PayRefunds {
        order: usize,
    },
    Complete {
        order: usize,
        worker: usize,
        commission_bp: u32,
    },
    Wait {
        hours: i64,
    },
    Settle {
        worker: usize,
    },
    Withdraw {
        worker: usize,
        amount: i64,
    },
    Review {
        worker: usize,
        approve: bool,
    },
    Payout {
        worker: usize,
        succeeded: bool,
    },
    /// An admin settles a dispute after release: part goes back, the worker's share of it is
    /// taken back from their wallet if they hold enough.
    DisputeRefund {
        order: usize,
        amount: i64,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..ORDERS, 1i64..200_000).prop_map(|(order, amount)| Step::Pay { order, amount }),
        (0..ORDERS).prop_map(|order| Step::NotifyAgain { order }),
        (
            0..ORDERS,
            0i64..120_000,
            0i64..5_000,
            prop::option::of((0..WORKERS, 0u32..=10_000))
        )
            .prop_map(|(order, amount, fee, share)| Step::Refund {
                order,
                amount,
                fee,
                share
            }),
        (0..ORDERS).prop_map(|order| Step::PayRefunds { order }),
        (0..ORDERS, 0..WORKERS, 0u32..4_000).prop_map(|(order, worker, commission_bp)| {
            Step::Complete {
                order,
                worker,
                commission_bp,
            }
        }),
        (1i64..200).prop_map(|hours| Step::Wait { hours }),
        (0..WORKERS).prop_map(|worker| Step::Settle { worker }),
        (0..WORKERS, 1i64..150_000).prop_map(|(worker, amount)| Step::Withdraw { worker, amount }),
        (0..WORKERS, any::<bool>()).prop_map(|(worker, approve)| Step::Review { worker, approve }),
        (0..WORKERS, any::<bool>())
            .prop_map(|(worker, succeeded)| Step::Payout { worker, succeeded }),
        (0..ORDERS, 1i64..120_000)
            .prop_map(|(order, amount)| Step::DisputeRefund { order, amount }),
    ]
}

/// The whole money world: aggregates, the event log and the live ledger.
struct World {
    now: DateTime<Utc>,
    payments: Vec<Payment>,
    wallets: Vec<Wallet>,
    log: Vec<Logged>,
    ledger: Ledger,
    counter: u128,
    /// Orders cancelled with a fee shared: never completed, never shared again.
    cancelled: [bool; ORDERS],
}

#[derive(Debug, Clone)]
enum Logged {
    Payment(PaymentEvent),
    Wallet(Uuid, WalletEvent),
}

fn worker_id(index: usize) -> Uuid {
    Uuid::from_u128(0xA000 + index as u128)
}

fn admin() -> Actor {
    Actor {
        id: Uuid::from_u128(0xAD),
        role: Role::Admin,
    }
}

impl World {
    fn new() -> Self {
        World {
            now: Utc
                .with_ymd_and_hms(2026, 3, 1, 8, 0, 0)
                .single()
                .expect("time"),
            payments: vec![Payment::default(); ORDERS],
            wallets: vec![Wallet::default(); WORKERS],
            log: Vec::new(),
            ledger: Ledger::default(),
            counter: 0,
            cancelled: [false; ORDERS],
        }
    }

    fn next_id(&mut self) -> Uuid {
        self.counter += 1;
        Uuid::from_u128(self.counter)
    }

    fn pay(&mut self, order: usize, command: PaymentCommand) -> bool {
        match self.payments[order].decide(command) {
            Ok(events) => {
                for event in events {
                    for posting in Payment::postings(&event) {
                        assert!(posting.is_balanced(), "{posting:?}");
                        self.ledger.post(&posting);
                    }
                    self.payments[order].apply(event.clone());
                    self.log.push(Logged::Payment(event));
                }
                true
            }
            Err(_) => false,
        }
    }

    fn wallet(&mut self, worker: usize, command: WalletCommand) -> bool {
        match self.wallets[worker].decide(command) {
            Ok(events) => {
                for event in events {
                    for posting in Wallet::postings(worker_id(worker), &event) {
                        assert!(posting.is_balanced(), "{posting:?}");
                        self.ledger.post(&posting);
                    }
                    self.wallets[worker].apply(event.clone());
                    self.log.push(Logged::Wallet(worker_id(worker), event));
                }
                true
            }
            Err(_) => false,
        }
    }

    fn run(&mut self, step: Step) {
        let now = self.now;
        match step {
            Step::Pay { order, amount } => {
                let payment_id = self.next_id();
                self.pay(
                    order,
                    PaymentCommand::Create {
                        payment_id,
                        order_id: Uuid::from_u128(order as u128),
                        customer_id: Uuid::from_u128(0xC0),
                        amount: Fen::literal(amount),
                        method: PaymentMethod::Alipay,
                        provider: "sandbox".into(),
                        now,
                    },
                );
                let amount = Fen::literal(self.payments[order].amount);
                self.pay(
                    order,
                    PaymentCommand::Capture {
                        provider_transaction: format!("txn-{order}"),
                        amount,
                        currency: "CNY".into(),
                        now,
                    },
                );
            }
            Step::NotifyAgain { order } => {
                let before = self.log.len();
                let amount = Fen::literal(self.payments[order].amount);
                let accepted = self.pay(
                    order,
                    PaymentCommand::Capture {
                        provider_transaction: format!("txn-{order}"),
                        amount,
                        currency: "CNY".into(),
                        now,
                    },
                );
                if accepted && self.payments[order].provider_transaction.is_some() {
                    // A duplicate may only be the first capture of a failed or pending intent.
                    assert!(self.log.len() <= before + 1);
                }
                // A forged amount or currency changes nothing.
                let before = self.log.len();
                assert!(!self.pay(
                    order,
                    PaymentCommand::Capture {
                        provider_transaction: format!("txn-{order}"),
                        amount: Fen::literal(amount.get() + 1),
                        currency: "CNY".into(),
                        now,
                    },
                ));
                assert!(!self.pay(
                    order,
                    PaymentCommand::Capture {
                        provider_transaction: format!("txn-{order}"),
                        amount,
                        currency: "USD".into(),
                        now,
                    },
                ));
                assert_eq!(self.log.len(), before);
            }
            Step::Refund {
                order,
                amount,
                fee,
                share,
            } => {
                let refund_id = self.next_id();
                let share = share.filter(|_| !self.cancelled[order]);
                let fee_to_worker = share.map(|(worker, bp)| crate::payment::FeeShare {
                    worker_id: worker_id(worker),
                    amount: Fen::literal(fee * i64::from(bp) / 10_000),
                });
                let issued = self.pay(
                    order,
                    PaymentCommand::Refund {
                        refund_id,
                        amount: Fen::literal(amount),
                        fee: Fen::literal(fee),
                        fee_to_worker,
                        reason: "取消 / cancelled".into(),
                        by: admin(),
                        now,
                    },
                );
                if let (true, Some((worker, _))) = (issued, share) {
                    self.cancelled[order] = true;
                    let Some(Logged::Payment(PaymentEvent::RefundIssued {
                        fee_to_worker: Some(shared),
                        ..
                    })) = self.log.last().cloned()
                    else {
                        // Nothing to share: the fee, or the worker's part of it, was zero.
                        return;
                    };
                    assert!(self.wallet(
                        worker,
                        WalletCommand::RecordIncome {
                            worker_id: worker_id(worker),
                            order_id: Uuid::from_u128(order as u128),
                            amount: shared.amount,
                            kind: crate::wallet::IncomeKind::CancellationFee,
                            settles_at: now + Duration::days(7),
                            now,
                        },
                    ));
                }
            }
            Step::PayRefunds { order } => {
                let pending: Vec<Uuid> = self.payments[order]
                    .pending_refunds
                    .iter()
                    .map(|(refund_id, _)| *refund_id)
                    .collect();
                for refund_id in pending {
                    assert!(self.pay(
                        order,
                        PaymentCommand::CompleteRefund {
                            refund_id,
                            provider_refund: format!("refund-{refund_id}"),
                            now,
                        },
                    ));
                }
            }
            Step::Complete {
                order,
                worker,
                commission_bp,
            } => {
                if !self.cancelled[order]
                    && self.pay(
                        order,
                        PaymentCommand::Release {
                            worker_id: worker_id(worker),
                            commission_bp,
                            now,
                        },
                    )
                {
                    let Some(Logged::Payment(PaymentEvent::EscrowReleased {
                        worker_share, ..
                    })) = self.log.last().cloned()
                    else {
                        panic!("a release records its split")
                    };
                    assert!(self.wallet(
                        worker,
                        WalletCommand::RecordIncome {
                            worker_id: worker_id(worker),
                            order_id: Uuid::from_u128(order as u128),
                            amount: worker_share,
                            kind: crate::wallet::IncomeKind::Service,
                            settles_at: now + Duration::days(7),
                            now,
                        },
                    ));
                }
            }
            Step::Wait { hours } => self.now += Duration::hours(hours),
            Step::Settle { worker } => {
                self.wallet(worker, WalletCommand::Settle { now });
            }
            Step::Withdraw { worker, amount } => {
                let withdrawal_id = self.next_id();
                let available = self.wallets[worker].available;
                let accepted = self.wallet(
                    worker,
                    WalletCommand::RequestWithdrawal {
                        withdrawal_id,
                        amount: Fen::literal(amount),
                        checks: None,
                        now,
                    },
                );
                if self.wallets[worker].worker_id.is_some() {
                    assert_eq!(accepted, amount <= available, "{amount} of {available}");
                }
                // Retrying the same request reserves nothing more.
                if accepted {
                    let before = self.wallets[worker].available;
                    assert!(self.wallet(
                        worker,
                        WalletCommand::RequestWithdrawal {
                            withdrawal_id,
                            amount: Fen::literal(amount),
                            checks: None,
                            now,
                        },
                    ));
                    assert_eq!(self.wallets[worker].available, before);
                }
            }
            Step::Review { worker, approve } => {
                let open = self.wallets[worker]
                    .withdrawals
                    .iter()
                    .find(|withdrawal| withdrawal.status == WithdrawalStatus::Requested)
                    .map(|withdrawal| withdrawal.withdrawal_id);
                if let Some(withdrawal_id) = open {
                    let command = if approve {
                        WalletCommand::ApproveWithdrawal {
                            withdrawal_id,
                            by: admin(),
                            now,
                        }
                    } else {
                        WalletCommand::RejectWithdrawal {
                            withdrawal_id,
                            by: admin(),
                            reason: "开户名不符 / account name mismatch".into(),
                            now,
                        }
                    };
                    assert!(self.wallet(worker, command));
                }
            }
            Step::DisputeRefund { order, amount } => {
                let refund_id = self.next_id();
                let refunded = self.pay(
                    order,
                    PaymentCommand::RefundAfterRelease {
                        refund_id,
                        amount: Fen::literal(amount),
                        reason: "争议 / dispute".into(),
                        by: admin(),
                        now,
                    },
                );
                if refunded {
                    let Some(Logged::Payment(PaymentEvent::RefundClawedBack {
                        worker_id: owed_by,
                        from_worker,
                        from_commission,
                        ..
                    })) = self.log.last().cloned()
                    else {
                        panic!("a dispute refund records its split")
                    };
                    assert_eq!(from_worker.get() + from_commission.get(), amount);
                    let worker = (owed_by.as_u128() - 0xA000) as usize;
                    let recover = WalletCommand::Recover {
                        refund_id,
                        order_id: Uuid::from_u128(order as u128),
                        amount: from_worker,
                        now,
                    };
                    // Too little income: the debt stays in dispute recoveries.
                    if self.wallet(worker, recover.clone()) {
                        let before = self.log.len();
                        assert!(self.wallet(worker, recover), "a repeat is accepted");
                        assert_eq!(self.log.len(), before, "and takes nothing more");
                    }
                }
            }
            Step::Payout { worker, succeeded } => {
                let approved = self.wallets[worker]
                    .withdrawals
                    .iter()
                    .find(|withdrawal| withdrawal.status == WithdrawalStatus::Approved)
                    .map(|withdrawal| withdrawal.withdrawal_id);
                if let Some(withdrawal_id) = approved {
                    assert!(self.wallet(
                        worker,
                        WalletCommand::RecordPayout {
                            withdrawal_id,
                            succeeded,
                            bank_reference: format!("bank-{withdrawal_id}"),
                            now,
                        },
                    ));
                    // The bank answering twice never pays twice.
                    let before = self.log.len();
                    assert!(self.wallet(
                        worker,
                        WalletCommand::RecordPayout {
                            withdrawal_id,
                            succeeded: true,
                            bank_reference: format!("bank-{withdrawal_id}"),
                            now,
                        },
                    ));
                    assert_eq!(self.log.len(), before);
                }
            }
        }
    }

    fn check(&self) {
        assert_eq!(self.ledger.trial_balance(), 0, "money is conserved");
        for (account, balance) in self.ledger.balances() {
            assert!(balance >= 0, "{account} is {balance}");
        }
        let escrow: i64 = self.payments.iter().map(|payment| payment.in_escrow).sum();
        assert_eq!(self.ledger.balance(Account::PlatformEscrow), escrow);
        let owed: i64 = self
            .payments
            .iter()
            .flat_map(|payment| payment.pending_refunds.iter().map(|(_, amount)| amount))
            .sum();
        assert_eq!(self.ledger.balance(Account::RefundsPayable), owed);
        for (index, wallet) in self.wallets.iter().enumerate() {
            let worker = worker_id(index);
            assert_eq!(
                self.ledger.balance(Account::WorkerPending(worker)),
                wallet.pending_total()
            );
            assert_eq!(
                self.ledger.balance(Account::WorkerAvailable(worker)),
                wallet.available
            );
            assert_eq!(
                self.ledger.balance(Account::WithdrawalsInTransit(worker)),
                wallet.in_transit
            );
        }
        let mut still_owed = 0;
        for logged in &self.log {
            match logged {
                Logged::Payment(PaymentEvent::RefundClawedBack { from_worker, .. }) => {
                    still_owed += from_worker.get()
                }
                Logged::Wallet(
                    _,
                    WalletEvent::DisputeRecovered {
                        from_pending,
                        from_available,
                        ..
                    },
                ) => still_owed -= from_pending.get() + from_available.get(),
                _ => {}
            }
        }
        assert_eq!(self.ledger.balance(Account::DisputeRecoveries), still_owed);
        // Money in equals money held plus money out.
        let captured: i64 = self
            .payments
            .iter()
            .filter(|payment| payment.provider_transaction.is_some())
            .map(|payment| payment.amount)
            .sum();
        let refunded: i64 = self.payments.iter().map(|payment| payment.refunded).sum();
        let paid_out: i64 = self
            .wallets
            .iter()
            .flat_map(|wallet| wallet.withdrawals.iter())
            .filter(|withdrawal| withdrawal.status == WithdrawalStatus::Paid)
            .map(|withdrawal| withdrawal.amount)
            .sum();
        assert_eq!(
            self.ledger.balance(Account::CustomerPaymentsClearing),
            captured - refunded - paid_out
        );
    }

    /// The ledger folded again from the event log alone.
    fn rebuilt(&self) -> Ledger {
        let mut ledger = Ledger::default();
        for logged in &self.log {
            let postings = match logged {
                Logged::Payment(event) => Payment::postings(event),
                Logged::Wallet(worker, event) => Wallet::postings(*worker, event),
            };
            for posting in postings {
                ledger.post(&posting);
            }
        }
        ledger
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn money_is_conserved_balanced_never_negative_and_rebuildable(steps in prop::collection::vec(step(), 1..120)) {
        let mut world = World::new();
        for step in steps {
            world.run(step);
            world.check();
        }
        prop_assert_eq!(world.rebuilt(), world.ledger.clone());
    }
}

#[test]
fn a_full_round_trip_settles_and_pays_out_exactly_the_workers_share() {
    let mut world = World::new();
    for step in [
        Step::Pay {
            order: 0,
            amount: 15_000,
        },
        Step::Complete {
            order: 0,
            worker: 0,
            commission_bp: 2_000,
        },
        Step::Settle { worker: 0 },
        Step::Wait { hours: 24 * 7 },
        Step::Settle { worker: 0 },
        Step::Withdraw {
            worker: 0,
            amount: 12_000,
        },
        Step::Review {
            worker: 0,
            approve: true,
        },
        Step::Payout {
            worker: 0,
            succeeded: true,
        },
    ] {
        world.run(step);
        world.check();
    }
    assert_eq!(world.ledger.balance(Account::CommissionRevenue), 3_000);
    assert_eq!(
        world.ledger.balance(Account::CustomerPaymentsClearing),
        3_000
    );
    assert_eq!(world.wallets[0].available, 0);
}

#[test]
fn the_random_sequences_reach_every_kind_of_money_movement() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = prop::collection::vec(step(), 1..120);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..1_000 {
        let steps = strategy
            .new_tree(&mut runner)
            .expect("a sequence")
            .current();
        let mut world = World::new();
        for step in steps {
            world.run(step);
        }
        for logged in &world.log {
            seen.insert(match logged {
                Logged::Payment(event) => cqrs_es::DomainEvent::event_type(event),
                Logged::Wallet(_, event) => cqrs_es::DomainEvent::event_type(event),
            });
        }
    }
    for kind in [
        "PaymentCaptured",
        "RefundIssued",
        "RefundCompleted",
        "EscrowReleased",
        "IncomeSettled",
        "WithdrawalRequested",
        "WithdrawalRejected",
        "PayoutSucceeded",
        "PayoutFailed",
        "RefundClawedBack",
        "DisputeRecovered",
    ] {
        assert!(seen.contains(kind), "no sequence reached {kind}: {seen:?}");
    }
}
