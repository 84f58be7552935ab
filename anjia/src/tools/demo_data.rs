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

use application::commands::CommandContext;
use application::random::{Random, SERVICE_MIX};
use application::Services;

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

mod steps;

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
    state: &'a Services,
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

pub async fn generate(state: &Services, options: &DemoOptions) -> anyhow::Result<DemoReport> {
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
