//! `anjia demo-data`: a realistic history of the platform, written as valid events in the log.
//!
//! Every event comes from an aggregate's own decision: the generator keeps each customer,
//! worker, order, payment, wallet and day of presence in memory as its aggregate, gives it the
//! command a person or a process manager would have given at that moment, and writes exactly
//! the events the aggregate decided, with the metadata a real command carries (marked
//! `"source": "demo-data"`). A refusal is a bug in the generator, except where the real
//! platform would also meet one and move on (a worker already booked at that time).
//!
//! Time runs forward: the steps of every order wait in one queue ordered by time, so the log
//! holds them in the order they happened, each event `recorded_at` its moment. Orders are placed
//! over `--months` up to `--end` (today by default) with weekly and yearly seasons, daily peaks
//! and growth; their later steps (service, review, settlement) run only up to now, so a history
//! that ends today leaves orders in flight as a real one would.
//!
//! Rows reach PostgreSQL through `COPY`, many thousand at a time, under the event store's own
//! triggers (hash chain, append-only).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use domain::activity::{presence_id, Platform, Presence, PresenceCommand, SignInMethod};
use domain::availability::local_instant;
use domain::commission::{CommissionSchedule, SCHEDULE_ID};
use domain::customer::{Customer, CustomerCommand};
use domain::dispatch::DispatchStage;
use domain::onboarding::{
    certificates_for, BackgroundCheckOutcome, Certificate, Level, ReviewDecision,
};
use domain::order::{Booking, Order, OrderCommand};
use domain::payment::{CancellationSettlement, Payment, PaymentCommand, PaymentMethod};
use domain::values::{business_day, SealedPoint};
use domain::wallet::{Wallet, WalletCommand};
use domain::worker::{ServiceArea, ServiceBase, Worker, WorkerCommand, WorkerProfile};
use domain::{Actor, Address, CoordinateSystem, Fen, GeoPoint, Role, ServiceCode};
use serde::Serialize;
use sqlx::postgres::PgPoolCopyExt;
use uuid::Uuid;

use crate::state::AppState;
use application::commands::CommandContext;
use application::random::{Random, SERVICE_MIX};

#[derive(Debug, Clone, clap::Args)]
pub struct DemoOptions {
    /// Months of history, up to `--end`.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=36))]
    pub months: u32,
    /// Orders placed over those months.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..=5_000_000))]
    pub orders: u64,
    /// The same seed writes the same history (apart from the vault's random nonces).
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
    /// The last day orders are placed (Beijing); today by default.
    #[arg(long)]
    pub end: Option<NaiveDate>,
    /// Rows per `COPY`.
    #[arg(long, default_value_t = 20_000)]
    pub batch: usize,
}

/// What the generator wrote.
#[derive(Debug, Default, Clone, Serialize)]
pub struct DemoReport {
    pub first_day: Option<NaiveDate>,
    pub last_day: Option<NaiveDate>,
    pub customers: u64,
    pub workers: u64,
    pub orders: u64,
    pub paid: u64,
    pub completed: u64,
    pub cancelled: u64,
    pub refunded: u64,
    pub reviewed: u64,
    pub default_reviews: u64,
    /// Orders whose next step lies after now: in flight, for the live platform to carry on.
    pub in_flight: u64,
    pub events: u64,
    pub seconds: f64,
    pub events_per_second: f64,
}

/// A city with its weight, centre (GCJ-02) and districts with streets.
struct City {
    name: &'static str,
    weight: u64,
    centre: (f64, f64),
    districts: &'static [&'static str],
    streets: &'static [&'static str],
}

const CITIES: [City; 5] = [
    City {
        name: "上海市",
        weight: 32,
        centre: (31.2304, 121.4737),
        districts: &["浦东新区", "徐汇区", "静安区", "长宁区", "闵行区", "杨浦区"],
        streets: &[
            "世纪大道",
            "衡山路",
            "南京西路",
            "虹桥路",
            "莘庄路",
            "国定路",
        ],
    },
    City {
        name: "北京市",
        weight: 28,
        centre: (39.9042, 116.4074),
        districts: &["朝阳区", "海淀区", "东城区", "西城区", "丰台区"],
        streets: &["建国路", "中关村大街", "东四北大街", "金融大街", "丰台北路"],
    },
    City {
        name: "广州市",
        weight: 15,
        centre: (23.1291, 113.2644),
        districts: &["天河区", "越秀区", "海珠区", "番禺区"],
        streets: &["天河路", "中山五路", "江南大道", "市桥街"],
    },
    City {
        name: "深圳市",
        weight: 15,
        centre: (22.5431, 114.0579),
        districts: &["南山区", "福田区", "罗湖区", "宝安区"],
        streets: &["深南大道", "福华路", "人民南路", "新安路"],
    },
    City {
        name: "杭州市",
        weight: 10,
        centre: (30.2741, 120.1551),
        districts: &["西湖区", "上城区", "滨江区", "拱墅区"],
        streets: &["文三路", "延安路", "江南大道", "湖墅南路"],
    },
];

const SURNAMES: [&str; 12] = [
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙",
];
const GIVEN: [&str; 10] = [
    "秀英", "桂兰", "丽", "静", "敏", "伟", "芳", "娜", "军", "磊",
];

/// One row of the events table, as CSV for `COPY`.
struct Log {
    pool: sqlx::PgPool,
    buffer: Vec<u8>,
    rows: usize,
    batch: usize,
    written: u64,
}

fn csv_field(out: &mut Vec<u8>, value: &str) {
    out.push(b'"');
    for byte in value.bytes() {
        if byte == b'"' {
            out.push(b'"');
        }
        out.push(byte);
    }
    out.push(b'"');
}

impl Log {
    /// One event of `stream` at `sequence`, with its command's metadata.
    fn push<E: DomainEvent>(
        &mut self,
        stream: (&str, Uuid),
        sequence: usize,
        event: &E,
        metadata: &str,
        at: DateTime<Utc>,
    ) {
        let payload = serde_json::to_string(event).expect("events serialise");
        let out = &mut self.buffer;
        for text in [stream.0, &stream.1.to_string()] {
            csv_field(out, text);
            out.push(b',');
        }
        out.extend_from_slice(sequence.to_string().as_bytes());
        out.push(b',');
        for text in [
            event.event_type().as_str(),
            event.event_version().as_str(),
            &payload,
            metadata,
        ] {
            csv_field(out, text);
            out.push(b',');
        }
        csv_field(out, &at.to_rfc3339());
        out.push(b'\n');
        self.rows += 1;
    }

    async fn flush_if_full(&mut self) -> anyhow::Result<()> {
        if self.rows >= self.batch {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let mut copy = self
            .pool
            .copy_in_raw(
                "COPY events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                              payload, metadata, recorded_at) FROM STDIN WITH (FORMAT csv)",
            )
            .await?;
        copy.send(std::mem::take(&mut self.buffer)).await?;
        let written = copy.finish().await?;
        self.written += written;
        self.rows = 0;
        Ok(())
    }
}

/// One aggregate kept in memory, with its version.
struct Stream<A> {
    id: Uuid,
    state: A,
    version: usize,
}

impl<A> Stream<A>
where
    A: Aggregate<Services = ()>,
{
    fn new(id: Uuid) -> Self {
        Stream {
            id,
            state: A::default(),
            version: 0,
        }
    }

    /// Decides `command` at `at` as `actor` (the platform when `None`) and logs its events.
    async fn run(
        &mut self,
        log: &mut Log,
        random: &mut Random,
        actor: Option<Actor>,
        at: DateTime<Utc>,
        command: A::Command,
    ) -> Result<usize, A::Error> {
        let sink = EventSink::default();
        self.state.handle(command, &(), &sink).await?;
        let events = sink.collect().await;
        let context = CommandContext {
            command_id: random.uuid(),
            actor,
            occurred_at: at,
            ..CommandContext::system()
        };
        let mut metadata = context.metadata();
        metadata.insert("source".to_owned(), "demo-data".to_owned());
        let metadata = serde_json::to_string(&metadata).expect("metadata serialises");
        let count = events.len();
        for event in events {
            self.version += 1;
            log.push((A::TYPE, self.id), self.version, &event, &metadata, at);
        }
        Ok(count)
    }
}

/// Runs a command that must succeed; a refusal is the generator's bug.
macro_rules! must {
    ($stream:expr, $log:expr, $random:expr, $actor:expr, $at:expr, $command:expr) => {{
        let command = $command;
        $stream
            .run($log, $random, $actor, $at, command)
            .await
            .map_err(|error| {
                let source = stringify!($command);
                let label = source.split([' ', '{', '(']).next().unwrap_or_default();
                anyhow::anyhow!("demo data: {label} on {}: {error}", $stream.id)
            })?
    }};
}

struct DemoCustomer {
    stream: Stream<Customer>,
    city: usize,
    address: Address,
    /// The address's point, as the customer's app knows it.
    point: GeoPoint,
}

struct DemoWorker {
    stream: Stream<Worker>,
    wallet: Stream<Wallet>,
    city: usize,
    first_skill: ServiceCode,
    level: Level,
    /// The stars this worker earns on average, and from when they fall (if they do).
    mean: f64,
    falls_from: Option<DateTime<Utc>>,
    /// The last Beijing day they went online, and whether they are online.
    online_day: Option<NaiveDate>,
}

/// What happens to an order, decided when it is placed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fate {
    Unpaid,
    CancelledAfterPayment,
    Served,
}

struct DemoOrder {
    stream: Stream<Order>,
    payment: Option<Stream<Payment>>,
    customer: usize,
    worker: Option<usize>,
    service: ServiceCode,
    total: i64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    location: GeoPoint,
    fate: Fate,
    method: PaymentMethod,
}

/// The history being written: every aggregate in memory, and the queue of what happens next.
struct Simulation<'a> {
    state: &'a AppState,
    log: Log,
    random: Random,
    queue: Queue,
    customers: Vec<DemoCustomer>,
    workers: Vec<DemoWorker>,
    /// Orders still running their course.
    orders: HashMap<Uuid, DemoOrder>,
    /// Each order to place: its customer and moment.
    planned: Vec<(usize, DateTime<Utc>)>,
    /// Who can do what, by city.
    by_city_and_service: HashMap<(usize, ServiceCode), Vec<usize>>,
    /// Payments of cancelled orders whose refund has yet to complete.
    refunding: HashMap<Uuid, Stream<Payment>>,
    /// Today's presence streams; a new day starts new ones.
    presence: HashMap<Uuid, Stream<Presence>>,
    presence_day: Option<NaiveDate>,
    schedule: CommissionSchedule,
    admin: Actor,
    report: DemoReport,
}

/// The next thing to happen.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    RegisterCustomer(usize),
    OnboardWorker(usize),
    Place(usize),
    Expire(Uuid),
    Pay(Uuid),
    Capture(Uuid),
    Dispatch(Uuid),
    Accept(Uuid),
    Cancel(Uuid),
    CompleteRefund(Uuid, Uuid),
    Online(usize),
    Offline(usize),
    Depart(Uuid),
    Arrive(Uuid),
    Start(Uuid),
    Finish(Uuid),
    Review(Uuid),
    DefaultReview(Uuid),
    Settle(usize),
}

struct Queue {
    heap: BinaryHeap<Reverse<(DateTime<Utc>, u64, Step)>>,
    counter: u64,
}

impl Queue {
    fn push(&mut self, at: DateTime<Utc>, step: Step) {
        self.counter += 1;
        self.heap.push(Reverse((at, self.counter, step)));
    }
}

/// A day's weight: growth over the range, weekends, the run-up to Spring Festival and the
/// summer lull.
fn day_weight(day: NaiveDate, first: NaiveDate, last: NaiveDate) -> f64 {
    let span = (last - first).num_days().max(1) as f64;
    let growth = 0.7 + 0.6 * ((day - first).num_days() as f64 / span);
    let weekday = match day.weekday().num_days_from_monday() {
        5 | 6 => 1.45,
        4 => 1.1,
        _ => 0.9,
    };
    let season = match day.month() {
        1 => 1.5,
        2 => 1.2,
        7 | 8 => 0.85,
        12 => 1.15,
        _ => 1.0,
    };
    growth * weekday * season
}

/// Hours of the day (Beijing) orders are placed, with their weights: a morning and an evening
/// peak.
const PLACING_HOURS: [(u32, u64); 16] = [
    (7, 3),
    (8, 6),
    (9, 10),
    (10, 11),
    (11, 8),
    (12, 6),
    (13, 6),
    (14, 7),
    (15, 7),
    (16, 6),
    (17, 6),
    (18, 7),
    (19, 9),
    (20, 10),
    (21, 8),
    (22, 4),
];

fn point_near(random: &mut Random, centre: (f64, f64)) -> GeoPoint {
    let spread = if random.chance(0.6) { 0.06 } else { 0.15 };
    GeoPoint::new(
        centre.0 + (random.unit() - 0.5) * 2.0 * spread,
        centre.1 + (random.unit() - 0.5) * 2.0 * spread * 1.2,
        CoordinateSystem::Gcj02,
    )
    .expect("in range")
}

fn name(random: &mut Random) -> String {
    format!("{}{}", random.pick(&SURNAMES), random.pick(&GIVEN))
}

fn phone(random: &mut Random) -> String {
    format!("1{}{:09}", 3 + random.below(7), random.below(1_000_000_000))
}

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

pub async fn generate(state: &AppState, options: &DemoOptions) -> anyhow::Result<DemoReport> {
    let started = Instant::now();
    let now = Utc::now();
    let mut random = Random(options.seed);
    let last = options.end.unwrap_or_else(|| business_day(now));
    anyhow::ensure!(
        local_instant(last, NaiveTime::MIN) <= now,
        "--end may not be after today"
    );
    let first = last
        .checked_sub_months(chrono::Months::new(options.months))
        .context("--months goes too far back")?;
    let mut report = DemoReport {
        first_day: Some(first),
        last_day: Some(last),
        ..DemoReport::default()
    };
    let log = Log {
        pool: state.pool.clone(),
        buffer: Vec::with_capacity(options.batch * 700),
        rows: 0,
        batch: options.batch.max(100),
        written: 0,
    };
    let (schedule, _): (CommissionSchedule, usize) = state.commissions.load(SCHEDULE_ID).await?;
    let admin = Actor {
        id: Uuid::new_v5(&Uuid::NAMESPACE_OID, b"anjia:demo-data:admin"),
        role: Role::Admin,
    };
    let mut queue = Queue {
        heap: BinaryHeap::new(),
        counter: 0,
    };

    // When each order is placed.
    let days: Vec<NaiveDate> = first.iter_days().take_while(|day| *day <= last).collect();
    let weights: Vec<f64> = days
        .iter()
        .map(|day| day_weight(*day, first, last))
        .collect();
    let total_weight: f64 = weights.iter().sum();
    let mut placements: Vec<DateTime<Utc>> = Vec::with_capacity(options.orders as usize);
    for (day, weight) in days.iter().zip(&weights) {
        let share = options.orders as f64 * weight / total_weight;
        let mut count = share.floor() as u64;
        if random.unit() < share.fract() {
            count += 1;
        }
        for _ in 0..count {
            let hour = random.weighted(&PLACING_HOURS);
            let at = local_instant(
                *day,
                NaiveTime::from_hms_opt(hour, random.below(60) as u32, random.below(60) as u32)
                    .expect("a time"),
            );
            if at < now {
                placements.push(at);
            }
        }
    }
    placements.sort();

    // Workers: a tenth join during the range. About one service every two days per worker, and at least one worker for every
    // service in every city.
    let basics = CITIES.len() * SERVICE_MIX.len();
    let worker_count =
        ((options.orders / (u64::from(options.months) * 15)) as usize).clamp(basics, 100_000);
    let mut workers: Vec<DemoWorker> = Vec::with_capacity(worker_count);
    let city_weights: Vec<(usize, u64)> = CITIES
        .iter()
        .enumerate()
        .map(|(index, city)| (index, city.weight))
        .collect();
    for index in 0..worker_count {
        // Every city gets every service early on; after that, by weight.
        let (city, first_skill) = if index < basics {
            (index % CITIES.len(), SERVICE_MIX[index / CITIES.len()].0)
        } else {
            (
                random.weighted(&city_weights),
                random.weighted(&SERVICE_MIX),
            )
        };
        let joins = if index >= basics && random.chance(0.1) {
            local_instant(
                *random.pick(&days[..days.len().saturating_sub(14).max(1)]),
                NaiveTime::from_hms_opt(10, 0, 0).expect("a time"),
            )
        } else {
            local_instant(first, NaiveTime::from_hms_opt(9, 0, 0).expect("a time"))
                - random.minutes(60 * 24, 60 * 24 * 60)
        };
        let falls = random.chance(0.06);
        let range = local_instant(last, NaiveTime::MIN) - local_instant(first, NaiveTime::MIN);
        workers.push(DemoWorker {
            stream: Stream::new(random.uuid()),
            wallet: Stream::new(Uuid::nil()),
            city,
            first_skill,
            level: *random.pick(&[Level::Standard, Level::Standard, Level::Silver, Level::Gold]),
            mean: 3.7 + random.unit() * 1.2,
            falls_from: falls.then(|| local_instant(first, NaiveTime::MIN) + range * 2 / 3),
            online_day: None,
        });
        let worker = workers.last_mut().expect("pushed");
        worker.wallet = Stream::new(worker.stream.id);
        queue.push(joins, Step::OnboardWorker(index));
    }

    // Customers: a fifth of the orders come from new customers, the rest from returning ones.
    let mut customers: Vec<DemoCustomer> = Vec::new();
    let mut planned: Vec<(usize, DateTime<Utc>)> = Vec::with_capacity(placements.len());
    for at in &placements {
        let new = customers.is_empty() || random.chance(0.22);
        let customer = if new {
            let city = random.weighted(&city_weights);
            let id = random.uuid();
            let spec = &CITIES[city];
            let detail = format!(
                "{}{}号{}栋{}室",
                random.pick(spec.streets),
                1 + random.below(800),
                1 + random.below(30),
                101 + random.below(2800)
            );
            let contact = name(&mut random);
            let mobile = phone(&mut random);
            let district = random.pick(spec.districts).to_string();
            let point = point_near(&mut random, spec.centre);
            let sealed = state
                .vault
                .seal_all(
                    id,
                    &[&detail, &contact, &mobile, &SealedPoint::plaintext(&point)],
                )
                .await
                .map_err(|error| anyhow::anyhow!("sealing: {error}"))?;
            let address = Address {
                city: spec.name.to_owned(),
                district,
                detail: sealed[0].clone(),
                contact_name: sealed[1].clone(),
                contact_phone: sealed[2].clone(),
                location: Some(SealedPoint::new(&point, sealed[3].clone())),
            };
            customers.push(DemoCustomer {
                stream: Stream::new(id),
                city,
                address,
                point,
            });
            let index = customers.len() - 1;
            let registers =
                (*at - random.minutes(5, 60 * 48)).max(local_instant(first, NaiveTime::MIN));
            queue.push(registers.min(*at), Step::RegisterCustomer(index));
            index
        } else {
            // Returning customers: the ones who ordered recently are likelier to order again.
            let recent = customers.len().min(400);
            if random.chance(0.6) {
                customers.len() - 1 - random.below(recent as u64) as usize
            } else {
                random.below(customers.len() as u64) as usize
            }
        };
        planned.push((customer, *at));
    }
    for (index, (_, at)) in planned.iter().enumerate() {
        queue.push(*at, Step::Place(index));
    }
    report.customers = customers.len() as u64;
    report.workers = workers.len() as u64;

    let mut simulation = Simulation {
        state,
        log,
        random,
        queue,
        customers,
        workers,
        orders: HashMap::new(),
        planned,
        by_city_and_service: HashMap::new(),
        refunding: HashMap::new(),
        presence: HashMap::new(),
        presence_day: None,
        schedule,
        admin,
        report,
    };

    while let Some(Reverse((at, _, step))) = simulation.queue.heap.pop() {
        if at > now {
            // Everything from here on lies in the future: in flight.
            let mut waiting: std::collections::HashSet<Uuid> = std::collections::HashSet::new();
            for Reverse((_, _, step)) in simulation.queue.heap.drain() {
                if let Some(order) = step_order(&step) {
                    waiting.insert(order);
                }
            }
            if let Some(order) = step_order(&step) {
                waiting.insert(order);
            }
            simulation.report.in_flight = waiting.len() as u64;
            break;
        }
        simulation.step(at, step).await?;
        simulation.log.flush_if_full().await?;
    }
    simulation.log.flush().await?;
    let mut report = simulation.report;
    report.events = simulation.log.written;
    report.seconds = started.elapsed().as_secs_f64();
    report.events_per_second = report.events as f64 / report.seconds.max(1e-9);
    Ok(report)
}

impl Simulation<'_> {
    /// Does one step at its moment.
    async fn step(&mut self, at: DateTime<Utc>, step: Step) -> anyhow::Result<()> {
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

fn step_order(step: &Step) -> Option<Uuid> {
    match step {
        Step::Expire(id)
        | Step::Pay(id)
        | Step::Capture(id)
        | Step::Dispatch(id)
        | Step::Accept(id)
        | Step::Cancel(id)
        | Step::Depart(id)
        | Step::Arrive(id)
        | Step::Start(id)
        | Step::Finish(id)
        | Step::Review(id)
        | Step::DefaultReview(id) => Some(*id),
        _ => None,
    }
}

fn worker_actor(id: Uuid) -> Option<Actor> {
    Some(Actor {
        id,
        role: Role::Worker,
    })
}

fn customer_actor(id: Uuid) -> Option<Actor> {
    Some(Actor {
        id,
        role: Role::Customer,
    })
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

/// A worker's onboarding as it happens on the platform: registration, identity, a clear
/// background check, the certificates their services need, approval at a level, certified
/// skills and a service base. Answers their skills.
async fn onboard(
    state: &AppState,
    worker: &mut DemoWorker,
    log: &mut Log,
    random: &mut Random,
    admin: Actor,
    at: DateTime<Utc>,
) -> anyhow::Result<Vec<ServiceCode>> {
    let id = worker.stream.id;
    let city = &CITIES[worker.city];
    // One to three services, the first by the mix; every city gets every service early.
    let mut skills = vec![worker.first_skill];
    for _ in 0..random.below(3) {
        let service = random.weighted(&SERVICE_MIX);
        if !skills.contains(&service) {
            skills.push(service);
        }
    }
    let worker_name = name(random);
    let mobile = phone(random);
    let id_number = id_number(random);
    let sealed = state
        .vault
        .seal_all(id, &[&worker_name, &mobile, &id_number])
        .await
        .map_err(|error| anyhow::anyhow!("sealing: {error}"))?;
    let me = Some(Actor {
        id,
        role: Role::Worker,
    });
    let profile = WorkerProfile {
        name: sealed[0].clone(),
        phone: sealed[1].clone(),
        years_of_experience: 1 + random.below(15) as u8,
        languages: vec!["普通话".to_owned()],
        service_area: ServiceArea {
            city: city.name.to_owned(),
            districts: vec![random.pick(city.districts).to_string()],
        },
        photo_ref: None,
    };
    must!(
        worker.stream,
        log,
        random,
        me,
        at,
        WorkerCommand::Register {
            worker_id: id,
            profile,
            skills: skills.clone(),
            now: at,
        }
    );
    must!(
        worker.stream,
        log,
        random,
        me,
        at,
        WorkerCommand::SubmitIdentity {
            id_number: sealed[2].clone(),
            now: at,
        }
    );
    must!(
        worker.stream,
        log,
        random,
        None,
        at,
        WorkerCommand::RecordBackgroundCheck {
            outcome: BackgroundCheckOutcome {
                source: "offline-blacklist".to_owned(),
                hits: Vec::new(),
            },
            now: at,
        }
    );
    let today = business_day(at);
    let kinds = certificates_for(&skills);
    for kind in kinds {
        must!(
            worker.stream,
            log,
            random,
            me,
            at,
            WorkerCommand::AddCertificate {
                certificate: Certificate {
                    certificate_id: random.uuid(),
                    kind,
                    number: format!("DEMO-{:08}", random.below(100_000_000)),
                    issued_on: today - Duration::days(200 + random.below(900) as i64),
                    expires_on: today + Duration::days(3 * 365),
                },
                now: at,
            }
        );
    }
    let approved = at + random.minutes(60, 60 * 24);
    must!(
        worker.stream,
        log,
        random,
        Some(admin),
        approved,
        WorkerCommand::Review {
            by: admin,
            decision: ReviewDecision::Approve {
                level: worker.level,
            },
            now: approved,
        }
    );
    for service in &skills {
        must!(
            worker.stream,
            log,
            random,
            Some(admin),
            approved,
            WorkerCommand::CertifySkill {
                by: admin,
                service: *service,
                now: approved,
            }
        );
    }
    let base = point_near(random, city.centre);
    let sealed_base = state
        .vault
        .seal(id, &SealedPoint::plaintext(&base))
        .await
        .map_err(|error| anyhow::anyhow!("sealing: {error}"))?;
    must!(
        worker.stream,
        log,
        random,
        me,
        approved,
        WorkerCommand::SetServiceBase {
            base: ServiceBase {
                location: base,
                radius_km: 30,
            },
            sealed: sealed_base,
            now: approved,
        }
    );
    Ok(skills)
}

/// A well-formed resident identity number (ISO 7064 check character) born in the 1970s–80s.
fn id_number(random: &mut Random) -> String {
    let body = format!(
        "110105{}{:02}{:02}{:03}",
        1970 + random.below(20),
        1 + random.below(12),
        1 + random.below(28),
        random.below(1000)
    );
    let check = domain::onboarding::IdCardNumber::check_character(&body).expect("17 digits");
    format!("{body}{check}")
}

/// The presence stream of `user` today, made on first use.
fn presence_of(
    presence: &mut HashMap<Uuid, Stream<Presence>>,
    user: Uuid,
    at: DateTime<Utc>,
) -> &mut Stream<Presence> {
    let id = presence_id(user, business_day(at));
    presence.entry(id).or_insert_with(|| Stream::new(id))
}

/// What a person did in the app.
enum Seen {
    SignIn,
    AppOpen,
}

/// Records a sign-in or an app open (with a method or platform in the usual proportions).
async fn seen(
    presence: &mut HashMap<Uuid, Stream<Presence>>,
    log: &mut Log,
    random: &mut Random,
    (user, role): (Uuid, Role),
    at: DateTime<Utc>,
    what: Seen,
) -> anyhow::Result<()> {
    let command = match what {
        Seen::SignIn => PresenceCommand::RecordSignIn {
            user_id: user,
            role,
            method: random.weighted(&[
                (SignInMethod::Code, 6),
                (SignInMethod::Password, 3),
                (SignInMethod::Oauth, 1),
            ]),
            now: at,
        },
        Seen::AppOpen => PresenceCommand::RecordAppOpen {
            user_id: user,
            role,
            platform: random.weighted(&[
                (Platform::MiniProgram, 45),
                (Platform::Ios, 25),
                (Platform::Android, 25),
                (Platform::Web, 5),
            ]),
            app_version: Some("4.2.0".to_owned()),
            now: at,
        },
    };
    let stream = presence_of(presence, user, at);
    must!(
        stream,
        log,
        random,
        Some(Actor { id: user, role }),
        at,
        command
    );
    Ok(())
}
