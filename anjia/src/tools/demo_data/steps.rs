//! The steps of the generated history, each given to the aggregate it concerns as the real command
//! would be: registering, onboarding, placing, paying, dispatching, serving, reviewing, cancelling
//! with refunds, settling, and the presence of whoever acted.

use super::*;

mod people;

use self::people::*;

/// A unit price and quantity for a service, and the booking's length in minutes.
fn price(random: &mut Random, service: ServiceCode) -> (i64, u32, u32) {
    let spec = service.spec();
    let low = spec.min_unit_price.get();
    let high = spec.max_unit_price.get();
    // Prices in whole yuan, leaning to the lower half of the range.
    let unit = (low + ((high - low) as f64 * random.unit() * random.unit()) as i64) / 100 * 100;
    let unit = unit.clamp(low, high);
    match spec.pricing_unit {
        domain::PricingUnit::PerHour => {
            let shortest = spec.min_duration_minutes.div_ceil(60).max(1);
            let longest = (spec.max_duration_minutes / 60).max(shortest);
            let hours = (shortest + random.below(3) as u32).min(longest);
            (unit, hours, hours * 60)
        }
        domain::PricingUnit::PerVisit => (unit, 1, spec.typical_duration_minutes),
        domain::PricingUnit::PerTerm26Days => (unit, 1, spec.typical_duration_minutes),
    }
}

/// Stars around `mean`, 1 to 5.
fn stars(random: &mut Random, mean: f64) -> u8 {
    (mean + random.normal() * 0.55).round().clamp(1.0, 5.0) as u8
}

impl Simulation<'_> {
    /// Does one step at its moment.
    pub(super) async fn step(&mut self, at: DateTime<Utc>, step: Step) -> anyhow::Result<()> {
        let today = business_day(at);
        if self.presence_day != Some(today) {
            self.presence.clear();
            self.presence_day = Some(today);
        }
        match step {
            Step::RegisterCustomer(index) => self.register_customer(at, index).await,
            Step::OnboardWorker(index) => self.onboard_worker(at, index).await,
            Step::Place(index) => self.place(at, index).await,
            Step::Expire(id) => self.expire(at, id).await,
            Step::Pay(id) => self.pay(at, id).await,
            Step::Capture(id) => self.capture(at, id).await,
            Step::Cancel(id) => self.cancel(at, id).await,
            Step::CompleteRefund(payment_id, refund_id) => {
                self.complete_refund(at, payment_id, refund_id).await
            }
            Step::Dispatch(id) => self.dispatch(at, id).await,
            Step::Accept(id) => self.accept(at, id).await,
            Step::Online(index) => self.online(at, index, true).await,
            Step::Offline(index) => self.online(at, index, false).await,
            Step::Depart(id) => self.depart(at, id).await,
            Step::Arrive(id) => self.arrive(at, id).await,
            Step::Start(id) => self.start(at, id).await,
            Step::Finish(id) => self.finish(at, id).await,
            Step::Review(id) => self.review(at, id).await,
            Step::DefaultReview(id) => self.default_review(at, id).await,
            Step::Settle(index) => self.settle(at, index).await,
        }
    }

    async fn register_customer(&mut self, at: DateTime<Utc>, index: usize) -> anyhow::Result<()> {
        let customer = &mut self.customers[index];
        let id = customer.stream.id;
        let sealed = self
            .state
            .vault
            .seal_all(id, &[&name(&mut self.random), &phone(&mut self.random)])
            .await
            .map_err(|error| anyhow::anyhow!("sealing: {error}"))?;
        let actor = Some(Actor {
            id,
            role: Role::Customer,
        });
        must!(
            customer.stream,
            &mut self.log,
            &mut self.random,
            actor,
            at,
            CustomerCommand::Register {
                customer_id: id,
                name: sealed[0].clone(),
                phone: Some(sealed[1].clone()),
                now: at,
            }
        );
        must!(
            customer.stream,
            &mut self.log,
            &mut self.random,
            actor,
            at,
            CustomerCommand::AddAddress {
                address_id: self.random.uuid(),
                label: "家 / home".to_owned(),
                address: customer.address.clone(),
                now: at,
            }
        );
        seen(
            &mut self.presence,
            &mut self.log,
            &mut self.random,
            (id, Role::Customer),
            at,
            Seen::SignIn,
        )
        .await?;
        Ok(())
    }

    async fn onboard_worker(&mut self, at: DateTime<Utc>, index: usize) -> anyhow::Result<()> {
        let skills = onboard(
            self.state,
            &mut self.workers[index],
            &mut self.log,
            &mut self.random,
            self.admin,
            at,
        )
        .await?;
        for service in skills {
            self.by_city_and_service
                .entry((self.workers[index].city, service))
                .or_default()
                .push(index);
        }
        Ok(())
    }

    async fn place(&mut self, at: DateTime<Utc>, index: usize) -> anyhow::Result<()> {
        let (customer_index, _) = self.planned[index];
        let customer = &self.customers[customer_index];
        let id = self.random.uuid();
        let service = self.random.weighted(&SERVICE_MIX);
        let (unit, quantity, minutes) = price(&mut self.random, service);
        // Services start one to six days later, in working hours, ending by 19:00.
        let day = business_day(at) + Duration::days(1 + self.random.below(6) as i64);
        let latest = if minutes >= 24 * 60 {
            10
        } else {
            (19 - minutes.div_ceil(60)).max(8)
        };
        let start = local_instant(
            day,
            NaiveTime::from_hms_opt(8 + self.random.below(u64::from(latest - 7)) as u32, 0, 0)
                .expect("a time"),
        );
        let booking = Booking {
            customer_id: customer.stream.id,
            service,
            unit_price: Fen::literal(unit),
            quantity,
            scheduled_start: start,
            duration_minutes: minutes,
            address: customer.address.clone(),
            note: None,
            preferred_worker: None,
        };
        let pay_by = at + self.state.dispatch.hold;
        let actor = customer_actor(customer.stream.id);
        seen(
            &mut self.presence,
            &mut self.log,
            &mut self.random,
            (customer.stream.id, Role::Customer),
            at - Duration::minutes(3),
            Seen::AppOpen,
        )
        .await?;
        let mut stream: Stream<Order> = Stream::new(id);
        must!(
            stream,
            &mut self.log,
            &mut self.random,
            actor,
            at,
            OrderCommand::Place {
                order_id: id,
                booking,
                pay_by: Some(pay_by),
                now: at,
            }
        );
        let fate = match self.random.unit() {
            roll if roll < 0.07 => Fate::Unpaid,
            roll if roll < 0.12 => Fate::CancelledAfterPayment,
            _ => Fate::Served,
        };
        let total = stream.state.total.map_or(0, Fen::get);
        let location = customer.point;
        self.orders.insert(
            id,
            DemoOrder {
                stream,
                payment: None,
                customer: customer_index,
                worker: None,
                service,
                total,
                start,
                end: start + Duration::minutes(i64::from(minutes)),
                location,
                fate,
                method: self.random.weighted(&[
                    (PaymentMethod::Alipay, 50),
                    (PaymentMethod::WechatPay, 42),
                    (PaymentMethod::BankCard, 8),
                ]),
            },
        );
        self.report.orders += 1;
        if fate == Fate::Unpaid {
            self.queue
                .push(pay_by + Duration::minutes(1), Step::Expire(id));
        } else {
            self.queue
                .push(at + self.random.minutes(1, 20), Step::Pay(id));
        }
        Ok(())
    }

    async fn expire(&mut self, at: DateTime<Utc>, id: Uuid) -> anyhow::Result<()> {
        let mut order = self.orders.remove(&id).expect("an order");
        must!(
            order.stream,
            &mut self.log,
            &mut self.random,
            None,
            at,
            OrderCommand::ExpireUnpaid { now: at }
        );
        self.report.cancelled += 1;
        Ok(())
    }

    async fn pay(&mut self, at: DateTime<Utc>, id: Uuid) -> anyhow::Result<()> {
        let order = self.orders.get_mut(&id).expect("an order");
        let customer = self.customers[order.customer].stream.id;
        let payment_id = self.random.uuid();
        let mut payment: Stream<Payment> = Stream::new(payment_id);
        must!(
            payment,
            &mut self.log,
            &mut self.random,
            customer_actor(customer),
            at,
            PaymentCommand::Create {
                payment_id,
                order_id: id,
                customer_id: customer,
                amount: Fen::literal(order.total),
                method: order.method,
                provider: order.method.as_str().to_owned(),
                now: at,
            }
        );
        order.payment = Some(payment);
        self.queue
            .push(at + self.random.minutes(1, 5), Step::Capture(id));
        Ok(())
    }

    async fn capture(&mut self, at: DateTime<Utc>, id: Uuid) -> anyhow::Result<()> {
        let order = self.orders.get_mut(&id).expect("an order");
        let payment = order.payment.as_mut().expect("a payment");
        let transaction = format!("DEMO{}", payment.id.simple());
        must!(
            payment,
            &mut self.log,
            &mut self.random,
            None,
            at,
            PaymentCommand::Capture {
                provider_transaction: transaction.clone(),
                amount: Fen::literal(order.total),
                currency: "CNY".to_owned(),
                now: at,
            }
        );
        must!(
            order.stream,
            &mut self.log,
            &mut self.random,
            None,
            at,
            OrderCommand::RecordPayment {
                payment_reference: transaction,
                amount: Fen::literal(order.total),
                now: at,
            }
        );
        let stage = self.state.dispatch.first_open_stage(order.service);
        must!(
            order.stream,
            &mut self.log,
            &mut self.random,
            None,
            at,
            OrderCommand::OpenDispatch {
                stage: Some(stage),
                deadline: self.state.dispatch.deadline(stage, at),
                now: at,
            }
        );
        self.report.paid += 1;
        if order.fate == Fate::CancelledAfterPayment {
            self.queue
                .push(at + self.random.minutes(2, 25), Step::Cancel(id));
        } else {
            self.queue
                .push(at + self.random.minutes(1, 40), Step::Dispatch(id));
        }
        Ok(())
    }

    async fn cancel(&mut self, at: DateTime<Utc>, id: Uuid) -> anyhow::Result<()> {
        let mut order = self.orders.remove(&id).expect("an order");
        let customer = self.customers[order.customer].stream.id;
        let actor = Actor {
            id: customer,
            role: Role::Customer,
        };
        let reason = *self.random.pick(&[
            "计划有变 / plans changed",
            "时间不合适 / the time does not suit",
            "已找到其他服务 / found another service",
        ]);
        cancel_and_refund(
            &mut order,
            &mut self.log,
            &mut self.random,
            &mut self.queue,
            &mut self.refunding,
            actor,
            reason,
            at,
        )
        .await?;
        self.report.cancelled += 1;
        self.report.refunded += 1;
        Ok(())
    }

    async fn complete_refund(
        &mut self,
        at: DateTime<Utc>,
        payment_id: Uuid,
        refund_id: Uuid,
    ) -> anyhow::Result<()> {
        let mut payment = self
            .refunding
            .remove(&payment_id)
            .expect("a refund under way");
        must!(
            payment,
            &mut self.log,
            &mut self.random,
            None,
            at,
            PaymentCommand::CompleteRefund {
                refund_id,
                provider_refund: format!("DEMOREFUND{}", refund_id.simple()),
                now: at,
            }
        );
        Ok(())
    }

    async fn dispatch(&mut self, at: DateTime<Utc>, id: Uuid) -> anyhow::Result<()> {
        let order = self.orders.get_mut(&id).expect("an order");
        let stage = order.stream.state.stage;
        // Workers of the city with the skill, tried in a random order until one is free.
        let candidates = self
            .by_city_and_service
            .get(&(order_city(&self.customers, order), order.service))
            .map_or(&[][..], Vec::as_slice);
        let mut chosen = None;
        for attempt in 0..candidates.len().min(12) {
            let index = candidates[(self.random.below(candidates.len() as u64) as usize + attempt)
                % candidates.len()];
            let worker = &mut self.workers[index];
            if !worker.stream.state.registered
                || worker.stream.state.review != domain::onboarding::ReviewStatus::Approved
            {
                continue;
            }
            let booked = worker
                .stream
                .run(
                    &mut self.log,
                    &mut self.random,
                    None,
                    at,
                    WorkerCommand::Book {
                        order_id: id,
                        start: order.start,
                        end: order.end,
                        location: Some(order.location),
                        now: at,
                    },
                )
                .await;
            if booked.is_ok() {
                chosen = Some(index);
                break;
            }
        }
        let Some(index) = chosen else {
            // Nobody free: the desk cancels and refunds, as it would.
            let mut order = self.orders.remove(&id).expect("an order");
            cancel_and_refund(
                &mut order,
                &mut self.log,
                &mut self.random,
                &mut self.queue,
                &mut self.refunding,
                self.admin,
                "暂无可用服务人员 / no worker was available",
                at,
            )
            .await?;
            self.report.cancelled += 1;
            self.report.refunded += 1;
            return Ok(());
        };
        let worker = &self.workers[index];
        let facts = worker
            .stream
            .state
            .facts(worker.stream.id, business_day(at));
        let worker_actor = Actor {
            id: worker.stream.id,
            role: Role::Worker,
        };
        order.worker = Some(index);
        if stage == Some(DispatchStage::Grab) {
            must!(
                order.stream,
                &mut self.log,
                &mut self.random,
                Some(worker_actor),
                at,
                OrderCommand::Grab {
                    worker: facts,
                    now: at
                }
            );
            self.queue
                .push(order.start - Duration::minutes(50), Step::Depart(id));
        } else {
            must!(
                order.stream,
                &mut self.log,
                &mut self.random,
                None,
                at,
                OrderCommand::AssignWorker {
                    worker: facts,
                    by: Actor::system(),
                    respond_by: Some(at + self.state.dispatch.accept_within),
                    score: None,
                    now: at,
                }
            );
            let within = self.state.dispatch.accept_within.num_minutes().max(2);
            self.queue
                .push(at + self.random.minutes(1, within - 1), Step::Accept(id));
        }
        let service_day = business_day(order.start);
        if order.end - order.start < Duration::hours(24) {
            self.queue.push(
                local_instant(
                    service_day,
                    NaiveTime::from_hms_opt(7, 30, 0).expect("a time"),
                ),
                Step::Online(index),
            );
            self.queue.push(
                local_instant(
                    service_day,
                    NaiveTime::from_hms_opt(20, 0, 0).expect("a time"),
                ),
                Step::Offline(index),
            );
        }
        Ok(())
    }

    /// The order's worker gives it the command `command` makes of their id (opening the app
    /// first when `with_app` says so); answers the worker's id.
    async fn by_worker(
        &mut self,
        at: DateTime<Utc>,
        id: Uuid,
        with_app: bool,
        command: impl FnOnce(Uuid, &DemoOrder) -> OrderCommand,
    ) -> anyhow::Result<Uuid> {
        let order = self.orders.get_mut(&id).expect("an order");
        let worker_id = self.workers[order.worker.expect("assigned")].stream.id;
        if with_app {
            seen(
                &mut self.presence,
                &mut self.log,
                &mut self.random,
                (worker_id, Role::Worker),
                at,
                Seen::AppOpen,
            )
            .await?;
        }
        let command = command(worker_id, order);
        must!(
            order.stream,
            &mut self.log,
            &mut self.random,
            worker_actor(worker_id),
            at,
            command
        );
        Ok(worker_id)
    }

    async fn accept(&mut self, at: DateTime<Utc>, id: Uuid) -> anyhow::Result<()> {
        self.by_worker(at, id, true, |worker_id, _| OrderCommand::Accept {
            worker_id,
            now: at,
        })
        .await?;
        let start = self.orders[&id].start;
        self.queue
            .push(start - Duration::minutes(50), Step::Depart(id));
        Ok(())
    }

    /// The worker goes online (once a day) or offline (if online).
    async fn online(
        &mut self,
        at: DateTime<Utc>,
        index: usize,
        online: bool,
    ) -> anyhow::Result<()> {
        let worker = &mut self.workers[index];
        let day = business_day(at);
        let command = if online && worker.online_day != Some(day) {
            worker.online_day = Some(day);
            WorkerCommand::GoOnline { now: at }
        } else if !online && worker.stream.state.online {
            WorkerCommand::GoOffline { now: at }
        } else {
            return Ok(());
        };
        let actor = worker_actor(worker.stream.id);
        must!(
            worker.stream,
            &mut self.log,
            &mut self.random,
            actor,
            at,
            command
        );
        Ok(())
    }

    async fn depart(&mut self, at: DateTime<Utc>, id: Uuid) -> anyhow::Result<()> {
        self.by_worker(at, id, true, |worker_id, _| OrderCommand::Depart {
            worker_id,
            now: at,
        })
        .await?;
        let start = self.orders[&id].start;
        self.queue
            .push(start - self.random.minutes(3, 15), Step::Arrive(id));
        Ok(())
    }

    async fn arrive(&mut self, at: DateTime<Utc>, id: Uuid) -> anyhow::Result<()> {
        self.by_worker(at, id, false, |worker_id, order| OrderCommand::Arrive {
            worker_id,
            position: Some(order.location),
            destination: Some(order.location),
            now: at,
        })
        .await?;
        let start = self.orders[&id].start;
        self.queue
            .push(start + self.random.minutes(0, 5), Step::Start(id));
        Ok(())
    }

    async fn start(&mut self, at: DateTime<Utc>, id: Uuid) -> anyhow::Result<()> {
        self.by_worker(at, id, false, |worker_id, _| OrderCommand::StartService {
            worker_id,
            now: at,
        })
        .await?;
        let order = &self.orders[&id];
        let length = order.end - order.start;
        self.queue
            .push(at + length + self.random.minutes(-10, 10), Step::Finish(id));
        Ok(())
    }

    async fn finish(&mut self, at: DateTime<Utc>, id: Uuid) -> anyhow::Result<()> {
        let order = self.orders.get_mut(&id).expect("an order");
        let index = order.worker.expect("assigned");
        let worker = &mut self.workers[index];
        let worker_id = worker.stream.id;
        let actor = worker_actor(worker_id);
        must!(
            order.stream,
            &mut self.log,
            &mut self.random,
            actor,
            at,
            OrderCommand::FinishService { worker_id, now: at }
        );
        self.report.completed += 1;
        // The money process manager: release the escrow, record the worker's income.
        let booked_at = order.stream.state.placed_at.unwrap_or(at);
        let payment = order.payment.as_mut().expect("a payment");
        must!(
            payment,
            &mut self.log,
            &mut self.random,
            None,
            at,
            PaymentCommand::Release {
                worker_id,
                commission_bp: self
                    .schedule
                    .rate_at(order.service, worker.level, booked_at),
                now: at,
            }
        );
        if let Some((to, share)) = payment.state.released_to {
            let settles_at = at + self.state.money.settlement_period;
            must!(
                worker.wallet,
                &mut self.log,
                &mut self.random,
                None,
                at,
                WalletCommand::RecordIncome {
                    worker_id: to,
                    order_id: id,
                    amount: Fen::literal(share),
                    kind: domain::wallet::IncomeKind::Service,
                    settles_at,
                    now: at,
                }
            );
            self.queue
                .push(settles_at + Duration::minutes(5), Step::Settle(index));
        }
        if self.random.chance(0.78) {
            self.queue
                .push(at + self.random.minutes(10, 60 * 60), Step::Review(id));
        } else {
            self.queue.push(
                at + self.state.reviews.window + Duration::minutes(30),
                Step::DefaultReview(id),
            );
        }
        Ok(())
    }

    async fn review(&mut self, at: DateTime<Utc>, id: Uuid) -> anyhow::Result<()> {
        let mut order = self.orders.remove(&id).expect("an order");
        let worker = &self.workers[order.worker.expect("assigned")];
        let customer = self.customers[order.customer].stream.id;
        let mean = match worker.falls_from {
            Some(from) if at >= from => worker.mean - 1.3,
            _ => worker.mean,
        };
        let (quality, attitude, skill) = (
            stars(&mut self.random, mean),
            stars(&mut self.random, mean + 0.1),
            stars(&mut self.random, mean - 0.1),
        );
        let good = u32::from(quality) + u32::from(attitude) + u32::from(skill) >= 12;
        let tags: Vec<String> = domain::review::TAGS
            .iter()
            .filter(|tag| tag.positive == good)
            .filter(|_| self.random.chance(0.3))
            .take(2)
            .map(|tag| tag.code.to_owned())
            .collect();
        let comment = if good {
            *self.random.pick(&[
                "非常满意，下次还约 / very happy, will book again",
                "认真仔细 / careful and thorough",
                "",
            ])
        } else {
            *self.random.pick(&[
                "迟到了 / came late",
                "打扫得不够干净 / not clean enough",
                "",
            ])
        };
        seen(
            &mut self.presence,
            &mut self.log,
            &mut self.random,
            (customer, Role::Customer),
            at,
            Seen::AppOpen,
        )
        .await?;
        must!(
            order.stream,
            &mut self.log,
            &mut self.random,
            customer_actor(customer),
            at,
            OrderCommand::Review {
                customer_id: customer,
                quality,
                attitude,
                skill,
                comment: comment.to_owned(),
                tags,
                window: self.state.reviews.window,
                now: at,
            }
        );
        self.report.reviewed += 1;
        Ok(())
    }

    async fn default_review(&mut self, at: DateTime<Utc>, id: Uuid) -> anyhow::Result<()> {
        let mut order = self.orders.remove(&id).expect("an order");
        if self.state.reviews.default_positive {
            must!(
                order.stream,
                &mut self.log,
                &mut self.random,
                None,
                at,
                OrderCommand::DefaultReview {
                    window: self.state.reviews.window,
                    now: at
                }
            );
            self.report.default_reviews += 1;
        }
        Ok(())
    }

    async fn settle(&mut self, at: DateTime<Utc>, index: usize) -> anyhow::Result<()> {
        let worker = &mut self.workers[index];
        must!(
            worker.wallet,
            &mut self.log,
            &mut self.random,
            None,
            at,
            WalletCommand::Settle { now: at }
        );
        Ok(())
    }
}

fn order_city(customers: &[DemoCustomer], order: &DemoOrder) -> usize {
    customers[order.customer].city
}

/// Cancels a paid order and refunds it in full; the refund completes a few minutes later.
#[allow(clippy::too_many_arguments)]
async fn cancel_and_refund(
    order: &mut DemoOrder,
    log: &mut Log,
    random: &mut Random,
    queue: &mut Queue,
    refunding: &mut HashMap<Uuid, Stream<Payment>>,
    by: Actor,
    reason: &str,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let mut payment = order.payment.take().expect("a paid order has its payment");
    let settlement = CancellationSettlement {
        payment_id: payment.id,
        refund: Fen::literal(order.total),
        fee: Fen::ZERO,
        to_worker: None,
    };
    must!(
        order.stream,
        log,
        random,
        Some(by),
        at,
        OrderCommand::Cancel {
            by,
            reason: reason.to_owned(),
            settlement: Some(settlement),
            now: at,
        }
    );
    let refund_id = settlement.refund_id(order.stream.id);
    must!(
        payment,
        log,
        random,
        None,
        at,
        PaymentCommand::Refund {
            refund_id,
            amount: Fen::literal(order.total),
            fee: Fen::ZERO,
            fee_to_worker: None,
            reason: reason.to_owned(),
            by,
            now: at,
        }
    );
    queue.push(
        at + random.minutes(1, 30),
        Step::CompleteRefund(payment.id, refund_id),
    );
    refunding.insert(payment.id, payment);
    Ok(())
}
