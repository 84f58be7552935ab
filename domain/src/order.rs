//! The `Order` aggregate: one booking of one service, from placement to review.
//!
//! ```text
//! placed → awaiting_payment → paid → dispatching → assigned → accepted → on_the_way → arrived
//!        → in_service → completed → reviewed
//! cancelled (before service starts, by whom, why, at which stage) · disputed (during or after service)
//! ```
//! Every command that does not fit the current state is refused with an error naming that state.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::catalogue::ServiceCode;
use crate::values::{Actor, Address, Fen, Role};

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
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum OrderCommand {
    Place {
        order_id: Uuid,
        booking: Booking,
        now: DateTime<Utc>,
    },
    RecordPayment {
        payment_reference: String,
        amount: Fen,
        now: DateTime<Utc>,
    },
    OpenDispatch {
        now: DateTime<Utc>,
    },
    AssignWorker {
        worker: WorkerFacts,
        by: Actor,
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
    Arrive {
        worker_id: Uuid,
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
        now: DateTime<Utc>,
    },
    Cancel {
        by: Actor,
        reason: String,
        now: DateTime<Utc>,
    },
    Dispute {
        by: Actor,
        reason: String,
        now: DateTime<Utc>,
    },
}

impl OrderCommand {
    /// A short verb for error messages: Chinese, then English.
    pub fn verb(&self) -> (&'static str, &'static str) {
        match self {
            OrderCommand::Place { .. } => ("下单", "place"),
            OrderCommand::RecordPayment { .. } => ("记录支付", "record payment for"),
            OrderCommand::OpenDispatch { .. } => ("开始派单", "open dispatch for"),
            OrderCommand::AssignWorker { .. } => ("派单", "assign a worker to"),
            OrderCommand::Accept { .. } => ("接单", "accept"),
            OrderCommand::Decline { .. } => ("拒单", "decline"),
            OrderCommand::Depart { .. } => ("出发", "depart for"),
            OrderCommand::Arrive { .. } => ("到达", "arrive for"),
            OrderCommand::StartService { .. } => ("开始服务", "start"),
            OrderCommand::FinishService { .. } => ("完成服务", "finish"),
            OrderCommand::Review { .. } => ("评价", "review"),
            OrderCommand::Cancel { .. } => ("取消", "cancel"),
            OrderCommand::Dispute { .. } => ("发起争议", "dispute"),
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
    },
    PaymentRecorded {
        payment_reference: String,
        amount: Fen,
        paid_at: DateTime<Utc>,
    },
    DispatchOpened {
        opened_at: DateTime<Utc>,
    },
    WorkerAssigned {
        worker_id: Uuid,
        assigned_by: Actor,
        assigned_at: DateTime<Utc>,
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
    },
    OrderCancelled {
        by: Actor,
        reason: String,
        stage: OrderStatus,
        cancelled_at: DateTime<Utc>,
    },
    OrderDisputed {
        by: Actor,
        reason: String,
        stage: OrderStatus,
        disputed_at: DateTime<Utc>,
    },
}

impl DomainEvent for OrderEvent {
    fn event_type(&self) -> String {
        let name = match self {
            OrderEvent::OrderPlaced { .. } => "OrderPlaced",
            OrderEvent::PaymentRequested { .. } => "PaymentRequested",
            OrderEvent::PaymentRecorded { .. } => "PaymentRecorded",
            OrderEvent::DispatchOpened { .. } => "DispatchOpened",
            OrderEvent::WorkerAssigned { .. } => "WorkerAssigned",
            OrderEvent::AssignmentDeclined { .. } => "AssignmentDeclined",
            OrderEvent::OrderAccepted { .. } => "OrderAccepted",
            OrderEvent::WorkerDeparted { .. } => "WorkerDeparted",
            OrderEvent::WorkerArrived { .. } => "WorkerArrived",
            OrderEvent::ServiceStarted { .. } => "ServiceStarted",
            OrderEvent::ServiceFinished { .. } => "ServiceFinished",
            OrderEvent::OrderReviewed { .. } => "OrderReviewed",
            OrderEvent::OrderCancelled { .. } => "OrderCancelled",
            OrderEvent::OrderDisputed { .. } => "OrderDisputed",
        };
        name.to_owned()
    }

    fn event_version(&self) -> String {
        crate::EVENT_VERSION.to_owned()
    }
}

/// Why an order command was refused. Each maps to a 4xx answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OrderError {
    #[error("订单{}，不能{} / cannot {} an order that is {}", state.labels().1, verb.0, verb.1, state.labels().2)]
    IllegalTransition {
        verb: (&'static str, &'static str),
        state: OrderStatus,
    },
    #[error("订单不存在 / no such order")]
    NotFound,
    #[error("单价 {price} 不在服务「{service}」的价格范围 {min}–{max} 内 / unit price {price} is outside {min}–{max} for this service")]
    PriceOutOfRange {
        service: &'static str,
        price: Fen,
        min: Fen,
        max: Fen,
    },
    #[error("数量必须在 1 到 {max} 之间 / quantity must be between 1 and {max}")]
    BadQuantity { max: u32 },
    #[error(
        "服务时长必须在 {min} 到 {max} 分钟之间 / duration must be between {min} and {max} minutes"
    )]
    BadDuration { min: u32, max: u32 },
    #[error("服务开始时间必须在将来 / the service must start in the future")]
    StartInPast,
    #[error("订单金额溢出 / order total overflows")]
    TotalOverflow,
    #[error("支付金额 {paid} 与订单金额 {due} 不符 / paid {paid} but {due} is due")]
    AmountMismatch { paid: Fen, due: Fen },
    #[error("服务人员不可派单：{0}")]
    WorkerNotEligible(WorkerIneligibility),
    #[error("这不是派给您的订单 / this order is not assigned to you")]
    NotAssignedWorker,
    #[error("这不是您的订单 / this is not your order")]
    NotOwner,
    #[error("评分必须在 1 到 5 之间 / ratings must be between 1 and 5")]
    BadRating,
    #[error("请填写原因 / a reason is required")]
    ReasonRequired,
}

/// Why a worker cannot take an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerIneligibility {
    Unknown,
    Suspended,
    NotApproved,
    LacksSkill,
}

impl std::fmt::Display for WorkerIneligibility {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            WorkerIneligibility::Unknown => "服务人员不存在 / no such worker",
            WorkerIneligibility::Suspended => "服务人员已停用 / the worker is suspended",
            WorkerIneligibility::NotApproved => {
                "服务人员尚未通过资质审核 / the worker has not passed the qualification review"
            }
            WorkerIneligibility::LacksSkill => {
                "服务人员没有该服务的认证技能或有效证书 / the worker is not certified for this service or lacks a valid certificate for it"
            }
        })
    }
}

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
    /// Where, when the customer gave coordinates.
    pub location: Option<crate::values::GeoPoint>,
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

    fn decide(&self, command: OrderCommand) -> Result<Vec<OrderEvent>, OrderError> {
        use OrderStatus as S;
        let refused = self.refuse(&command);
        match (self.status, command) {
            (
                S::New,
                OrderCommand::Place {
                    order_id,
                    booking,
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
                    },
                ])
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
            (S::Paid, OrderCommand::OpenDispatch { now }) => {
                Ok(vec![OrderEvent::DispatchOpened { opened_at: now }])
            }
            (S::Paid | S::Dispatching, OrderCommand::AssignWorker { worker, by, now }) => {
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
                if let Some(reason) = ineligible {
                    return Err(OrderError::WorkerNotEligible(reason));
                }
                Ok(vec![OrderEvent::WorkerAssigned {
                    worker_id: worker.worker_id,
                    assigned_by: by,
                    assigned_at: now,
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
            (S::OnTheWay, OrderCommand::Arrive { worker_id, now }) => {
                self.require_assigned(worker_id)?;
                Ok(vec![OrderEvent::WorkerArrived {
                    worker_id,
                    arrived_at: now,
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
                Ok(vec![OrderEvent::OrderReviewed {
                    quality,
                    attitude,
                    skill,
                    comment: comment.trim().to_owned(),
                    reviewed_at: now,
                }])
            }
            (stage, OrderCommand::Cancel { by, reason, now }) if stage.cancellable() => {
                self.require_owner_or_staff(by)?;
                let reason = required_reason(&reason)?;
                Ok(vec![OrderEvent::OrderCancelled {
                    by,
                    reason,
                    stage,
                    cancelled_at: now,
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

impl Aggregate for Order {
    const TYPE: &'static str = "order";
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;
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
        match event {
            OrderEvent::OrderPlaced { booking, total, .. } => {
                self.status = OrderStatus::Placed;
                self.customer_id = Some(booking.customer_id);
                self.service = Some(booking.service);
                self.total = Some(total);
                let end = booking.scheduled_start
                    + chrono::Duration::minutes(i64::from(booking.duration_minutes));
                self.window = Some((booking.scheduled_start, end));
                self.location = booking.address.location;
            }
            OrderEvent::PaymentRequested { .. } => self.status = OrderStatus::AwaitingPayment,
            OrderEvent::PaymentRecorded { .. } => self.status = OrderStatus::Paid,
            OrderEvent::DispatchOpened { .. } => self.status = OrderStatus::Dispatching,
            OrderEvent::WorkerAssigned { worker_id, .. } => {
                self.status = OrderStatus::Assigned;
                self.worker_id = Some(worker_id);
            }
            OrderEvent::AssignmentDeclined { worker_id, .. } => {
                self.status = OrderStatus::Dispatching;
                self.worker_id = None;
                self.declined_by.push(worker_id);
            }
            OrderEvent::OrderAccepted { .. } => self.status = OrderStatus::Accepted,
            OrderEvent::WorkerDeparted { .. } => self.status = OrderStatus::OnTheWay,
            OrderEvent::WorkerArrived { .. } => self.status = OrderStatus::Arrived,
            OrderEvent::ServiceStarted { .. } => self.status = OrderStatus::InService,
            OrderEvent::ServiceFinished { .. } => self.status = OrderStatus::Completed,
            OrderEvent::OrderReviewed { .. } => self.status = OrderStatus::Reviewed,
            OrderEvent::OrderCancelled { .. } => self.status = OrderStatus::Cancelled,
            OrderEvent::OrderDisputed { .. } => self.status = OrderStatus::Disputed,
        }
    }
}

#[cfg(test)]
#[path = "order_tests.rs"]
mod tests;
