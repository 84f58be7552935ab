//! Given/when/then tests of the `Order` aggregate.

use cqrs_es::Aggregate;
use std::collections::HashSet;

use chrono::{TimeDelta, TimeZone};
use cqrs_es::test::TestFramework;

use super::*;
use crate::values::{CoordinateSystem, GeoPoint, Sealed};

type OrderTester = TestFramework<Order>;

const ORDER_ID: Uuid = Uuid::from_u128(0x0100);
const CUSTOMER_ID: Uuid = Uuid::from_u128(0x0c01);
const OTHER_CUSTOMER_ID: Uuid = Uuid::from_u128(0x0c02);
const WORKER_ID: Uuid = Uuid::from_u128(0x0a01);
const OTHER_WORKER_ID: Uuid = Uuid::from_u128(0x0a02);
const ADMIN_ID: Uuid = Uuid::from_u128(0x0ad1);

/// Daily cleaning at ¥50.00 an hour, for three hours.
const UNIT_PRICE: Fen = Fen::literal(5_000);
const QUANTITY: u32 = 3;
const TOTAL: Fen = Fen::literal(15_000);
const PAYMENT_REFERENCE: &str = "wx-4200001234202503010001";

// Minutes after placement at which each step of the happy path happens.
const PAID: i64 = 5;
const PAY_BY: i64 = 15;
const DISPATCH_OPENED: i64 = 6;
const ASSIGNED: i64 = 10;
const ANSWERED: i64 = 15;
const DEPARTED: i64 = 2 * 24 * 60 - 60;
const ARRIVED: i64 = 2 * 24 * 60 - 5;
const STARTED: i64 = 2 * 24 * 60;
const FINISHED: i64 = 2 * 24 * 60 + 180;
const REVIEWED: i64 = 3 * 24 * 60;
const CANCELLED: i64 = 30;
const DISPUTED: i64 = 2 * 24 * 60 + 60;

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0)
        .single()
        .expect("a valid instant")
}

fn later(minutes: i64) -> DateTime<Utc> {
    now() + TimeDelta::minutes(minutes)
}

fn customer() -> Actor {
    Actor {
        id: CUSTOMER_ID,
        role: Role::Customer,
    }
}

fn other_customer() -> Actor {
    Actor {
        id: OTHER_CUSTOMER_ID,
        role: Role::Customer,
    }
}

fn admin() -> Actor {
    Actor {
        id: ADMIN_ID,
        role: Role::Admin,
    }
}

fn system() -> Actor {
    Actor {
        id: Uuid::nil(),
        role: Role::System,
    }
}

fn assigned_worker_as_actor() -> Actor {
    Actor {
        id: WORKER_ID,
        role: Role::Worker,
    }
}

/// A stand-in for a value the vault sealed; the domain never looks inside.
fn sealed(label: &str) -> Sealed {
    Sealed::from_ciphertext(format!("v1.{}.{label}", Uuid::nil()))
}

/// Where the test address is.
fn home() -> GeoPoint {
    GeoPoint::new(31.2304, 121.4737, CoordinateSystem::Gcj02).expect("in range")
}

fn address() -> Address {
    let location = crate::values::SealedPoint::new(&home(), sealed("location"));
    Address {
        city: "上海市".to_owned(),
        district: "浦东新区".to_owned(),
        detail: sealed("detail"),
        contact_name: sealed("contact-name"),
        contact_phone: sealed("phone"),
        location: Some(location),
    }
}

fn booking() -> Booking {
    Booking {
        customer_id: CUSTOMER_ID,
        service: ServiceCode::DailyCleaning,
        unit_price: UNIT_PRICE,
        quantity: QUANTITY,
        scheduled_start: later(STARTED),
        duration_minutes: 180,
        address: address(),
        note: Some(Sealed::from_ciphertext("v1.note".to_owned())),
        preferred_worker: None,
    }
}

fn eligible_worker(worker_id: Uuid) -> WorkerFacts {
    WorkerFacts {
        worker_id,
        registered: true,
        active: true,
        approved: true,
        skills: vec![ServiceCode::DeepCleaning, ServiceCode::DailyCleaning],
    }
}

/// Folds events into an order, as the event store does on load.
fn fold(events: impl IntoIterator<Item = OrderEvent>) -> Order {
    let mut order = Order::default();
    for event in events {
        order.apply(event);
    }
    order
}

// Commands ------------------------------------------------------------------------------------

fn place(booking: Booking) -> OrderCommand {
    OrderCommand::Place {
        order_id: ORDER_ID,
        booking,
        pay_by: Some(later(PAY_BY)),
        now: now(),
    }
}

fn record_payment(amount: Fen) -> OrderCommand {
    OrderCommand::RecordPayment {
        payment_reference: PAYMENT_REFERENCE.to_owned(),
        amount,
        now: later(PAID),
    }
}

fn open_dispatch() -> OrderCommand {
    OrderCommand::OpenDispatch {
        stage: Some(DispatchStage::Grab),
        deadline: Some(later(GRAB_UNTIL)),
        now: later(DISPATCH_OPENED),
    }
}

fn assign(worker: WorkerFacts) -> OrderCommand {
    OrderCommand::AssignWorker {
        worker,
        by: admin(),
        respond_by: None,
        score: None,
        now: later(ASSIGNED),
    }
}

fn accept(worker_id: Uuid) -> OrderCommand {
    OrderCommand::Accept {
        worker_id,
        now: later(ANSWERED),
    }
}

fn decline(worker_id: Uuid, reason: &str) -> OrderCommand {
    OrderCommand::Decline {
        worker_id,
        reason: reason.to_owned(),
        now: later(ANSWERED),
    }
}

fn depart(worker_id: Uuid) -> OrderCommand {
    OrderCommand::Depart {
        worker_id,
        now: later(DEPARTED),
    }
}

fn arrive(worker_id: Uuid) -> OrderCommand {
    OrderCommand::Arrive {
        worker_id,
        position: Some(home()),
        destination: Some(home()),
        now: later(ARRIVED),
    }
}

fn start_service(worker_id: Uuid) -> OrderCommand {
    OrderCommand::StartService {
        worker_id,
        now: later(STARTED),
    }
}

fn finish_service(worker_id: Uuid) -> OrderCommand {
    OrderCommand::FinishService {
        worker_id,
        now: later(FINISHED),
    }
}

fn review(customer_id: Uuid, quality: u8, attitude: u8, skill: u8, comment: &str) -> OrderCommand {
    OrderCommand::Review {
        customer_id,
        quality,
        attitude,
        skill,
        comment: comment.to_owned(),
        tags: vec!["punctual".into()],
        window: REVIEW_WINDOW,
        now: later(REVIEWED),
    }
}

const REVIEW_WINDOW: TimeDelta = TimeDelta::days(7);

fn default_review() -> OrderCommand {
    OrderCommand::DefaultReview {
        window: REVIEW_WINDOW,
        now: later(FINISHED) + REVIEW_WINDOW + TimeDelta::minutes(1),
    }
}

fn reply_to_review(worker_id: Uuid) -> OrderCommand {
    OrderCommand::ReplyToReview {
        worker_id,
        reply: "谢谢您的认可 / thank you".into(),
        now: later(REVIEWED + 60),
    }
}

fn hide_review() -> OrderCommand {
    OrderCommand::HideReview {
        by: admin(),
        reason: "含辱骂内容 / abusive".into(),
        now: later(REVIEWED + 120),
    }
}

fn cancel(by: Actor, reason: &str) -> OrderCommand {
    OrderCommand::Cancel {
        by,
        reason: reason.to_owned(),
        settlement: None,
        now: later(CANCELLED),
    }
}

fn dispute(by: Actor, reason: &str) -> OrderCommand {
    OrderCommand::Dispute {
        by,
        reason: reason.to_owned(),
        now: later(DISPUTED),
    }
}

fn resolve_dispute(resolution: &str) -> OrderCommand {
    OrderCommand::ResolveDispute {
        by: admin(),
        resolution: resolution.to_owned(),
        now: later(DISPUTED + 1),
    }
}

// Events --------------------------------------------------------------------------------------

fn order_placed() -> OrderEvent {
    OrderEvent::OrderPlaced {
        order_id: ORDER_ID,
        booking: booking(),
        total: TOTAL,
        placed_at: now(),
    }
}

fn payment_requested() -> OrderEvent {
    OrderEvent::PaymentRequested {
        amount: TOTAL,
        requested_at: now(),
        pay_by: Some(later(PAY_BY)),
    }
}

fn payment_recorded() -> OrderEvent {
    OrderEvent::PaymentRecorded {
        payment_reference: PAYMENT_REFERENCE.to_owned(),
        amount: TOTAL,
        paid_at: later(PAID),
    }
}

fn dispatch_opened() -> OrderEvent {
    OrderEvent::DispatchOpened {
        opened_at: later(DISPATCH_OPENED),
    }
}

fn worker_assigned(worker_id: Uuid) -> OrderEvent {
    OrderEvent::WorkerAssigned {
        worker_id,
        assigned_by: admin(),
        assigned_at: later(ASSIGNED),
        respond_by: None,
        score: None,
    }
}

fn assignment_declined(worker_id: Uuid, reason: &str) -> OrderEvent {
    OrderEvent::AssignmentDeclined {
        worker_id,
        reason: reason.to_owned(),
        declined_at: later(ANSWERED),
    }
}

fn order_accepted(worker_id: Uuid) -> OrderEvent {
    OrderEvent::OrderAccepted {
        worker_id,
        accepted_at: later(ANSWERED),
    }
}

fn worker_departed() -> OrderEvent {
    OrderEvent::WorkerDeparted {
        worker_id: WORKER_ID,
        departed_at: later(DEPARTED),
    }
}

fn worker_arrived() -> OrderEvent {
    OrderEvent::WorkerArrived {
        worker_id: WORKER_ID,
        arrived_at: later(ARRIVED),
        distance_m: Some(0),
    }
}

fn service_started() -> OrderEvent {
    OrderEvent::ServiceStarted {
        worker_id: WORKER_ID,
        started_at: later(STARTED),
    }
}

fn service_finished() -> OrderEvent {
    OrderEvent::ServiceFinished {
        worker_id: WORKER_ID,
        finished_at: later(FINISHED),
    }
}

fn order_reviewed(quality: u8, attitude: u8, skill: u8, comment: &str) -> OrderEvent {
    OrderEvent::OrderReviewed {
        quality,
        attitude,
        skill,
        comment: comment.to_owned(),
        reviewed_at: later(REVIEWED),
        tags: vec!["punctual".into()],
        by_default: false,
        worker_id: Some(WORKER_ID),
    }
}

fn order_cancelled(by: Actor, reason: &str, stage: OrderStatus) -> OrderEvent {
    OrderEvent::OrderCancelled {
        by,
        reason: reason.to_owned(),
        stage,
        cancelled_at: later(CANCELLED),
        settlement: None,
    }
}

fn order_disputed(by: Actor, reason: &str, stage: OrderStatus) -> OrderEvent {
    OrderEvent::OrderDisputed {
        by,
        reason: reason.to_owned(),
        stage,
        disputed_at: later(DISPUTED),
    }
}

/// The events that bring an order placed by `CUSTOMER_ID` and assigned to `WORKER_ID` into a state.
fn history(status: OrderStatus) -> Vec<OrderEvent> {
    use OrderStatus as S;
    let (previous, last) = match status {
        S::New => return Vec::new(),
        S::Placed => (S::New, order_placed()),
        S::AwaitingPayment => (S::Placed, payment_requested()),
        S::Paid => (S::AwaitingPayment, payment_recorded()),
        S::Dispatching => (S::Paid, dispatch_opened()),
        S::Assigned => (S::Dispatching, worker_assigned(WORKER_ID)),
        S::Accepted => (S::Assigned, order_accepted(WORKER_ID)),
        S::OnTheWay => (S::Accepted, worker_departed()),
        S::Arrived => (S::OnTheWay, worker_arrived()),
        S::InService => (S::Arrived, service_started()),
        S::Completed => (S::InService, service_finished()),
        S::Reviewed => (S::Completed, order_reviewed(5, 5, 4, "很干净")),
        S::Cancelled => (
            S::Dispatching,
            order_cancelled(customer(), "行程有变", S::Dispatching),
        ),
        S::Disputed => (
            S::InService,
            order_disputed(customer(), "打碎了花瓶", S::InService),
        ),
    };
    let mut events = history(previous);
    events.push(last);
    if status == S::Dispatching {
        // Dispatching orders in these tests are open for grabbing.
        events.push(stage_entered(DispatchStage::Grab, Some(later(GRAB_UNTIL))));
    }
    events
}

const GRAB_UNTIL: i64 = DISPATCH_OPENED + 10;
const ESCALATED: i64 = GRAB_UNTIL + 1;

fn stage_entered(stage: DispatchStage, deadline: Option<DateTime<Utc>>) -> OrderEvent {
    OrderEvent::DispatchStageEntered {
        stage,
        deadline,
        reason: "支付完成 / paid".to_owned(),
        at: later(DISPATCH_OPENED),
    }
}

fn expire_unpaid(minutes: i64) -> OrderCommand {
    OrderCommand::ExpireUnpaid {
        now: later(minutes),
    }
}

fn escalate(to: DispatchStage, minutes: i64) -> OrderCommand {
    OrderCommand::Escalate {
        to,
        deadline: None,
        reason: "无人抢单 / nobody grabbed it".to_owned(),
        now: later(minutes),
    }
}

fn grab(worker: WorkerFacts) -> OrderCommand {
    OrderCommand::Grab {
        worker,
        now: later(ASSIGNED),
    }
}

fn reassign(worker: WorkerFacts, reason: &str) -> OrderCommand {
    OrderCommand::Reassign {
        worker,
        by: admin(),
        reason: reason.to_owned(),
        now: later(ANSWERED + 5),
    }
}

/// A point about `metres` north of the address.
fn north_of_address(metres: f64) -> GeoPoint {
    let home = home();
    GeoPoint::new(
        home.latitude + metres / 111_195.0,
        home.longitude,
        home.system,
    )
    .expect("in range")
}

fn report_location(minutes: i64, seconds: i64, accuracy_m: u32) -> OrderCommand {
    OrderCommand::ReportLocation {
        worker_id: WORKER_ID,
        location: north_of_address(2_000.0),
        sealed: Sealed::from_ciphertext("v1.position".to_owned()),
        destination: Some(home()),
        accuracy_m,
        now: later(minutes) + TimeDelta::seconds(seconds),
    }
}

fn given(status: OrderStatus) -> cqrs_es::test::AggregateTestExecutor<Order> {
    OrderTester::with(()).given(history(status))
}

// ---------------------------------------------------------------------------------------------
// The state machine as a whole
// ---------------------------------------------------------------------------------------------

/// One command of each kind, each of which would be accepted in the right state.
fn one_of_every_command() -> Vec<OrderCommand> {
    vec![
        place(booking()),
        record_payment(TOTAL),
        open_dispatch(),
        assign(eligible_worker(WORKER_ID)),
        accept(WORKER_ID),
        decline(WORKER_ID, "那天不在上海"),
        expire_unpaid(PAY_BY + 1),
        escalate(DispatchStage::Auto, ESCALATED),
        grab(eligible_worker(WORKER_ID)),
        reassign(
            eligible_worker(OTHER_WORKER_ID),
            "客户要求更换 / the customer asked for another",
        ),
        report_location(DEPARTED + 1, 0, 30),
        depart(WORKER_ID),
        arrive(WORKER_ID),
        start_service(WORKER_ID),
        finish_service(WORKER_ID),
        review(CUSTOMER_ID, 5, 5, 5, "很满意"),
        cancel(customer(), "行程有变"),
        dispute(customer(), "打碎了花瓶"),
        resolve_dispute("退还部分费用 / part refunded"),
        default_review(),
        reply_to_review(WORKER_ID),
        hide_review(),
        OrderCommand::Reschedule {
            by: admin(),
            start: later(2 * 24 * 60 + 30),
            reason: "客户要求改到下午 / the customer asked for the afternoon".into(),
            now: later(1),
        },
        OrderCommand::ChangeAddress {
            by: admin(),
            address: booking().address,
            reason: "客户搬家 / the customer moved".into(),
            now: later(1),
        },
        OrderCommand::AdjustPrice {
            by: admin(),
            total: Fen::literal(TOTAL.get() - 1_000),
            reason: "少做一小时 / one hour less".into(),
            now: later(1),
        },
    ]
}

/// In `legal_transitions`: the order stays in the state it was in (no command leads to `New`).
const STAYS: OrderStatus = OrderStatus::New;

/// The transitions the module documentation promises: the states a command is accepted in,
/// and the state it leads to.
fn legal_transitions(command: &OrderCommand) -> (&'static [OrderStatus], OrderStatus) {
    use OrderStatus as S;
    match command {
        OrderCommand::Place { .. } => (&[S::New], S::AwaitingPayment),
        OrderCommand::RecordPayment { .. } => (&[S::AwaitingPayment], S::Paid),
        OrderCommand::OpenDispatch { .. } => (&[S::Paid], S::Dispatching),
        OrderCommand::AssignWorker { .. } => (&[S::Paid, S::Dispatching], S::Assigned),
        OrderCommand::Accept { .. } => (&[S::Assigned], S::Accepted),
        OrderCommand::Decline { .. } => (&[S::Assigned], S::Dispatching),
        OrderCommand::ExpireUnpaid { .. } => (&[S::AwaitingPayment], S::Cancelled),
        OrderCommand::Escalate { .. } => (&[S::Dispatching], S::Dispatching),
        OrderCommand::Grab { .. } => (&[S::Dispatching], S::Accepted),
        OrderCommand::Reassign { .. } => (&[S::Assigned, S::Accepted], S::Assigned),
        OrderCommand::ReportLocation { .. } => (&[S::OnTheWay], S::OnTheWay),
        OrderCommand::Depart { .. } => (&[S::Accepted], S::OnTheWay),
        OrderCommand::Arrive { .. } => (&[S::OnTheWay], S::Arrived),
        OrderCommand::StartService { .. } => (&[S::Arrived], S::InService),
        OrderCommand::FinishService { .. } => (&[S::InService], S::Completed),
        OrderCommand::Review { .. } => (&[S::Completed], S::Reviewed),
        OrderCommand::Cancel { .. } => (
            &[
                S::Placed,
                S::AwaitingPayment,
                S::Paid,
                S::Dispatching,
                S::Assigned,
                S::Accepted,
                S::OnTheWay,
                S::Arrived,
            ],
            S::Cancelled,
        ),
        OrderCommand::Dispute { .. } => (&[S::InService, S::Completed], S::Disputed),
        OrderCommand::ResolveDispute { .. } => (&[S::Disputed], S::Completed),
        OrderCommand::DefaultReview { .. } => (&[S::Completed], S::Reviewed),
        OrderCommand::ReplyToReview { .. } => (&[S::Reviewed], S::Reviewed),
        OrderCommand::HideReview { .. } => (&[S::Reviewed], S::Reviewed),
        OrderCommand::Reschedule { .. } | OrderCommand::ChangeAddress { .. } => (
            &[
                S::Placed,
                S::AwaitingPayment,
                S::Paid,
                S::Dispatching,
                S::Assigned,
                S::Accepted,
            ],
            STAYS,
        ),
        OrderCommand::AdjustPrice { .. } => (
            &[
                S::Placed,
                S::AwaitingPayment,
                S::Paid,
                S::Dispatching,
                S::Assigned,
                S::Accepted,
                S::OnTheWay,
                S::Arrived,
                S::InService,
            ],
            STAYS,
        ),
    }
}

#[test]
fn every_history_reaches_the_state_it_is_named_after() {
    for status in OrderStatus::ALL {
        assert_eq!(fold(history(status)).status, status);
    }
}

#[test]
fn the_command_table_holds_one_command_of_each_kind() {
    let commands = one_of_every_command();
    let verbs: HashSet<_> = commands.iter().map(OrderCommand::verb).collect();
    assert_eq!(commands.len(), 25);
    assert_eq!(
        verbs.len(),
        commands.len(),
        "verbs must be distinct: {verbs:?}"
    );
}

#[test]
fn every_command_in_every_state_is_either_a_legal_transition_or_refused_naming_the_state() {
    let mut mismatches = Vec::new();
    for state in OrderStatus::ALL {
        for command in one_of_every_command() {
            let verb = command.verb();
            let (sources, target) = legal_transitions(&command);
            let result = given(state).when(command).inspect_result();
            match (sources.contains(&state), result) {
                (true, Ok(events)) => {
                    let reached = fold(history(state).into_iter().chain(events)).status;
                    let expected = if target == STAYS { state } else { target };
                    if reached != expected {
                        mismatches.push(format!(
                            "{} in {state:?} led to {reached:?}, not {target:?}",
                            verb.1
                        ));
                    }
                }
                (true, Err(error)) => {
                    mismatches.push(format!("{} in {state:?} was refused: {error}", verb.1))
                }
                (false, Ok(events)) => {
                    mismatches.push(format!("{} in {state:?} was accepted: {events:?}", verb.1))
                }
                (false, Err(error)) => {
                    let taken = matches!(
                        state,
                        OrderStatus::Assigned
                            | OrderStatus::Accepted
                            | OrderStatus::OnTheWay
                            | OrderStatus::Arrived
                            | OrderStatus::InService
                            | OrderStatus::Completed
                            | OrderStatus::Reviewed
                    );
                    let expected = if state == OrderStatus::New {
                        OrderError::NotFound
                    } else if verb == ("抢单", "grab") && taken {
                        // A late grab is told the order is gone, whatever became of it.
                        OrderError::AlreadyTaken
                    } else {
                        OrderError::IllegalTransition { verb, state }
                    };
                    if error != expected {
                        mismatches.push(format!(
                            "{} in {state:?} was refused with {error:?}, not {expected:?}",
                            verb.1
                        ));
                    }
                }
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn the_happy_path_runs_from_placement_to_review() {
    let steps = [
        (place(booking()), vec![order_placed(), payment_requested()]),
        (record_payment(TOTAL), vec![payment_recorded()]),
        (
            open_dispatch(),
            vec![
                dispatch_opened(),
                stage_entered(DispatchStage::Grab, Some(later(GRAB_UNTIL))),
            ],
        ),
        (
            assign(eligible_worker(WORKER_ID)),
            vec![worker_assigned(WORKER_ID)],
        ),
        (accept(WORKER_ID), vec![order_accepted(WORKER_ID)]),
        (depart(WORKER_ID), vec![worker_departed()]),
        (arrive(WORKER_ID), vec![worker_arrived()]),
        (start_service(WORKER_ID), vec![service_started()]),
        (finish_service(WORKER_ID), vec![service_finished()]),
        (
            review(CUSTOMER_ID, 5, 5, 4, "很干净"),
            vec![order_reviewed(5, 5, 4, "很干净")],
        ),
    ];
    let mut so_far = Vec::new();
    for (command, expected) in steps {
        OrderTester::with(())
            .given(so_far.clone())
            .when(command)
            .then_expect_events(expected.clone());
        so_far.extend(expected);
    }
    assert_eq!(so_far, history(OrderStatus::Reviewed));
    let order = fold(so_far);
    assert_eq!(order.customer_id, Some(CUSTOMER_ID));
    assert_eq!(order.service, Some(ServiceCode::DailyCleaning));
    assert_eq!(order.total, Some(TOTAL));
    assert_eq!(order.worker_id, Some(WORKER_ID));
    assert!(order.declined_by.is_empty());
}

#[test]
fn refusal_messages_name_the_verb_and_the_state_in_both_languages() {
    let error = OrderError::IllegalTransition {
        verb: ("接单", "accept"),
        state: OrderStatus::Cancelled,
    };
    use crate::message::{Explain, Lang};
    let text = error.text();
    let message = format!("{} / {}", text.render(Lang::Zh), text.render(Lang::En));
    assert!(message.contains("已取消"), "{message}");
    assert!(message.contains("接单"), "{message}");
    assert!(
        message.contains("cannot accept an order that is cancelled"),
        "{message}"
    );
}

// ---------------------------------------------------------------------------------------------
// Placing
// ---------------------------------------------------------------------------------------------

#[test]
fn placing_a_valid_booking_records_the_order_and_requests_payment_of_the_total() {
    given(OrderStatus::New)
        .when(place(booking()))
        .then_expect_events(vec![order_placed(), payment_requested()]);
}

#[test]
fn placing_an_order_twice_is_refused() {
    given(OrderStatus::AwaitingPayment)
        .when(place(booking()))
        .then_expect_error(OrderError::IllegalTransition {
            verb: ("下单", "place"),
            state: OrderStatus::AwaitingPayment,
        });
}

#[test]
fn a_unit_price_outside_the_services_range_is_refused() {
    for price in [0, 3_499, 8_001, 1_000_000] {
        let price = Fen::new(price).expect("not negative");
        given(OrderStatus::New)
            .when(place(Booking {
                unit_price: price,
                ..booking()
            }))
            .then_expect_error(OrderError::PriceOutOfRange {
                service: "日常保洁",
                price,
                min: Fen::literal(3_500),
                max: Fen::literal(8_000),
            });
    }
}

#[test]
fn unit_prices_at_either_end_of_the_range_are_accepted() {
    for code in ServiceCode::ALL {
        let spec = code.spec();
        for price in [spec.min_unit_price, spec.max_unit_price] {
            let booking = Booking {
                service: code,
                unit_price: price,
                quantity: 1,
                duration_minutes: spec.typical_duration_minutes,
                ..booking()
            };
            let events = given(OrderStatus::New)
                .when(place(booking))
                .inspect_result();
            assert!(events.is_ok(), "{code:?} at {price}: {events:?}");
        }
    }
}

#[test]
fn a_zero_or_too_large_quantity_is_refused() {
    for quantity in [0, MAX_QUANTITY + 1, u32::MAX] {
        given(OrderStatus::New)
            .when(place(Booking {
                quantity,
                ..booking()
            }))
            .then_expect_error(OrderError::BadQuantity { max: MAX_QUANTITY });
    }
}

#[test]
fn quantities_of_one_and_of_the_maximum_are_accepted() {
    for quantity in [1, MAX_QUANTITY] {
        let total = UNIT_PRICE.times(quantity).expect("no overflow");
        let booking = Booking {
            quantity,
            ..booking()
        };
        given(OrderStatus::New)
            .when(place(booking.clone()))
            .then_expect_events(vec![
                OrderEvent::OrderPlaced {
                    order_id: ORDER_ID,
                    booking,
                    total,
                    placed_at: now(),
                },
                OrderEvent::PaymentRequested {
                    amount: total,
                    requested_at: now(),
                    pay_by: Some(later(PAY_BY)),
                },
            ]);
    }
}

#[test]
fn a_duration_outside_the_services_bounds_is_refused() {
    for minutes in [0, 119, 481, 24 * 60] {
        given(OrderStatus::New)
            .when(place(Booking {
                duration_minutes: minutes,
                ..booking()
            }))
            .then_expect_error(OrderError::BadDuration { min: 120, max: 480 });
    }
}

#[test]
fn durations_at_either_bound_are_accepted() {
    for minutes in [120, 480] {
        let events = given(OrderStatus::New)
            .when(place(Booking {
                duration_minutes: minutes,
                ..booking()
            }))
            .inspect_result();
        assert!(events.is_ok(), "{minutes} minutes: {events:?}");
    }
}

#[test]
fn a_maternity_nurse_is_booked_for_exactly_one_26_day_term_per_unit() {
    let term = 26 * 24 * 60;
    let nurse = |duration_minutes| Booking {
        service: ServiceCode::MaternityNurse,
        unit_price: Fen::literal(1_200_000),
        quantity: 1,
        duration_minutes,
        ..booking()
    };
    assert!(given(OrderStatus::New)
        .when(place(nurse(term)))
        .inspect_result()
        .is_ok());
    given(OrderStatus::New)
        .when(place(nurse(term - 1)))
        .then_expect_error(OrderError::BadDuration {
            min: term,
            max: term,
        });
}

#[test]
fn a_service_starting_now_or_in_the_past_is_refused() {
    for start in [now(), later(-1), later(-60 * 24 * 365)] {
        given(OrderStatus::New)
            .when(place(Booking {
                scheduled_start: start,
                ..booking()
            }))
            .then_expect_error(OrderError::StartInPast);
    }
}

#[test]
fn a_service_starting_a_minute_from_now_is_accepted() {
    let events = given(OrderStatus::New)
        .when(place(Booking {
            scheduled_start: later(1),
            ..booking()
        }))
        .inspect_result();
    assert!(events.is_ok(), "{events:?}");
}

/// `TotalOverflow` guards `unit_price × quantity`, but the catalogue's price ceilings and
/// `MAX_QUANTITY` keep every bookable total far below `i64::MAX`: the largest booking of every
/// service is accepted with its exact total. (The refusal itself is `Fen::times` returning
/// `None`, tested in `values`.)
#[test]
fn the_largest_booking_of_every_service_is_totalled_exactly_without_overflow() {
    for code in ServiceCode::ALL {
        let spec = code.spec();
        let booking = Booking {
            service: code,
            unit_price: spec.max_unit_price,
            quantity: MAX_QUANTITY,
            duration_minutes: spec.max_duration_minutes,
            ..booking()
        };
        let total = spec
            .max_unit_price
            .times(MAX_QUANTITY)
            .expect("fits in i64");
        given(OrderStatus::New)
            .when(place(booking.clone()))
            .then_expect_events(vec![
                OrderEvent::OrderPlaced {
                    order_id: ORDER_ID,
                    booking,
                    total,
                    placed_at: now(),
                },
                OrderEvent::PaymentRequested {
                    amount: total,
                    requested_at: now(),
                    pay_by: Some(later(PAY_BY)),
                },
            ]);
    }
}

// ---------------------------------------------------------------------------------------------
// Payment and dispatch
// ---------------------------------------------------------------------------------------------

#[test]
fn recording_a_payment_of_the_total_marks_the_order_paid() {
    given(OrderStatus::AwaitingPayment)
        .when(record_payment(TOTAL))
        .then_expect_events(vec![payment_recorded()]);
}

#[test]
fn a_payment_of_any_other_amount_is_refused() {
    for paid in [0, 1, 14_999, 15_001, 150_000] {
        let paid = Fen::new(paid).expect("not negative");
        given(OrderStatus::AwaitingPayment)
            .when(record_payment(paid))
            .then_expect_error(OrderError::AmountMismatch { paid, due: TOTAL });
    }
}

#[test]
fn recording_a_payment_twice_is_refused() {
    given(OrderStatus::Paid)
        .when(record_payment(TOTAL))
        .then_expect_error(OrderError::IllegalTransition {
            verb: ("记录支付", "record payment for"),
            state: OrderStatus::Paid,
        });
}

#[test]
fn opening_dispatch_on_a_paid_order_records_it() {
    given(OrderStatus::Paid)
        .when(open_dispatch())
        .then_expect_events(vec![
            dispatch_opened(),
            stage_entered(DispatchStage::Grab, Some(later(GRAB_UNTIL))),
        ]);
}

// ---------------------------------------------------------------------------------------------
// Assignment
// ---------------------------------------------------------------------------------------------

#[test]
fn an_eligible_worker_can_be_assigned_while_dispatching() {
    given(OrderStatus::Dispatching)
        .when(assign(eligible_worker(WORKER_ID)))
        .then_expect_events(vec![worker_assigned(WORKER_ID)]);
}

#[test]
fn an_eligible_worker_can_be_assigned_straight_after_payment() {
    given(OrderStatus::Paid)
        .when(assign(eligible_worker(WORKER_ID)))
        .then_expect_events(vec![worker_assigned(WORKER_ID)]);
}

#[test]
fn the_system_can_assign_a_worker_and_is_recorded_as_the_assigner() {
    given(OrderStatus::Dispatching)
        .when(OrderCommand::AssignWorker {
            worker: eligible_worker(WORKER_ID),
            by: system(),
            respond_by: None,
            score: None,
            now: later(ASSIGNED),
        })
        .then_expect_events(vec![OrderEvent::WorkerAssigned {
            worker_id: WORKER_ID,
            assigned_by: system(),
            assigned_at: later(ASSIGNED),
            respond_by: None,
            score: None,
        }]);
}

#[test]
fn assigning_an_unknown_worker_is_refused() {
    let unknown = WorkerFacts {
        worker_id: WORKER_ID,
        registered: false,
        active: false,
        approved: false,
        skills: vec![],
    };
    given(OrderStatus::Dispatching)
        .when(assign(unknown))
        .then_expect_error(OrderError::WorkerNotEligible(WorkerIneligibility::Unknown));
}

#[test]
fn assigning_a_suspended_worker_is_refused() {
    let suspended = WorkerFacts {
        active: false,
        ..eligible_worker(WORKER_ID)
    };
    given(OrderStatus::Dispatching)
        .when(assign(suspended))
        .then_expect_error(OrderError::WorkerNotEligible(
            WorkerIneligibility::Suspended,
        ));
}

#[test]
fn assigning_a_worker_who_has_not_passed_review_is_refused() {
    let unreviewed = WorkerFacts {
        approved: false,
        ..eligible_worker(WORKER_ID)
    };
    given(OrderStatus::Dispatching)
        .when(assign(unreviewed))
        .then_expect_error(OrderError::WorkerNotEligible(
            WorkerIneligibility::NotApproved,
        ));
}

#[test]
fn assigning_a_worker_without_the_services_skill_is_refused() {
    for skills in [
        vec![],
        vec![
            ServiceCode::Nanny,
            ServiceCode::DeepCleaning,
            ServiceCode::HomeRepair,
        ],
    ] {
        let unskilled = WorkerFacts {
            skills,
            ..eligible_worker(WORKER_ID)
        };
        given(OrderStatus::Dispatching)
            .when(assign(unskilled))
            .then_expect_error(OrderError::WorkerNotEligible(
                WorkerIneligibility::LacksSkill,
            ));
    }
}

#[test]
fn assigning_a_second_worker_to_an_assigned_order_is_refused() {
    given(OrderStatus::Assigned)
        .when(assign(eligible_worker(OTHER_WORKER_ID)))
        .then_expect_error(OrderError::IllegalTransition {
            verb: ("派单", "assign a worker to"),
            state: OrderStatus::Assigned,
        });
}

// ---------------------------------------------------------------------------------------------
// The assigned worker's answer
// ---------------------------------------------------------------------------------------------

#[test]
fn the_assigned_worker_can_accept_the_order() {
    given(OrderStatus::Assigned)
        .when(accept(WORKER_ID))
        .then_expect_events(vec![order_accepted(WORKER_ID)]);
}

#[test]
fn accepting_an_order_assigned_to_someone_else_is_refused() {
    given(OrderStatus::Assigned)
        .when(accept(OTHER_WORKER_ID))
        .then_expect_error(OrderError::NotAssignedWorker);
}

#[test]
fn the_assigned_worker_can_decline_with_a_trimmed_reason() {
    given(OrderStatus::Assigned)
        .when(decline(WORKER_ID, "  那天不在上海 \n"))
        .then_expect_events(vec![assignment_declined(WORKER_ID, "那天不在上海")]);
}

#[test]
fn declining_an_order_assigned_to_someone_else_is_refused() {
    given(OrderStatus::Assigned)
        .when(decline(OTHER_WORKER_ID, "那天不在上海"))
        .then_expect_error(OrderError::NotAssignedWorker);
}

#[test]
fn declining_without_a_reason_is_refused() {
    for reason in ["", "   ", "\n\t"] {
        given(OrderStatus::Assigned)
            .when(decline(WORKER_ID, reason))
            .then_expect_error(OrderError::ReasonRequired);
    }
}

#[test]
fn a_very_long_decline_reason_is_cut_to_500_characters() {
    let long = "忙".repeat(600);
    given(OrderStatus::Assigned)
        .when(decline(WORKER_ID, &long))
        .then_expect_events(vec![assignment_declined(WORKER_ID, &"忙".repeat(500))]);
}

#[test]
fn declining_returns_the_order_to_dispatching_and_records_who_declined() {
    let mut events = history(OrderStatus::Assigned);
    events.push(assignment_declined(WORKER_ID, "那天不在上海"));
    let order = fold(events.clone());
    assert_eq!(order.status, OrderStatus::Dispatching);
    assert_eq!(order.worker_id, None);
    assert_eq!(order.declined_by, vec![WORKER_ID]);

    events.push(worker_assigned(OTHER_WORKER_ID));
    events.push(assignment_declined(OTHER_WORKER_ID, "不会这项服务"));
    let order = fold(events);
    assert_eq!(order.status, OrderStatus::Dispatching);
    assert_eq!(order.worker_id, None);
    assert_eq!(order.declined_by, vec![WORKER_ID, OTHER_WORKER_ID]);
}

#[test]
fn after_a_decline_another_worker_can_be_assigned() {
    given(OrderStatus::Assigned)
        .and(vec![assignment_declined(WORKER_ID, "那天不在上海")])
        .when(assign(eligible_worker(OTHER_WORKER_ID)))
        .then_expect_events(vec![worker_assigned(OTHER_WORKER_ID)]);
}

#[test]
fn a_worker_who_declined_can_no_longer_accept() {
    given(OrderStatus::Assigned)
        .and(vec![assignment_declined(WORKER_ID, "那天不在上海")])
        .when(accept(WORKER_ID))
        .then_expect_error(OrderError::IllegalTransition {
            verb: ("接单", "accept"),
            state: OrderStatus::Dispatching,
        });
}

#[test]
fn a_worker_who_declined_cannot_accept_once_someone_else_is_assigned() {
    given(OrderStatus::Assigned)
        .and(vec![
            assignment_declined(WORKER_ID, "那天不在上海"),
            worker_assigned(OTHER_WORKER_ID),
        ])
        .when(accept(WORKER_ID))
        .then_expect_error(OrderError::NotAssignedWorker);
}

#[test]
fn the_newly_assigned_worker_can_accept_after_a_decline() {
    given(OrderStatus::Assigned)
        .and(vec![
            assignment_declined(WORKER_ID, "那天不在上海"),
            worker_assigned(OTHER_WORKER_ID),
        ])
        .when(accept(OTHER_WORKER_ID))
        .then_expect_events(vec![order_accepted(OTHER_WORKER_ID)]);
}

// ---------------------------------------------------------------------------------------------
// On the day
// ---------------------------------------------------------------------------------------------

/// The worker's steps on the day: the state each is taken from, the command for a worker, and
/// the event the assigned worker's command records.
type WorkerStep = fn(Uuid) -> OrderCommand;

fn on_the_day_steps() -> Vec<(OrderStatus, WorkerStep, OrderEvent)> {
    vec![
        (OrderStatus::Accepted, depart, worker_departed()),
        (OrderStatus::OnTheWay, arrive, worker_arrived()),
        (OrderStatus::Arrived, start_service, service_started()),
        (OrderStatus::InService, finish_service, service_finished()),
    ]
}

#[test]
fn the_assigned_worker_departs_arrives_starts_and_finishes() {
    for (state, command, event) in on_the_day_steps() {
        given(state)
            .when(command(WORKER_ID))
            .then_expect_events(vec![event]);
    }
}

#[test]
fn departing_arriving_starting_or_finishing_for_someone_elses_order_is_refused() {
    for (state, command, _) in on_the_day_steps() {
        given(state)
            .when(command(OTHER_WORKER_ID))
            .then_expect_error(OrderError::NotAssignedWorker);
    }
}

#[test]
fn skipping_a_step_on_the_day_is_refused() {
    given(OrderStatus::Accepted)
        .when(start_service(WORKER_ID))
        .then_expect_error(OrderError::IllegalTransition {
            verb: ("开始服务", "start"),
            state: OrderStatus::Accepted,
        });
    given(OrderStatus::OnTheWay)
        .when(finish_service(WORKER_ID))
        .then_expect_error(OrderError::IllegalTransition {
            verb: ("完成服务", "finish"),
            state: OrderStatus::OnTheWay,
        });
}

// ---------------------------------------------------------------------------------------------
// Review
// ---------------------------------------------------------------------------------------------

#[test]
fn the_customer_can_review_a_completed_order_and_the_comment_is_trimmed() {
    given(OrderStatus::Completed)
        .when(review(CUSTOMER_ID, 5, 4, 3, "  阿姨很细心  "))
        .then_expect_events(vec![order_reviewed(5, 4, 3, "阿姨很细心")]);
}

#[test]
fn a_review_without_a_comment_is_accepted() {
    given(OrderStatus::Completed)
        .when(review(CUSTOMER_ID, 1, 1, 1, "   "))
        .then_expect_events(vec![order_reviewed(1, 1, 1, "")]);
}

#[test]
fn a_review_by_someone_other_than_the_customer_is_refused() {
    for reviewer in [OTHER_CUSTOMER_ID, WORKER_ID, ADMIN_ID] {
        given(OrderStatus::Completed)
            .when(review(reviewer, 5, 5, 5, "很好"))
            .then_expect_error(OrderError::NotOwner);
    }
}

#[test]
fn ratings_outside_one_to_five_are_refused() {
    for bad in [0, 6, u8::MAX] {
        for (quality, attitude, skill) in [(bad, 5, 5), (5, bad, 5), (5, 5, bad)] {
            given(OrderStatus::Completed)
                .when(review(CUSTOMER_ID, quality, attitude, skill, "一般"))
                .then_expect_error(OrderError::BadRating);
        }
    }
}

#[test]
fn every_rating_from_one_to_five_is_accepted() {
    for stars in 1..=5 {
        given(OrderStatus::Completed)
            .when(review(CUSTOMER_ID, stars, stars, stars, "好"))
            .then_expect_events(vec![order_reviewed(stars, stars, stars, "好")]);
    }
}

#[test]
fn reviewing_twice_is_refused() {
    given(OrderStatus::Reviewed)
        .when(review(CUSTOMER_ID, 5, 5, 5, "再评一次"))
        .then_expect_error(OrderError::IllegalTransition {
            verb: ("评价", "review"),
            state: OrderStatus::Reviewed,
        });
}

// ---------------------------------------------------------------------------------------------
// Cancellation
// ---------------------------------------------------------------------------------------------

const CANCELLABLE: [OrderStatus; 8] = [
    OrderStatus::Placed,
    OrderStatus::AwaitingPayment,
    OrderStatus::Paid,
    OrderStatus::Dispatching,
    OrderStatus::Assigned,
    OrderStatus::Accepted,
    OrderStatus::OnTheWay,
    OrderStatus::Arrived,
];

#[test]
fn the_customer_can_cancel_before_the_service_starts_and_the_stage_is_recorded() {
    for stage in CANCELLABLE {
        assert!(stage.cancellable(), "{stage:?}");
        given(stage)
            .when(cancel(customer(), "行程有变"))
            .then_expect_events(vec![order_cancelled(customer(), "行程有变", stage)]);
    }
}

#[test]
fn an_admin_or_the_system_can_cancel_any_customers_order() {
    for by in [admin(), system()] {
        given(OrderStatus::Accepted)
            .when(cancel(by, "服务人员生病"))
            .then_expect_events(vec![order_cancelled(
                by,
                "服务人员生病",
                OrderStatus::Accepted,
            )]);
    }
}

#[test]
fn cancelling_another_customers_order_is_refused() {
    given(OrderStatus::Paid)
        .when(cancel(other_customer(), "行程有变"))
        .then_expect_error(OrderError::NotOwner);
}

#[test]
fn a_worker_or_analyst_cannot_cancel_an_order() {
    let analyst = Actor {
        id: ADMIN_ID,
        role: Role::Analyst,
    };
    for by in [assigned_worker_as_actor(), analyst] {
        given(OrderStatus::Accepted)
            .when(cancel(by, "不想去了"))
            .then_expect_error(OrderError::NotOwner);
    }
}

#[test]
fn someone_with_another_role_but_the_customers_id_cannot_cancel() {
    let impostor = Actor {
        id: CUSTOMER_ID,
        role: Role::Worker,
    };
    given(OrderStatus::Paid)
        .when(cancel(impostor, "行程有变"))
        .then_expect_error(OrderError::NotOwner);
}

#[test]
fn cancelling_without_a_reason_is_refused() {
    for reason in ["", "  ", "\n"] {
        given(OrderStatus::Paid)
            .when(cancel(customer(), reason))
            .then_expect_error(OrderError::ReasonRequired);
    }
}

#[test]
fn a_cancellation_reason_is_trimmed() {
    given(OrderStatus::Paid)
        .when(cancel(customer(), "\t行程有变  "))
        .then_expect_events(vec![order_cancelled(
            customer(),
            "行程有变",
            OrderStatus::Paid,
        )]);
}

#[test]
fn cancelling_after_the_service_has_started_is_refused() {
    for state in [
        OrderStatus::InService,
        OrderStatus::Completed,
        OrderStatus::Reviewed,
        OrderStatus::Disputed,
    ] {
        assert!(!state.cancellable(), "{state:?}");
        given(state)
            .when(cancel(admin(), "客户要求取消"))
            .then_expect_error(OrderError::IllegalTransition {
                verb: ("取消", "cancel"),
                state,
            });
    }
}

#[test]
fn cancelling_a_cancelled_order_is_refused() {
    given(OrderStatus::Cancelled)
        .when(cancel(customer(), "再取消一次"))
        .then_expect_error(OrderError::IllegalTransition {
            verb: ("取消", "cancel"),
            state: OrderStatus::Cancelled,
        });
}

#[test]
fn cancelling_an_order_that_was_never_placed_is_not_found() {
    assert!(!OrderStatus::New.cancellable());
    given(OrderStatus::New)
        .when(cancel(admin(), "清理"))
        .then_expect_error(OrderError::NotFound);
}

#[test]
fn a_cancelled_order_refuses_payment() {
    given(OrderStatus::AwaitingPayment)
        .and(vec![order_cancelled(
            customer(),
            "行程有变",
            OrderStatus::AwaitingPayment,
        )])
        .when(record_payment(TOTAL))
        .then_expect_error(OrderError::IllegalTransition {
            verb: ("记录支付", "record payment for"),
            state: OrderStatus::Cancelled,
        });
}

// ---------------------------------------------------------------------------------------------
// Disputes
// ---------------------------------------------------------------------------------------------

#[test]
fn the_customer_can_dispute_during_the_service() {
    given(OrderStatus::InService)
        .when(dispute(customer(), " 打碎了花瓶 "))
        .then_expect_events(vec![order_disputed(
            customer(),
            "打碎了花瓶",
            OrderStatus::InService,
        )]);
}

#[test]
fn the_customer_can_dispute_after_the_service() {
    given(OrderStatus::Completed)
        .when(dispute(customer(), "卫生间没有打扫"))
        .then_expect_events(vec![order_disputed(
            customer(),
            "卫生间没有打扫",
            OrderStatus::Completed,
        )]);
}

#[test]
fn an_admin_can_open_a_dispute_for_a_customer() {
    given(OrderStatus::Completed)
        .when(dispute(admin(), "客户电话投诉"))
        .then_expect_events(vec![order_disputed(
            admin(),
            "客户电话投诉",
            OrderStatus::Completed,
        )]);
}

#[test]
fn disputing_another_customers_order_is_refused() {
    for by in [other_customer(), assigned_worker_as_actor()] {
        given(OrderStatus::Completed)
            .when(dispute(by, "打碎了花瓶"))
            .then_expect_error(OrderError::NotOwner);
    }
}

#[test]
fn disputing_without_a_reason_is_refused() {
    given(OrderStatus::InService)
        .when(dispute(customer(), " "))
        .then_expect_error(OrderError::ReasonRequired);
}

#[test]
fn disputing_before_the_service_starts_is_refused() {
    for state in CANCELLABLE {
        given(state)
            .when(dispute(customer(), "还没来"))
            .then_expect_error(OrderError::IllegalTransition {
                verb: ("发起争议", "dispute"),
                state,
            });
    }
}

#[test]
fn disputing_twice_is_refused() {
    given(OrderStatus::Disputed)
        .when(dispute(customer(), "再投诉一次"))
        .then_expect_error(OrderError::IllegalTransition {
            verb: ("发起争议", "dispute"),
            state: OrderStatus::Disputed,
        });
}

// ---------------------------------------------------------------------------------------------
// Commands on an order that does not exist
// ---------------------------------------------------------------------------------------------

#[test]
fn every_command_but_place_on_an_unplaced_order_is_not_found() {
    for command in one_of_every_command().into_iter().skip(1) {
        given(OrderStatus::New)
            .when(command)
            .then_expect_error(OrderError::NotFound);
    }
}

// ---------------------------------------------------------------------------------------------
// Events and statuses on the wire
// ---------------------------------------------------------------------------------------------

/// One event of every kind. `kind_index` has no catch-all arm, so a new event kind fails to
/// compile until it is added here.
fn one_of_every_event() -> Vec<OrderEvent> {
    vec![
        OrderEvent::DisputeResolved {
            by: admin(),
            resolution: "退还部分费用 / part refunded".into(),
            resolved_at: later(DISPUTED + 1),
        },
        OrderEvent::ReviewReplied {
            worker_id: WORKER_ID,
            reply: "谢谢 / thanks".into(),
            replied_at: later(REVIEWED + 60),
        },
        OrderEvent::OrderRescheduled {
            by: admin(),
            from: later(2 * 24 * 60),
            start: later(2 * 24 * 60 + 30),
            end: later(2 * 24 * 60 + 210),
            reason: "改期 / moved".into(),
            at: later(1),
        },
        OrderEvent::AddressChanged {
            by: admin(),
            address: booking().address,
            reason: "搬家 / moved house".into(),
            at: later(1),
        },
        OrderEvent::PriceAdjusted {
            by: admin(),
            from: TOTAL,
            to: Fen::literal(14_000),
            reason: "少做一小时 / one hour less".into(),
            at: later(1),
        },
        OrderEvent::ReviewHidden {
            by: admin(),
            reason: "含辱骂内容 / abusive".into(),
            worker_id: Some(WORKER_ID),
            quality: 5,
            attitude: 5,
            skill: 5,
            hidden_at: later(REVIEWED + 120),
        },
        order_placed(),
        payment_requested(),
        payment_recorded(),
        dispatch_opened(),
        worker_assigned(WORKER_ID),
        assignment_declined(WORKER_ID, "那天不在上海"),
        order_accepted(WORKER_ID),
        worker_departed(),
        worker_arrived(),
        service_started(),
        service_finished(),
        order_reviewed(5, 4, 3, "阿姨很细心"),
        order_cancelled(customer(), "行程有变", OrderStatus::Accepted),
        order_disputed(admin(), "打碎了花瓶", OrderStatus::Completed),
        stage_entered(DispatchStage::Auto, None),
        OrderEvent::AssignmentExpired {
            worker_id: WORKER_ID,
            expired_at: later(ESCALATED),
        },
        OrderEvent::AssignmentWithdrawn {
            worker_id: WORKER_ID,
            by: admin(),
            reason: "客户要求更换".to_owned(),
            at: later(ESCALATED),
        },
        OrderEvent::WorkerLocationReported {
            worker_id: WORKER_ID,
            location: crate::values::SealedPoint {
                sealed: Sealed::from_ciphertext("v1.position".to_owned()),
                cell: north_of_address(500.0).coarse(),
            },
            accuracy_m: 20,
            reported_at: later(DEPARTED + 1),
            eta: Some(later(DEPARTED + 3)),
        },
    ]
}

fn kind_index(event: &OrderEvent) -> usize {
    match event {
        OrderEvent::OrderPlaced { .. } => 0,
        OrderEvent::PaymentRequested { .. } => 1,
        OrderEvent::PaymentRecorded { .. } => 2,
        OrderEvent::DispatchOpened { .. } => 3,
        OrderEvent::WorkerAssigned { .. } => 4,
        OrderEvent::AssignmentDeclined { .. } => 5,
        OrderEvent::OrderAccepted { .. } => 6,
        OrderEvent::WorkerDeparted { .. } => 7,
        OrderEvent::WorkerArrived { .. } => 8,
        OrderEvent::ServiceStarted { .. } => 9,
        OrderEvent::ServiceFinished { .. } => 10,
        OrderEvent::OrderReviewed { .. } => 11,
        OrderEvent::OrderCancelled { .. } => 12,
        OrderEvent::OrderDisputed { .. } => 13,
        OrderEvent::DispatchStageEntered { .. } => 14,
        OrderEvent::AssignmentExpired { .. } => 15,
        OrderEvent::AssignmentWithdrawn { .. } => 16,
        OrderEvent::WorkerLocationReported { .. } => 17,
        OrderEvent::DisputeResolved { .. } => 18,
        OrderEvent::ReviewReplied { .. } => 19,
        OrderEvent::ReviewHidden { .. } => 20,
        OrderEvent::OrderRescheduled { .. } => 21,
        OrderEvent::AddressChanged { .. } => 22,
        OrderEvent::PriceAdjusted { .. } => 23,
    }
}

#[test]
fn the_sample_events_cover_every_event_kind() {
    let mut kinds: Vec<usize> = one_of_every_event().iter().map(kind_index).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, (0..24).collect::<Vec<_>>());
}

#[test]
fn every_order_event_survives_a_json_round_trip() {
    for event in one_of_every_event() {
        let json = serde_json::to_string(&event).expect("serialises");
        let back: OrderEvent = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, event, "{json}");
    }
}

#[test]
fn order_event_types_are_distinct_and_name_the_variant() {
    let events = one_of_every_event();
    let types: HashSet<String> = events.iter().map(DomainEvent::event_type).collect();
    assert_eq!(types.len(), events.len(), "{types:?}");
    for event in &events {
        let json = serde_json::to_value(event).expect("serialises");
        let tag = json
            .as_object()
            .and_then(|object| object.keys().next().cloned());
        assert_eq!(
            tag,
            Some(event.event_type()),
            "the event type is the serde tag"
        );
        assert_eq!(
            event.event_version(),
            crate::upcast::current_version(&event.event_type())
        );
    }
}

#[test]
fn every_status_serialises_as_its_wire_name_and_parses_back() {
    let mut names = HashSet::new();
    for status in OrderStatus::ALL {
        let json = serde_json::to_string(&status).expect("serialises");
        assert_eq!(json, format!("\"{}\"", status.as_str()));
        assert_eq!(OrderStatus::parse(status.as_str()), Some(status));
        assert!(
            names.insert(status.as_str()),
            "{} is used twice",
            status.as_str()
        );
    }
    assert_eq!(OrderStatus::parse("shipped"), None);
}

#[test]
fn the_order_state_survives_a_json_round_trip() {
    let order = fold(history(OrderStatus::Completed));
    let json = serde_json::to_string(&order).expect("serialises");
    let back: Order = serde_json::from_str(&json).expect("deserialises");
    assert_eq!(back, order);
}

// ---------------------------------------------------------------------------------------------
// Holds, dispatch stages, grabbing, reassignment, tracking and check-in
// ---------------------------------------------------------------------------------------------

#[test]
fn an_unpaid_order_is_cancelled_by_the_system_only_after_its_deadline() {
    given(OrderStatus::AwaitingPayment)
        .when(expire_unpaid(PAY_BY - 1))
        .then_expect_error(OrderError::NotDue {
            verb: ("超时取消", "expire"),
        });
    given(OrderStatus::AwaitingPayment)
        .when(expire_unpaid(PAY_BY))
        .then_expect_events(vec![OrderEvent::OrderCancelled {
            by: Actor::system(),
            reason: "未在时限内支付，订单已自动取消 / not paid in time; cancelled automatically"
                .to_owned(),
            stage: OrderStatus::AwaitingPayment,
            cancelled_at: later(PAY_BY),
            settlement: None,
        }]);
}

fn paid_with_named_worker() -> Vec<OrderEvent> {
    let mut events = history(OrderStatus::Paid);
    if let OrderEvent::OrderPlaced { booking, .. } = &mut events[0] {
        booking.preferred_worker = Some(WORKER_ID);
    }
    events
}

#[test]
fn a_named_worker_is_assigned_on_payment_and_must_confirm_in_time() {
    let confirm_by = later(DISPATCH_OPENED + 30);
    let opened = OrderTester::with(())
        .given(paid_with_named_worker())
        .when(OrderCommand::OpenDispatch {
            stage: Some(DispatchStage::Named),
            deadline: Some(confirm_by),
            now: later(DISPATCH_OPENED),
        })
        .inspect_result()
        .expect("opens");
    assert_eq!(
        opened,
        vec![
            dispatch_opened(),
            stage_entered(DispatchStage::Named, Some(confirm_by)),
            OrderEvent::WorkerAssigned {
                worker_id: WORKER_ID,
                assigned_by: Actor::system(),
                assigned_at: later(DISPATCH_OPENED),
                respond_by: Some(confirm_by),
                score: None,
            },
        ]
    );
    let history: Vec<OrderEvent> = paid_with_named_worker().into_iter().chain(opened).collect();
    // Before the time limit the assignment stands...
    OrderTester::with(())
        .given(history.clone())
        .when(escalate(DispatchStage::Grab, DISPATCH_OPENED + 29))
        .then_expect_error(OrderError::NotDue {
            verb: ("升级派单", "escalate dispatch of"),
        });
    // ...after it, the order falls back to grabbing and the silent worker is passed over.
    let expired = OrderTester::with(())
        .given(history.clone())
        .when(escalate(DispatchStage::Grab, DISPATCH_OPENED + 30))
        .inspect_result()
        .expect("escalates");
    assert!(matches!(
        expired[0],
        OrderEvent::AssignmentExpired { worker_id, .. } if worker_id == WORKER_ID
    ));
    let state = fold(history.into_iter().chain(expired.clone()));
    assert_eq!(state.status, OrderStatus::Dispatching);
    assert_eq!(state.stage, Some(DispatchStage::Grab));
    assert_eq!(state.worker_id, None);
    OrderTester::with(())
        .given(
            paid_with_named_worker()
                .into_iter()
                .chain(expired.clone())
                .collect(),
        )
        .when(grab(eligible_worker(WORKER_ID)))
        .then_expect_error(OrderError::AlreadyPassed);
}

#[test]
fn naming_no_worker_cannot_open_the_named_stage() {
    given(OrderStatus::Paid)
        .when(OrderCommand::OpenDispatch {
            stage: Some(DispatchStage::Named),
            deadline: None,
            now: later(DISPATCH_OPENED),
        })
        .then_expect_error(OrderError::NoPreferredWorker);
}

#[test]
fn dispatch_stages_only_move_forward_and_only_when_due() {
    given(OrderStatus::Dispatching)
        .when(escalate(DispatchStage::Named, ESCALATED))
        .then_expect_error(OrderError::StageBackwards);
    given(OrderStatus::Dispatching)
        .when(escalate(DispatchStage::Grab, ESCALATED))
        .then_expect_error(OrderError::StageBackwards);
    given(OrderStatus::Dispatching)
        .when(escalate(DispatchStage::Admin, GRAB_UNTIL - 1))
        .then_expect_error(OrderError::NotDue {
            verb: ("升级派单", "escalate dispatch of"),
        });
    given(OrderStatus::Dispatching)
        .when(escalate(DispatchStage::Admin, GRAB_UNTIL))
        .then_expect_events(vec![OrderEvent::DispatchStageEntered {
            stage: DispatchStage::Admin,
            deadline: None,
            reason: "无人抢单 / nobody grabbed it".to_owned(),
            at: later(GRAB_UNTIL),
        }]);
}

#[test]
fn the_first_grab_wins_and_every_later_one_is_told_the_order_is_taken() {
    let won = given(OrderStatus::Dispatching)
        .when(grab(eligible_worker(WORKER_ID)))
        .inspect_result()
        .expect("the first grab wins");
    assert_eq!(won.len(), 2, "assigned and accepted at once: {won:?}");
    let state = fold(
        history(OrderStatus::Dispatching)
            .into_iter()
            .chain(won.clone()),
    );
    assert_eq!(state.status, OrderStatus::Accepted);
    assert_eq!(state.worker_id, Some(WORKER_ID));
    OrderTester::with(())
        .given(
            history(OrderStatus::Dispatching)
                .into_iter()
                .chain(won)
                .collect(),
        )
        .when(grab(eligible_worker(OTHER_WORKER_ID)))
        .then_expect_error(OrderError::AlreadyTaken);
}

#[test]
fn grabbing_needs_the_grab_stage_and_an_eligible_worker() {
    let mut facts = eligible_worker(WORKER_ID);
    facts.skills = vec![ServiceCode::Nanny];
    given(OrderStatus::Dispatching)
        .when(grab(facts))
        .then_expect_error(OrderError::WorkerNotEligible(
            WorkerIneligibility::LacksSkill,
        ));
    let mut automatic = history(OrderStatus::Dispatching);
    automatic.push(stage_entered(DispatchStage::Auto, None));
    OrderTester::with(())
        .given(automatic)
        .when(grab(eligible_worker(WORKER_ID)))
        .then_expect_error(OrderError::NotOpenForGrab);
}

#[test]
fn an_admin_reassigns_with_a_reason_and_the_new_worker_must_accept() {
    let events = given(OrderStatus::Accepted)
        .when(reassign(
            eligible_worker(OTHER_WORKER_ID),
            "客户投诉 / complaint",
        ))
        .inspect_result()
        .expect("reassigned");
    let state = fold(history(OrderStatus::Accepted).into_iter().chain(events));
    assert_eq!(state.status, OrderStatus::Assigned);
    assert_eq!(state.worker_id, Some(OTHER_WORKER_ID));
    assert!(state.declined_by.contains(&WORKER_ID));
    given(OrderStatus::Accepted)
        .when(reassign(eligible_worker(WORKER_ID), "同一个人"))
        .then_expect_error(OrderError::SameWorker);
    given(OrderStatus::Accepted)
        .when(reassign(eligible_worker(OTHER_WORKER_ID), "  "))
        .then_expect_error(OrderError::ReasonRequired);
}

#[test]
fn location_reports_are_rate_limited_checked_and_give_an_arrival_estimate() {
    let first = given(OrderStatus::OnTheWay)
        .when(report_location(DEPARTED + 1, 0, 30))
        .inspect_result()
        .expect("accepted");
    let OrderEvent::WorkerLocationReported { eta, .. } = &first[0] else {
        panic!("{first:?}")
    };
    // Two kilometres at 20 km/h with a 1.3 detour factor: 8 minutes.
    assert_eq!(*eta, Some(later(DEPARTED + 1 + 8)));
    let after_first: Vec<OrderEvent> = history(OrderStatus::OnTheWay)
        .into_iter()
        .chain(first)
        .collect();
    OrderTester::with(())
        .given(after_first.clone())
        .when(report_location(DEPARTED + 1, 5, 30))
        .then_expect_error(OrderError::PingTooFrequent {
            seconds: MIN_PING_INTERVAL_SECONDS,
        });
    OrderTester::with(())
        .given(after_first)
        .when(report_location(DEPARTED + 1, 10, 30))
        .inspect_result()
        .expect("ten seconds later is fine");
    given(OrderStatus::OnTheWay)
        .when(report_location(DEPARTED + 1, 0, 800))
        .then_expect_error(OrderError::InaccurateFix {
            accuracy_m: 800,
            max: MAX_FIX_ACCURACY_M,
        });
    given(OrderStatus::Accepted)
        .when(report_location(DEPARTED - 5, 0, 30))
        .then_expect_error(OrderError::IllegalTransition {
            verb: ("上报位置", "report a location for"),
            state: OrderStatus::Accepted,
        });
}

#[test]
fn check_in_needs_a_position_near_the_address_inside_the_window() {
    let arrive_at = |position: Option<GeoPoint>, minutes: i64| OrderCommand::Arrive {
        worker_id: WORKER_ID,
        position,
        destination: Some(home()),
        now: later(minutes),
    };
    given(OrderStatus::OnTheWay)
        .when(arrive_at(None, ARRIVED))
        .then_expect_error(OrderError::PositionRequired);
    given(OrderStatus::OnTheWay)
        .when(arrive_at(Some(north_of_address(1_000.0)), ARRIVED))
        .then_expect_error(OrderError::TooFar {
            distance_m: 1_000,
            radius_m: 300,
        });
    given(OrderStatus::OnTheWay)
        .when(arrive_at(
            Some(north_of_address(100.0)),
            STARTED - ARRIVAL_EARLY_MINUTES - 1,
        ))
        .then_expect_error(OrderError::OutsideArrivalWindow {
            early: ARRIVAL_EARLY_MINUTES,
        });
    // The same place given in GPS coordinates is recognised as near.
    let gps = north_of_address(100.0).to_system(crate::values::CoordinateSystem::Wgs84);
    given(OrderStatus::OnTheWay)
        .when(arrive_at(Some(gps), STARTED - ARRIVAL_EARLY_MINUTES))
        .then_expect_events(vec![OrderEvent::WorkerArrived {
            worker_id: WORKER_ID,
            arrived_at: later(STARTED - ARRIVAL_EARLY_MINUTES),
            distance_m: Some(100),
        }]);
    // When the address cannot be opened (its owner was erased), or a caller hands over a point
    // outside the address's cell, the check measures from the cell, allowing for its size.
    for destination in [None, Some(north_of_address(5_000.0))] {
        let unopened = |position: GeoPoint| OrderCommand::Arrive {
            worker_id: WORKER_ID,
            position: Some(position),
            destination,
            now: later(ARRIVED),
        };
        given(OrderStatus::OnTheWay)
            .when(unopened(north_of_address(2_000.0)))
            .then_expect_error(OrderError::TooFar {
                distance_m: 2_075,
                radius_m: 1_090,
            });
        given(OrderStatus::OnTheWay)
            .when(unopened(home()))
            .then_expect_events(vec![OrderEvent::WorkerArrived {
                worker_id: WORKER_ID,
                arrived_at: later(ARRIVED),
                distance_m: Some(355),
            }]);
    }
}
