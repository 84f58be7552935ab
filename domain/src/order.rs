//! The `Order` aggregate: one booking of one service, from placement to review.
//!
//! ```text
//! placed → awaiting_payment → paid → dispatching → assigned → accepted → on_the_way → arrived
//!        → in_service → completed → reviewed
//! cancelled (before service starts, by whom, why, at which stage) · disputed (during or after service)
//! ```
//! Every command that does not fit the current state is refused with an error naming that state.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::catalogue::ServiceCode;
use crate::message::{Explain, Text};
use crate::payment::CancellationSettlement;
use crate::stages::{AssignmentScore, DispatchStage};
use crate::values::{Actor, Address, Fen, GeoPoint, Role, Sealed, SealedPoint};

/// How near the address (metres) a worker must be to check in as arrived.
pub const ARRIVAL_RADIUS_M: f64 = 300.0;
/// How early before the start a worker may check in, in minutes.
pub const ARRIVAL_EARLY_MINUTES: i64 = 60;
/// The least time between two location reports of one order, in seconds.
pub const MIN_PING_INTERVAL_SECONDS: i64 = 10;
/// A fix less precise than this (metres) is refused.
pub const MAX_FIX_ACCURACY_M: u32 = 500;

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// No order has been placed under this id.
    #[default]
    New,
    Placed,
    AwaitingPayment,
    Paid,
    Dispatching,
    Assigned,
    Accepted,
    OnTheWay,
    Arrived,
    InService,
    Completed,
    Reviewed,
    Cancelled,
    Disputed,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 14] = [
        OrderStatus::New,
        OrderStatus::Placed,
        OrderStatus::AwaitingPayment,
        OrderStatus::Paid,
        OrderStatus::Dispatching,
        OrderStatus::Assigned,
        OrderStatus::Accepted,
        OrderStatus::OnTheWay,
        OrderStatus::Arrived,
        OrderStatus::InService,
        OrderStatus::Completed,
        OrderStatus::Reviewed,
        OrderStatus::Cancelled,
        OrderStatus::Disputed,
    ];

    pub fn as_str(self) -> &'static str {
        self.labels().0
    }

    pub fn parse(raw: &str) -> Option<OrderStatus> {
        OrderStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == raw)
    }

    /// The wire name, the Chinese label and the English label.
    pub fn labels(self) -> (&'static str, &'static str, &'static str) {
        match self {
            OrderStatus::New => ("new", "未下单", "not placed"),
            OrderStatus::Placed => ("placed", "已下单", "placed"),
            OrderStatus::AwaitingPayment => ("awaiting_payment", "待支付", "awaiting payment"),
            OrderStatus::Paid => ("paid", "已支付", "paid"),
            OrderStatus::Dispatching => ("dispatching", "派单中", "dispatching"),
            OrderStatus::Assigned => ("assigned", "已派单", "assigned"),
            OrderStatus::Accepted => ("accepted", "已接单", "accepted"),
            OrderStatus::OnTheWay => ("on_the_way", "服务人员已出发", "on the way"),
            OrderStatus::Arrived => ("arrived", "服务人员已到达", "arrived"),
            OrderStatus::InService => ("in_service", "服务中", "in service"),
            OrderStatus::Completed => ("completed", "已完成", "completed"),
            OrderStatus::Reviewed => ("reviewed", "已评价", "reviewed"),
            OrderStatus::Cancelled => ("cancelled", "已取消", "cancelled"),
            OrderStatus::Disputed => ("disputed", "争议中", "disputed"),
        }
    }

    /// Whether a cancellation is still possible: only before the service has started.
    pub fn cancellable(self) -> bool {
        matches!(
            self,
            OrderStatus::Placed
                | OrderStatus::AwaitingPayment
                | OrderStatus::Paid
                | OrderStatus::Dispatching
                | OrderStatus::Assigned
                | OrderStatus::Accepted
                | OrderStatus::OnTheWay
                | OrderStatus::Arrived
        )
    }
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (_, chinese, english) = self.labels();
        write!(formatter, "{chinese} / {english}")
    }
}

/// What the platform knows about a worker at the moment an assignment is decided.
/// The command handler gathers it from the worker's own stream; the aggregate judges it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerFacts {
    pub worker_id: Uuid,
    pub registered: bool,
    pub active: bool,
    /// Qualification review passed.
    pub approved: bool,
    /// The services the worker may be dispatched for today.
    pub skills: Vec<ServiceCode>,
}

/// The booking a customer asks for; validated by `Order::handle`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Booking {
    pub customer_id: Uuid,
    pub service: ServiceCode,
    /// The agreed unit price, in fen, per the service's pricing unit.
    pub unit_price: Fen,
    /// How many units (hours, visits or 26-day terms).
    pub quantity: u32,
    pub scheduled_start: DateTime<Utc>,
    pub duration_minutes: u32,
    pub address: Address,
    /// The customer's note to the worker (trimmed, at most 500 characters), sealed under the
    /// customer's key: free text often says who is at home and when.
    pub note: Option<Sealed>,
    /// The worker the customer chose, if any; their time is held from placement.
    #[serde(default)]
    pub preferred_worker: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum OrderCommand {
    Place {
        order_id: Uuid,
        booking: Booking,
        /// Unpaid after this, the order is cancelled and any hold released.
        pay_by: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    },
    /// From the hold job: cancels an order whose payment deadline has passed.
    ExpireUnpaid {
        now: DateTime<Utc>,
    },
    RecordPayment {
        payment_reference: String,
        amount: Fen,
        now: DateTime<Utc>,
    },
    /// Starts dispatching a paid order at a stage. `Named` assigns the preferred worker, who
    /// must confirm by `deadline`.
    OpenDispatch {
        stage: Option<DispatchStage>,
        deadline: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    },
    /// Moves dispatch on to a later stage once the current stage's deadline (or an unconfirmed
    /// assignment's) has passed.
    Escalate {
        to: DispatchStage,
        deadline: Option<DateTime<Utc>>,
        reason: String,
        now: DateTime<Utc>,
    },
    AssignWorker {
        worker: WorkerFacts,
        by: Actor,
        /// The worker must accept by then, or the assignment expires.
        respond_by: Option<DateTime<Utc>>,
        /// Why the dispatcher chose this worker, when it did.
        score: Option<AssignmentScore>,
        now: DateTime<Utc>,
    },
    /// A worker takes an order offered for grabbing: assigned and accepted at once.
    Grab {
        worker: WorkerFacts,
        now: DateTime<Utc>,
    },
    /// An admin moves an assigned or accepted order to another worker, saying why.
    Reassign {
        worker: WorkerFacts,
        by: Actor,
        reason: String,
        now: DateTime<Utc>,
    },
    /// Where the worker is while on the way: the point (for the arrival estimate) and the same
    /// point sealed under the worker's key (`SealedPoint::plaintext`), which is what is kept.
    /// `destination` is the address's point as the caller opened it (`None` when it could not
    /// be: the estimate then runs to the address's cell).
    ReportLocation {
        worker_id: Uuid,
        location: GeoPoint,
        sealed: Sealed,
        destination: Option<GeoPoint>,
        accuracy_m: u32,
        now: DateTime<Utc>,
    },
    Accept {
        worker_id: Uuid,
        now: DateTime<Utc>,
    },
    Decline {
        worker_id: Uuid,
        reason: String,
        now: DateTime<Utc>,
    },
    Depart {
        worker_id: Uuid,
        now: DateTime<Utc>,
    },
    /// Check-in at the address: near it, and not long before the start. `destination` is the
    /// address's point as the caller opened it; when it could not be opened (the customer was
    /// erased), the check allows for the size of the address's cell.
    Arrive {
        worker_id: Uuid,
        position: Option<GeoPoint>,
        destination: Option<GeoPoint>,
        now: DateTime<Utc>,
    },
    StartService {
        worker_id: Uuid,
        now: DateTime<Utc>,
    },
    FinishService {
        worker_id: Uuid,
        now: DateTime<Utc>,
    },
    Review {
        customer_id: Uuid,
        quality: u8,
        attitude: u8,
        skill: u8,
        comment: String,
        /// Codes from [`crate::review::TAGS`].
        tags: Vec<String>,
        /// How long after the service a review may be given.
        window: chrono::Duration,
        now: DateTime<Utc>,
    },
    /// The review window closed without a review: the configured default is recorded.
    DefaultReview {
        window: chrono::Duration,
        now: DateTime<Utc>,
    },
    /// An admin moves the service to another start (same duration), with a reason.
    Reschedule {
        by: Actor,
        start: DateTime<Utc>,
        reason: String,
        now: DateTime<Utc>,
    },
    /// An admin corrects where the service takes place, with a reason.
    ChangeAddress {
        by: Actor,
        address: Address,
        reason: String,
        now: DateTime<Utc>,
    },
    /// An admin corrects the price, with a reason: freely before payment, only downwards after
    /// (the difference is refunded).
    AdjustPrice {
        by: Actor,
        total: Fen,
        reason: String,
        now: DateTime<Utc>,
    },
    /// The worker answers a review, once.
    ReplyToReview {
        worker_id: Uuid,
        reply: String,
        now: DateTime<Utc>,
    },
    /// An admin hides a review from the public and from the ratings, with a reason.
    HideReview {
        by: Actor,
        reason: String,
        now: DateTime<Utc>,
    },
    /// With `settlement` when the order's money was captured: what the cancellation refunds,
    /// keeps, and gives the worker who had accepted.
    Cancel {
        by: Actor,
        reason: String,
        settlement: Option<CancellationSettlement>,
        now: DateTime<Utc>,
    },
    Dispute {
        by: Actor,
        reason: String,
        now: DateTime<Utc>,
    },
    /// An admin settles a dispute (any refund is made on the payment); the order is then
    /// completed, and its money is released if it was not already.
    ResolveDispute {
        by: Actor,
        resolution: String,
        now: DateTime<Utc>,
    },
}

impl OrderCommand {
    /// A short verb for error messages: Chinese, then English.
    pub fn verb(&self) -> (&'static str, &'static str) {
        match self {
            OrderCommand::Place { .. } => ("下单", "place"),
            OrderCommand::RecordPayment { .. } => ("记录支付", "record payment for"),
            OrderCommand::ExpireUnpaid { .. } => ("超时取消", "expire"),
            OrderCommand::OpenDispatch { .. } => ("开始派单", "open dispatch for"),
            OrderCommand::Escalate { .. } => ("升级派单", "escalate dispatch of"),
            OrderCommand::AssignWorker { .. } => ("派单", "assign a worker to"),
            OrderCommand::Grab { .. } => ("抢单", "grab"),
            OrderCommand::Reassign { .. } => ("改派", "reassign"),
            OrderCommand::ReportLocation { .. } => ("上报位置", "report a location for"),
            OrderCommand::Accept { .. } => ("接单", "accept"),
            OrderCommand::Decline { .. } => ("拒单", "decline"),
            OrderCommand::Depart { .. } => ("出发", "depart for"),
            OrderCommand::Arrive { .. } => ("到达", "arrive for"),
            OrderCommand::StartService { .. } => ("开始服务", "start"),
            OrderCommand::FinishService { .. } => ("完成服务", "finish"),
            OrderCommand::Review { .. } => ("评价", "review"),
            OrderCommand::Reschedule { .. } => ("改期", "reschedule"),
            OrderCommand::ChangeAddress { .. } => ("修改地址", "change the address of"),
            OrderCommand::AdjustPrice { .. } => ("调整价格", "adjust the price of"),
            OrderCommand::DefaultReview { .. } => ("默认评价", "record a default review of"),
            OrderCommand::ReplyToReview { .. } => ("回复评价", "reply to the review of"),
            OrderCommand::HideReview { .. } => ("隐藏评价", "hide the review of"),
            OrderCommand::Cancel { .. } => ("取消", "cancel"),
            OrderCommand::Dispute { .. } => ("发起争议", "dispute"),
            OrderCommand::ResolveDispute { .. } => ("处理争议", "resolve a dispute on"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrderEvent {
    OrderPlaced {
        order_id: Uuid,
        booking: Booking,
        total: Fen,
        placed_at: DateTime<Utc>,
    },
    PaymentRequested {
        amount: Fen,
        requested_at: DateTime<Utc>,
        #[serde(default)]
        pay_by: Option<DateTime<Utc>>,
    },
    PaymentRecorded {
        payment_reference: String,
        amount: Fen,
        paid_at: DateTime<Utc>,
    },
    DispatchOpened {
        opened_at: DateTime<Utc>,
    },
    DispatchStageEntered {
        stage: DispatchStage,
        deadline: Option<DateTime<Utc>>,
        reason: String,
        at: DateTime<Utc>,
    },
    WorkerAssigned {
        worker_id: Uuid,
        assigned_by: Actor,
        assigned_at: DateTime<Utc>,
        #[serde(default)]
        respond_by: Option<DateTime<Utc>>,
        #[serde(default)]
        score: Option<AssignmentScore>,
    },
    /// The worker did not confirm in time.
    AssignmentExpired {
        worker_id: Uuid,
        expired_at: DateTime<Utc>,
    },
    /// An admin took the order from a worker.
    AssignmentWithdrawn {
        worker_id: Uuid,
        by: Actor,
        reason: String,
        at: DateTime<Utc>,
    },
    WorkerLocationReported {
        worker_id: Uuid,
        /// Sealed under the worker's key, with its public cell (version 2.0; 1.0 kept the
        /// point in clear).
        location: SealedPoint,
        accuracy_m: u32,
        reported_at: DateTime<Utc>,
        /// Estimated arrival at the address, when it has coordinates.
        eta: Option<DateTime<Utc>>,
    },
    AssignmentDeclined {
        worker_id: Uuid,
        reason: String,
        declined_at: DateTime<Utc>,
    },
    OrderAccepted {
        worker_id: Uuid,
        accepted_at: DateTime<Utc>,
    },
    WorkerDeparted {
        worker_id: Uuid,
        departed_at: DateTime<Utc>,
    },
    WorkerArrived {
        worker_id: Uuid,
        arrived_at: DateTime<Utc>,
        /// Metres from the address at check-in.
        #[serde(default)]
        distance_m: Option<u32>,
    },
    ServiceStarted {
        worker_id: Uuid,
        started_at: DateTime<Utc>,
    },
    ServiceFinished {
        worker_id: Uuid,
        finished_at: DateTime<Utc>,
    },
    OrderReviewed {
        quality: u8,
        attitude: u8,
        skill: u8,
        comment: String,
        reviewed_at: DateTime<Utc>,
        #[serde(default)]
        tags: Vec<String>,
        /// Recorded by the platform when the customer gave none in time.
        #[serde(default)]
        by_default: bool,
        /// The reviewed worker, so ratings need no other record of the order.
        #[serde(default)]
        worker_id: Option<Uuid>,
    },
    ReviewReplied {
        worker_id: Uuid,
        reply: String,
        replied_at: DateTime<Utc>,
    },
    OrderRescheduled {
        by: Actor,
        from: DateTime<Utc>,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        reason: String,
        at: DateTime<Utc>,
    },
    AddressChanged {
        by: Actor,
        address: Address,
        reason: String,
        at: DateTime<Utc>,
    },
    PriceAdjusted {
        by: Actor,
        from: Fen,
        to: Fen,
        reason: String,
        at: DateTime<Utc>,
    },
    /// The hidden review's worker and stars, so ratings can take them out again.
    ReviewHidden {
        by: Actor,
        reason: String,
        #[serde(default)]
        worker_id: Option<Uuid>,
        quality: u8,
        attitude: u8,
        skill: u8,
        hidden_at: DateTime<Utc>,
    },
    OrderCancelled {
        by: Actor,
        reason: String,
        stage: OrderStatus,
        cancelled_at: DateTime<Utc>,
        /// The money's terms, when the order had been paid (absent before they were recorded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        settlement: Option<CancellationSettlement>,
    },
    OrderDisputed {
        by: Actor,
        reason: String,
        stage: OrderStatus,
        disputed_at: DateTime<Utc>,
    },
    DisputeResolved {
        by: Actor,
        resolution: String,
        resolved_at: DateTime<Utc>,
    },
}

impl DomainEvent for OrderEvent {
    fn event_type(&self) -> String {
        let name = match self {
            OrderEvent::OrderPlaced { .. } => "OrderPlaced",
            OrderEvent::PaymentRequested { .. } => "PaymentRequested",
            OrderEvent::PaymentRecorded { .. } => "PaymentRecorded",
            OrderEvent::DispatchOpened { .. } => "DispatchOpened",
            OrderEvent::DispatchStageEntered { .. } => "DispatchStageEntered",
            OrderEvent::WorkerAssigned { .. } => "WorkerAssigned",
            OrderEvent::AssignmentExpired { .. } => "AssignmentExpired",
            OrderEvent::AssignmentWithdrawn { .. } => "AssignmentWithdrawn",
            OrderEvent::WorkerLocationReported { .. } => "WorkerLocationReported",
            OrderEvent::AssignmentDeclined { .. } => "AssignmentDeclined",
            OrderEvent::OrderAccepted { .. } => "OrderAccepted",
            OrderEvent::WorkerDeparted { .. } => "WorkerDeparted",
            OrderEvent::WorkerArrived { .. } => "WorkerArrived",
            OrderEvent::ServiceStarted { .. } => "ServiceStarted",
            OrderEvent::ServiceFinished { .. } => "ServiceFinished",
            OrderEvent::OrderReviewed { .. } => "OrderReviewed",
            OrderEvent::ReviewReplied { .. } => "ReviewReplied",
            OrderEvent::OrderRescheduled { .. } => "OrderRescheduled",
            OrderEvent::AddressChanged { .. } => "AddressChanged",
            OrderEvent::PriceAdjusted { .. } => "PriceAdjusted",
            OrderEvent::ReviewHidden { .. } => "ReviewHidden",
            OrderEvent::OrderCancelled { .. } => "OrderCancelled",
            OrderEvent::OrderDisputed { .. } => "OrderDisputed",
            OrderEvent::DisputeResolved { .. } => "DisputeResolved",
        };
        name.to_owned()
    }

    fn event_version(&self) -> String {
        crate::upcast::current_version(&self.event_type()).to_owned()
    }
}

/// Why an order command was refused. Each maps to a 4xx answer.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderError {
    IllegalTransition {
        verb: (&'static str, &'static str),
        state: OrderStatus,
    },
    NotFound,
    PriceOutOfRange {
        service: &'static str,
        price: Fen,
        min: Fen,
        max: Fen,
    },
    BadQuantity {
        max: u32,
    },
    BadDuration {
        min: u32,
        max: u32,
    },
    StartInPast,
    TotalOverflow,
    AmountMismatch {
        paid: Fen,
        due: Fen,
    },
    WorkerNotEligible(WorkerIneligibility),
    NotAssignedWorker,
    NotOwner,
    BadRating,
    ReviewWindowClosed,
    ReviewWindowOpen,
    UnknownTag(String),
    AlreadyReplied,
    AlreadyHidden,
    PriceRiseAfterPayment,
    SamePrice,
    ReasonRequired,
    FeeShareNotToWorker,
    AlreadyTaken,
    NotOpenForGrab,
    AlreadyPassed,
    NotDue {
        verb: (&'static str, &'static str),
    },
    StageBackwards,
    NoPreferredWorker,
    SameWorker,
    PositionRequired,
    TooFar {
        distance_m: u32,
        radius_m: u32,
    },
    OutsideArrivalWindow {
        early: i64,
    },
    PingTooFrequent {
        seconds: i64,
    },
    InaccurateFix {
        accuracy_m: u32,
        max: u32,
    },
}

impl Explain for OrderError {
    fn text(&self) -> Text {
        match self {
            OrderError::IllegalTransition { verb, state } => {
                let (_, zh, en) = state.labels();
                Text::new("order.illegal-transition")
                    .each("state", zh, en)
                    .each("verb", verb.0, verb.1)
            }
            OrderError::NotFound => Text::new("order.not-found"),
            OrderError::PriceOutOfRange {
                max,
                min,
                price,
                service,
            } => Text::new("order.price-out-of-range")
                .with("max", max)
                .with("min", min)
                .with("price", price)
                .with("service", service),
            OrderError::BadQuantity { max } => Text::new("order.bad-quantity").with("max", max),
            OrderError::BadDuration { max, min } => Text::new("order.bad-duration")
                .with("max", max)
                .with("min", min),
            OrderError::StartInPast => Text::new("order.start-in-past"),
            OrderError::TotalOverflow => Text::new("order.total-overflow"),
            OrderError::AmountMismatch { due, paid } => Text::new("order.amount-mismatch")
                .with("due", due)
                .with("paid", paid),
            OrderError::WorkerNotEligible(v0) => {
                Text::new("order.worker-not-eligible").nested("0", v0.text())
            }
            OrderError::NotAssignedWorker => Text::new("order.not-assigned-worker"),
            OrderError::NotOwner => Text::new("order.not-owner"),
            OrderError::BadRating => Text::new("order.bad-rating"),
            OrderError::ReviewWindowClosed => Text::new("order.review-window-closed"),
            OrderError::ReviewWindowOpen => Text::new("order.review-window-open"),
            OrderError::UnknownTag(v0) => Text::new("order.unknown-tag").with("0", v0),
            OrderError::AlreadyReplied => Text::new("order.already-replied"),
            OrderError::AlreadyHidden => Text::new("order.already-hidden"),
            OrderError::PriceRiseAfterPayment => Text::new("order.price-rise-after-payment"),
            OrderError::SamePrice => Text::new("order.same-price"),
            OrderError::ReasonRequired => Text::new("order.reason-required"),
            OrderError::FeeShareNotToWorker => Text::new("order.fee-share-not-to-worker"),
            OrderError::AlreadyTaken => Text::new("order.already-taken"),
            OrderError::NotOpenForGrab => Text::new("order.not-open-for-grab"),
            OrderError::AlreadyPassed => Text::new("order.already-passed"),
            OrderError::NotDue { verb } => Text::new("order.not-due").each("verb", verb.0, verb.1),
            OrderError::StageBackwards => Text::new("order.stage-backwards"),
            OrderError::NoPreferredWorker => Text::new("order.no-preferred-worker"),
            OrderError::SameWorker => Text::new("order.same-worker"),
            OrderError::PositionRequired => Text::new("order.position-required"),
            OrderError::TooFar {
                distance_m,
                radius_m,
            } => Text::new("order.too-far")
                .with("distance_m", distance_m)
                .with("radius_m", radius_m),
            OrderError::OutsideArrivalWindow { early } => {
                Text::new("order.outside-arrival-window").with("early", early)
            }
            OrderError::PingTooFrequent { seconds } => {
                Text::new("order.ping-too-frequent").with("seconds", seconds)
            }
            OrderError::InaccurateFix { accuracy_m, max } => Text::new("order.inaccurate-fix")
                .with("accuracy_m", accuracy_m)
                .with("max", max),
        }
    }
}

crate::message::explained!(OrderError);

/// Why a worker cannot take an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerIneligibility {
    Unknown,
    Suspended,
    NotApproved,
    LacksSkill,
}

impl Explain for WorkerIneligibility {
    fn text(&self) -> Text {
        Text::new(match self {
            WorkerIneligibility::Unknown => "ineligible.unknown",
            WorkerIneligibility::Suspended => "ineligible.suspended",
            WorkerIneligibility::NotApproved => "ineligible.not-approved",
            WorkerIneligibility::LacksSkill => "ineligible.lacks-skill",
        })
    }
}

crate::message::explained!(WorkerIneligibility);

/// The state an order's events fold into.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub status: OrderStatus,
    pub customer_id: Option<Uuid>,
    pub service: Option<ServiceCode>,
    pub total: Option<Fen>,
    pub worker_id: Option<Uuid>,
    pub declined_by: Vec<Uuid>,
    /// When the service runs: from the scheduled start for its duration.
    pub window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// The cell of the address, when the customer gave coordinates: travel and reach are
    /// reckoned from it.
    pub location: Option<crate::values::GeoPoint>,
    /// The address's point itself, sealed under the customer's key; opened only to check a
    /// worker in, estimate an arrival and navigate.
    #[serde(default)]
    pub sealed_location: Option<Sealed>,
    #[serde(default)]
    pub preferred_worker: Option<Uuid>,
    #[serde(default)]
    pub pay_by: Option<DateTime<Utc>>,
    /// The dispatch stage while dispatching, and until when it lasts.
    #[serde(default)]
    pub stage: Option<DispatchStage>,
    #[serde(default)]
    pub stage_deadline: Option<DateTime<Utc>>,
    /// The assigned worker must accept by then.
    #[serde(default)]
    pub respond_by: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_ping_at: Option<DateTime<Utc>>,
    /// The cell of the worker's last reported position and the arrival estimate from it.
    #[serde(default)]
    pub last_location: Option<GeoPoint>,
    /// That position, sealed under the worker's key.
    #[serde(default)]
    pub last_sealed_location: Option<Sealed>,
    #[serde(default)]
    pub eta: Option<DateTime<Utc>>,
    /// When the order was booked: its commission is the rate in force then.
    #[serde(default)]
    pub placed_at: Option<DateTime<Utc>>,
    /// When the service finished: the review window runs from then.
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    /// The review's stars (quality, attitude, skill), once given.
    #[serde(default)]
    pub review: Option<(u8, u8, u8)>,
    #[serde(default)]
    pub review_replied: bool,
    /// What the cancellation did with the order's money, once cancelled after payment.
    #[serde(default)]
    pub cancellation: Option<CancellationSettlement>,
    #[serde(default)]
    pub review_hidden: bool,
}

/// The longest booking horizon, in units: a year of hours is plenty for any household.
const MAX_QUANTITY: u32 = 2_000;

impl Order {
    fn refuse(&self, command: &OrderCommand) -> OrderError {
        if self.status == OrderStatus::New {
            return OrderError::NotFound;
        }
        OrderError::IllegalTransition {
            verb: command.verb(),
            state: self.status,
        }
    }

    /// The address's point as a caller opened it, when it lies in the address's cell, and
    /// `true`; otherwise the cell and `false`.
    fn destination(&self, opened: Option<GeoPoint>) -> Option<(GeoPoint, bool)> {
        let cell = self.location?;
        Some(match opened.filter(|point| point.coarse() == cell) {
            Some(point) => (point, true),
            None => (cell, false),
        })
    }

    fn require_assigned(&self, worker_id: Uuid) -> Result<(), OrderError> {
        if self.worker_id == Some(worker_id) {
            Ok(())
        } else {
            Err(OrderError::NotAssignedWorker)
        }
    }

    /// Customers act only on their own orders; admins and the system act on any.
    fn require_owner_or_staff(&self, actor: Actor) -> Result<(), OrderError> {
        match actor.role {
            Role::Admin | Role::System => Ok(()),
            Role::Customer if self.customer_id == Some(actor.id) => Ok(()),
            _ => Err(OrderError::NotOwner),
        }
    }

    /// Whether this order holds the worker's booked time: a named worker's while it awaits
    /// payment or dispatch, else the worker it was given to. A saga that took a worker's time
    /// and failed gives it back only when this says no, so a refused retry never undoes the
    /// booking of the request that won.
    pub fn holds(&self, worker_id: Uuid) -> bool {
        match self.status {
            OrderStatus::AwaitingPayment | OrderStatus::Paid => {
                self.preferred_worker == Some(worker_id)
            }
            OrderStatus::New
            | OrderStatus::Placed
            | OrderStatus::Dispatching
            | OrderStatus::Cancelled => false,
            OrderStatus::Assigned
            | OrderStatus::Accepted
            | OrderStatus::OnTheWay
            | OrderStatus::Arrived
            | OrderStatus::InService
            | OrderStatus::Completed
            | OrderStatus::Reviewed
            | OrderStatus::Disputed => self.worker_id == Some(worker_id),
        }
    }

    /// What a command would record, without recording it: lets a handler refuse early,
    /// before it touches any other stream.
    pub fn decide_only(&self, command: OrderCommand) -> Result<Vec<OrderEvent>, OrderError> {
        self.decide(command)
    }

    fn require_eligible(&self, worker: &WorkerFacts) -> Result<(), OrderError> {
        let service = self.service.ok_or(OrderError::NotFound)?;
        let ineligible = if !worker.registered {
            Some(WorkerIneligibility::Unknown)
        } else if !worker.active {
            Some(WorkerIneligibility::Suspended)
        } else if !worker.approved {
            Some(WorkerIneligibility::NotApproved)
        } else if !worker.skills.contains(&service) {
            Some(WorkerIneligibility::LacksSkill)
        } else {
            None
        };
        match ineligible {
            Some(reason) => Err(OrderError::WorkerNotEligible(reason)),
            None => Ok(()),
        }
    }

    fn decide(&self, command: OrderCommand) -> Result<Vec<OrderEvent>, OrderError> {
        use OrderStatus as S;
        let refused = self.refuse(&command);
        match (self.status, command) {
            (
                S::New,
                OrderCommand::Place {
                    order_id,
                    booking,
                    pay_by,
                    now,
                },
            ) => {
                let total = validate_booking(&booking, now)?;
                Ok(vec![
                    OrderEvent::OrderPlaced {
                        order_id,
                        booking,
                        total,
                        placed_at: now,
                    },
                    OrderEvent::PaymentRequested {
                        amount: total,
                        requested_at: now,
                        pay_by,
                    },
                ])
            }
            (stage @ S::AwaitingPayment, command @ OrderCommand::ExpireUnpaid { .. }) => {
                let OrderCommand::ExpireUnpaid { now } = command else {
                    unreachable!()
                };
                match self.pay_by {
                    Some(deadline) if now >= deadline => Ok(vec![OrderEvent::OrderCancelled {
                        by: Actor::system(),
                        reason: "未在时限内支付，订单已自动取消 / not paid in time; cancelled automatically".to_owned(),
                        stage,
                        cancelled_at: now,
                        settlement: None,
                    }]),
                    _ => Err(OrderError::NotDue {
                        verb: command.verb(),
                    }),
                }
            }
            (
                S::AwaitingPayment,
                OrderCommand::RecordPayment {
                    payment_reference,
                    amount,
                    now,
                },
            ) => {
                let due = self.total.unwrap_or(Fen::ZERO);
                if amount != due {
                    return Err(OrderError::AmountMismatch { paid: amount, due });
                }
                Ok(vec![OrderEvent::PaymentRecorded {
                    payment_reference,
                    amount,
                    paid_at: now,
                }])
            }
            (
                S::Paid,
                OrderCommand::OpenDispatch {
                    stage,
                    deadline,
                    now,
                },
            ) => {
                let mut events = vec![OrderEvent::DispatchOpened { opened_at: now }];
                if let Some(stage) = stage {
                    events.push(OrderEvent::DispatchStageEntered {
                        stage,
                        deadline,
                        reason: "支付完成 / paid".to_owned(),
                        at: now,
                    });
                }
                if stage == Some(DispatchStage::Named) {
                    let worker_id = self.preferred_worker.ok_or(OrderError::NoPreferredWorker)?;
                    events.push(OrderEvent::WorkerAssigned {
                        worker_id,
                        assigned_by: Actor::system(),
                        assigned_at: now,
                        respond_by: deadline,
                        score: None,
                    });
                }
                Ok(events)
            }
            (status @ (S::Dispatching | S::Assigned), command @ OrderCommand::Escalate { .. }) => {
                let verb = command.verb();
                let OrderCommand::Escalate {
                    to,
                    deadline,
                    reason,
                    now,
                } = command
                else {
                    unreachable!()
                };
                // An unconfirmed assignment may fall back to the stage it came from (another
                // automatic round, without that worker); otherwise stages only move on.
                let backwards = self.stage.is_some_and(|current| match status {
                    S::Assigned => to < current,
                    _ => to <= current,
                });
                if backwards {
                    return Err(OrderError::StageBackwards);
                }
                let due = match status {
                    S::Assigned => self.respond_by,
                    _ => self.stage_deadline,
                };
                let mut events = Vec::new();
                match (status, due) {
                    (_, Some(due)) if now < due => return Err(OrderError::NotDue { verb }),
                    (S::Assigned, None) => return Err(refused),
                    (S::Assigned, Some(_)) => events.push(OrderEvent::AssignmentExpired {
                        worker_id: self.worker_id.ok_or(OrderError::NotFound)?,
                        expired_at: now,
                    }),
                    _ => {}
                }
                events.push(OrderEvent::DispatchStageEntered {
                    stage: to,
                    deadline,
                    reason: required_reason(&reason)?,
                    at: now,
                });
                Ok(events)
            }
            (
                S::Paid | S::Dispatching,
                OrderCommand::AssignWorker {
                    worker,
                    by,
                    respond_by,
                    score,
                    now,
                },
            ) => {
                self.require_eligible(&worker)?;
                Ok(vec![OrderEvent::WorkerAssigned {
                    worker_id: worker.worker_id,
                    assigned_by: by,
                    assigned_at: now,
                    respond_by,
                    score,
                }])
            }
            (S::Dispatching, OrderCommand::Grab { worker, now })
                if self.stage == Some(DispatchStage::Grab) =>
            {
                if self.declined_by.contains(&worker.worker_id) {
                    return Err(OrderError::AlreadyPassed);
                }
                self.require_eligible(&worker)?;
                Ok(vec![
                    OrderEvent::WorkerAssigned {
                        worker_id: worker.worker_id,
                        assigned_by: Actor {
                            id: worker.worker_id,
                            role: Role::Worker,
                        },
                        assigned_at: now,
                        respond_by: None,
                        score: None,
                    },
                    OrderEvent::OrderAccepted {
                        worker_id: worker.worker_id,
                        accepted_at: now,
                    },
                ])
            }
            (S::Dispatching, OrderCommand::Grab { .. }) => Err(OrderError::NotOpenForGrab),
            (
                S::Assigned
                | S::Accepted
                | S::OnTheWay
                | S::Arrived
                | S::InService
                | S::Completed
                | S::Reviewed,
                OrderCommand::Grab { .. },
            ) => Err(OrderError::AlreadyTaken),
            (
                S::Assigned | S::Accepted,
                OrderCommand::Reassign {
                    worker,
                    by,
                    reason,
                    now,
                },
            ) => {
                let current = self.worker_id.ok_or(OrderError::NotFound)?;
                if current == worker.worker_id {
                    return Err(OrderError::SameWorker);
                }
                self.require_eligible(&worker)?;
                Ok(vec![
                    OrderEvent::AssignmentWithdrawn {
                        worker_id: current,
                        by,
                        reason: required_reason(&reason)?,
                        at: now,
                    },
                    OrderEvent::WorkerAssigned {
                        worker_id: worker.worker_id,
                        assigned_by: by,
                        assigned_at: now,
                        respond_by: None,
                        score: None,
                    },
                ])
            }
            (
                S::OnTheWay,
                OrderCommand::ReportLocation {
                    worker_id,
                    location,
                    sealed,
                    destination,
                    accuracy_m,
                    now,
                },
            ) => {
                self.require_assigned(worker_id)?;
                if accuracy_m > MAX_FIX_ACCURACY_M {
                    return Err(OrderError::InaccurateFix {
                        accuracy_m,
                        max: MAX_FIX_ACCURACY_M,
                    });
                }
                if let Some(last) = self.last_ping_at {
                    if now < last + chrono::Duration::seconds(MIN_PING_INTERVAL_SECONDS) {
                        return Err(OrderError::PingTooFrequent {
                            seconds: MIN_PING_INTERVAL_SECONDS,
                        });
                    }
                }
                let eta = self
                    .destination(destination)
                    .map(|(address, _)| crate::geo::estimated_arrival(location, address, now));
                Ok(vec![OrderEvent::WorkerLocationReported {
                    worker_id,
                    location: SealedPoint {
                        sealed,
                        cell: location.coarse(),
                    },
                    accuracy_m,
                    reported_at: now,
                    eta,
                }])
            }
            (S::Assigned, OrderCommand::Accept { worker_id, now }) => {
                self.require_assigned(worker_id)?;
                Ok(vec![OrderEvent::OrderAccepted {
                    worker_id,
                    accepted_at: now,
                }])
            }
            (
                S::Assigned,
                OrderCommand::Decline {
                    worker_id,
                    reason,
                    now,
                },
            ) => {
                self.require_assigned(worker_id)?;
                let reason = required_reason(&reason)?;
                Ok(vec![OrderEvent::AssignmentDeclined {
                    worker_id,
                    reason,
                    declined_at: now,
                }])
            }
            (S::Accepted, OrderCommand::Depart { worker_id, now }) => {
                self.require_assigned(worker_id)?;
                Ok(vec![OrderEvent::WorkerDeparted {
                    worker_id,
                    departed_at: now,
                }])
            }
            (
                S::OnTheWay,
                OrderCommand::Arrive {
                    worker_id,
                    position,
                    destination,
                    now,
                },
            ) => {
                self.require_assigned(worker_id)?;
                let (start, end) = self.window.ok_or(OrderError::NotFound)?;
                if now < start - chrono::Duration::minutes(ARRIVAL_EARLY_MINUTES) || now >= end {
                    return Err(OrderError::OutsideArrivalWindow {
                        early: ARRIVAL_EARLY_MINUTES,
                    });
                }
                let opened = self.destination(destination);
                // From a cell's centre, anywhere in the cell is at most half its diagonal away.
                let radius = match opened {
                    Some((_, false)) => ARRIVAL_RADIUS_M + crate::geo::CELL_HALF_DIAGONAL_M,
                    _ => ARRIVAL_RADIUS_M,
                };
                let distance_m = match (opened.map(|(point, _)| point), position) {
                    (Some(address), Some(position)) => {
                        let distance = address.distance_m(position);
                        if distance > radius {
                            return Err(OrderError::TooFar {
                                distance_m: distance.round() as u32,
                                radius_m: radius as u32,
                            });
                        }
                        Some(distance.round() as u32)
                    }
                    (Some(_), None) => return Err(OrderError::PositionRequired),
                    (None, _) => None,
                };
                Ok(vec![OrderEvent::WorkerArrived {
                    worker_id,
                    arrived_at: now,
                    distance_m,
                }])
            }
            (S::Arrived, OrderCommand::StartService { worker_id, now }) => {
                self.require_assigned(worker_id)?;
                Ok(vec![OrderEvent::ServiceStarted {
                    worker_id,
                    started_at: now,
                }])
            }
            (S::InService, OrderCommand::FinishService { worker_id, now }) => {
                self.require_assigned(worker_id)?;
                Ok(vec![OrderEvent::ServiceFinished {
                    worker_id,
                    finished_at: now,
                }])
            }
            (
                S::Completed,
                OrderCommand::Review {
                    customer_id,
                    quality,
                    attitude,
                    skill,
                    comment,
                    tags,
                    window,
                    now,
                },
            ) => {
                if self.customer_id != Some(customer_id) {
                    return Err(OrderError::NotOwner);
                }
                if ![quality, attitude, skill]
                    .iter()
                    .all(|stars| (1..=5).contains(stars))
                {
                    return Err(OrderError::BadRating);
                }
                if self
                    .finished_at
                    .is_some_and(|finished| now > finished + window)
                {
                    return Err(OrderError::ReviewWindowClosed);
                }
                let mut tags = tags;
                tags.sort();
                tags.dedup();
                if let Some(unknown) = tags.iter().find(|tag| crate::review::tag(tag).is_none()) {
                    return Err(OrderError::UnknownTag(unknown.clone()));
                }
                Ok(vec![OrderEvent::OrderReviewed {
                    quality,
                    attitude,
                    skill,
                    comment: comment.trim().to_owned(),
                    reviewed_at: now,
                    tags,
                    by_default: false,
                    worker_id: self.worker_id,
                }])
            }
            (
                S::Placed
                | S::AwaitingPayment
                | S::Paid
                | S::Dispatching
                | S::Assigned
                | S::Accepted,
                OrderCommand::Reschedule {
                    by,
                    start,
                    reason,
                    now,
                },
            ) => {
                if !matches!(by.role, Role::Admin | Role::System) {
                    return Err(OrderError::NotOwner);
                }
                if start <= now {
                    return Err(OrderError::StartInPast);
                }
                let Some((from, end)) = self.window else {
                    return Err(OrderError::NotFound);
                };
                Ok(vec![OrderEvent::OrderRescheduled {
                    by,
                    from,
                    start,
                    end: start + (end - from),
                    reason: required_reason(&reason)?,
                    at: now,
                }])
            }
            (
                S::Placed
                | S::AwaitingPayment
                | S::Paid
                | S::Dispatching
                | S::Assigned
                | S::Accepted,
                OrderCommand::ChangeAddress {
                    by,
                    address,
                    reason,
                    now,
                },
            ) => {
                if !matches!(by.role, Role::Admin | Role::System) {
                    return Err(OrderError::NotOwner);
                }
                Ok(vec![OrderEvent::AddressChanged {
                    by,
                    address,
                    reason: required_reason(&reason)?,
                    at: now,
                }])
            }
            (
                status @ (S::Placed
                | S::AwaitingPayment
                | S::Paid
                | S::Dispatching
                | S::Assigned
                | S::Accepted
                | S::OnTheWay
                | S::Arrived
                | S::InService),
                OrderCommand::AdjustPrice {
                    by,
                    total,
                    reason,
                    now,
                },
            ) => {
                if !matches!(by.role, Role::Admin | Role::System) {
                    return Err(OrderError::NotOwner);
                }
                let from = self.total.unwrap_or(Fen::ZERO);
                if total == from {
                    return Err(OrderError::SamePrice);
                }
                let paid = !matches!(status, S::Placed | S::AwaitingPayment);
                if paid && total.get() > from.get() {
                    return Err(OrderError::PriceRiseAfterPayment);
                }
                Ok(vec![OrderEvent::PriceAdjusted {
                    by,
                    from,
                    to: total,
                    reason: required_reason(&reason)?,
                    at: now,
                }])
            }
            (S::Completed, OrderCommand::DefaultReview { window, now }) => {
                let finished = self.finished_at.unwrap_or(now);
                if now <= finished + window {
                    return Err(OrderError::ReviewWindowOpen);
                }
                let (quality, attitude, skill) = crate::review::DEFAULT_STARS;
                Ok(vec![OrderEvent::OrderReviewed {
                    quality,
                    attitude,
                    skill,
                    comment: crate::review::DEFAULT_COMMENT.to_owned(),
                    reviewed_at: now,
                    tags: Vec::new(),
                    by_default: true,
                    worker_id: self.worker_id,
                }])
            }
            (
                S::Reviewed,
                OrderCommand::ReplyToReview {
                    worker_id,
                    reply,
                    now,
                },
            ) => {
                self.require_assigned(worker_id)?;
                if self.review_replied {
                    return Err(OrderError::AlreadyReplied);
                }
                Ok(vec![OrderEvent::ReviewReplied {
                    worker_id,
                    reply: required_reason(&reply)?,
                    replied_at: now,
                }])
            }
            (S::Reviewed, OrderCommand::HideReview { by, reason, now }) => {
                if !matches!(by.role, Role::Admin | Role::System) {
                    return Err(OrderError::NotOwner);
                }
                if self.review_hidden {
                    return Err(OrderError::AlreadyHidden);
                }
                let (quality, attitude, skill) = self.review.unwrap_or((0, 0, 0));
                Ok(vec![OrderEvent::ReviewHidden {
                    by,
                    reason: required_reason(&reason)?,
                    worker_id: self.worker_id,
                    quality,
                    attitude,
                    skill,
                    hidden_at: now,
                }])
            }
            (
                stage,
                OrderCommand::Cancel {
                    by,
                    reason,
                    settlement,
                    now,
                },
            ) if stage.cancellable() => {
                self.require_owner_or_staff(by)?;
                let reason = required_reason(&reason)?;
                if let Some(share) = settlement.and_then(|settlement| settlement.to_worker) {
                    let accepted = matches!(stage, S::Accepted | S::OnTheWay | S::Arrived);
                    if !accepted || self.worker_id != Some(share.worker_id) {
                        return Err(OrderError::FeeShareNotToWorker);
                    }
                }
                Ok(vec![OrderEvent::OrderCancelled {
                    by,
                    reason,
                    stage,
                    cancelled_at: now,
                    settlement,
                }])
            }
            (stage @ (S::InService | S::Completed), OrderCommand::Dispute { by, reason, now }) => {
                self.require_owner_or_staff(by)?;
                let reason = required_reason(&reason)?;
                Ok(vec![OrderEvent::OrderDisputed {
                    by,
                    reason,
                    stage,
                    disputed_at: now,
                }])
            }
            (
                S::Disputed,
                OrderCommand::ResolveDispute {
                    by,
                    resolution,
                    now,
                },
            ) => {
                if !matches!(by.role, Role::Admin | Role::System) {
                    return Err(OrderError::NotOwner);
                }
                Ok(vec![OrderEvent::DisputeResolved {
                    by,
                    resolution: required_reason(&resolution)?,
                    resolved_at: now,
                }])
            }
            _ => Err(refused),
        }
    }
}

fn required_reason(reason: &str) -> Result<String, OrderError> {
    let trimmed = reason.trim();
    if trimmed.is_empty() {
        return Err(OrderError::ReasonRequired);
    }
    Ok(trimmed.chars().take(500).collect())
}

/// Checks a booking against the catalogue and returns its total price.
fn validate_booking(booking: &Booking, now: DateTime<Utc>) -> Result<Fen, OrderError> {
    let spec = booking.service.spec();
    if booking.unit_price < spec.min_unit_price || booking.unit_price > spec.max_unit_price {
        return Err(OrderError::PriceOutOfRange {
            service: spec.name_zh,
            price: booking.unit_price,
            min: spec.min_unit_price,
            max: spec.max_unit_price,
        });
    }
    if booking.quantity == 0 || booking.quantity > MAX_QUANTITY {
        return Err(OrderError::BadQuantity { max: MAX_QUANTITY });
    }
    if booking.duration_minutes < spec.min_duration_minutes
        || booking.duration_minutes > spec.max_duration_minutes
    {
        return Err(OrderError::BadDuration {
            min: spec.min_duration_minutes,
            max: spec.max_duration_minutes,
        });
    }
    if booking.scheduled_start <= now {
        return Err(OrderError::StartInPast);
    }
    booking
        .unit_price
        .times(booking.quantity)
        .ok_or(OrderError::TotalOverflow)
}

crate::aggregate!(Order, "order", OrderCommand, OrderEvent, OrderError);

impl Order {
    /// Folds one event into the state: the aggregate's `apply`.
    fn fold(&mut self, event: OrderEvent) {
        match event {
            OrderEvent::OrderPlaced {
                booking,
                total,
                placed_at,
                ..
            } => {
                self.status = OrderStatus::Placed;
                self.placed_at = Some(placed_at);
                self.customer_id = Some(booking.customer_id);
                self.service = Some(booking.service);
                self.total = Some(total);
                let end = booking.scheduled_start
                    + chrono::Duration::minutes(i64::from(booking.duration_minutes));
                self.window = Some((booking.scheduled_start, end));
                self.location = booking.address.cell();
                self.sealed_location = booking.address.location.map(|point| point.sealed);
                self.preferred_worker = booking.preferred_worker;
            }
            OrderEvent::PaymentRequested { pay_by, .. } => {
                self.status = OrderStatus::AwaitingPayment;
                self.pay_by = pay_by;
            }
            OrderEvent::PaymentRecorded { .. } => self.status = OrderStatus::Paid,
            OrderEvent::DispatchOpened { .. } => self.status = OrderStatus::Dispatching,
            OrderEvent::DispatchStageEntered {
                stage, deadline, ..
            } => {
                self.stage = Some(stage);
                self.stage_deadline = deadline;
            }
            OrderEvent::WorkerAssigned {
                worker_id,
                respond_by,
                ..
            } => {
                self.status = OrderStatus::Assigned;
                self.worker_id = Some(worker_id);
                self.respond_by = respond_by;
            }
            OrderEvent::AssignmentDeclined { worker_id, .. }
            | OrderEvent::AssignmentExpired { worker_id, .. } => {
                self.status = OrderStatus::Dispatching;
                self.worker_id = None;
                self.respond_by = None;
                self.declined_by.push(worker_id);
            }
            OrderEvent::AssignmentWithdrawn { worker_id, .. } => {
                self.worker_id = None;
                self.declined_by.push(worker_id);
            }
            OrderEvent::WorkerLocationReported {
                reported_at,
                location,
                eta,
                ..
            } => {
                self.last_ping_at = Some(reported_at);
                self.last_location = Some(location.cell);
                self.last_sealed_location = Some(location.sealed);
                self.eta = eta;
            }
            OrderEvent::OrderAccepted { .. } => {
                self.status = OrderStatus::Accepted;
                self.respond_by = None;
            }
            OrderEvent::WorkerDeparted { .. } => self.status = OrderStatus::OnTheWay,
            OrderEvent::WorkerArrived { .. } => self.status = OrderStatus::Arrived,
            OrderEvent::ServiceStarted { .. } => self.status = OrderStatus::InService,
            OrderEvent::ServiceFinished { finished_at, .. } => {
                self.status = OrderStatus::Completed;
                self.finished_at = Some(finished_at);
            }
            OrderEvent::OrderReviewed {
                quality,
                attitude,
                skill,
                ..
            } => {
                self.status = OrderStatus::Reviewed;
                self.review = Some((quality, attitude, skill));
            }
            OrderEvent::ReviewReplied { .. } => self.review_replied = true,
            OrderEvent::OrderRescheduled { start, end, .. } => self.window = Some((start, end)),
            OrderEvent::AddressChanged { address, .. } => {
                self.location = address.cell();
                self.sealed_location = address.location.map(|point| point.sealed);
            }
            OrderEvent::PriceAdjusted { to, .. } => self.total = Some(to),
            OrderEvent::ReviewHidden { .. } => self.review_hidden = true,
            OrderEvent::OrderCancelled { settlement, .. } => {
                self.status = OrderStatus::Cancelled;
                self.cancellation = settlement;
            }
            OrderEvent::OrderDisputed { .. } => self.status = OrderStatus::Disputed,
            OrderEvent::DisputeResolved { .. } => self.status = OrderStatus::Completed,
        }
    }
}

#[cfg(test)]
mod tests;
