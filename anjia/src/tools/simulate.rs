//! `anjia simulate`: replays a day of orders and workers under a dispatch policy and reports
//! what it would have done (time to assign, travel, unassigned orders, fairness of load), so a
//! policy can be judged before it is switched on. `anjia bench dispatch`: one automatic round
//! of 1,000 orders against 5,000 workers, timed, with its total cost against the certified
//! optimum of the same cost matrix.
//!
//! The day comes either from the event log (`--date`: the orders placed that day, the workers
//! as the dispatch read model knows them now, with empty calendars) or from a seeded generator
//! (orders and workers around Shanghai, morning and afternoon peaks).

use std::collections::HashMap;
use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use cqrs_es::Aggregate;
use domain::availability::local_instant;
use domain::dispatch::{
    certify, greedy, optimal, plan_round, price, Candidate, Method, OpenOrder, Weights,
};
use domain::onboarding::{certificates_for, Certificate, ReviewStatus};
use domain::order::OrderEvent;
use domain::worker::{ServiceBase, Worker, WorkerEvent};
use domain::{CoordinateSystem, GeoPoint, ServiceCode};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use application::random::{Random, SERVICE_MIX};
use application::stats::{median, Sorted};

/// One order of the day: when it came in, and what it asks for.
#[derive(Debug, Clone)]
pub struct DayOrder {
    pub placed_at: DateTime<Utc>,
    pub order: OpenOrder,
}

/// A day to replay.
#[derive(Debug, Clone)]
pub struct Day {
    pub date: NaiveDate,
    pub orders: Vec<DayOrder>,
    pub workers: Vec<Candidate>,
}

fn pick_service(random: &mut Random) -> ServiceCode {
    random.weighted(&SERVICE_MIX)
}

/// A point in greater Shanghai (GCJ-02), denser towards the centre.
fn shanghai_point(random: &mut Random) -> GeoPoint {
    let spread = if random.unit() < 0.6 { 0.08 } else { 0.2 };
    let latitude = 31.23 + (random.unit() - 0.5) * 2.0 * spread;
    let longitude = 121.47 + (random.unit() - 0.5) * 2.0 * spread * 1.2;
    GeoPoint::new(latitude, longitude, CoordinateSystem::Gcj02).expect("in range")
}

fn local(date: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    local_instant(
        date,
        NaiveTime::from_hms_opt(hour, minute, 0).expect("a time of day"),
    )
}

/// A qualified worker's state, as their events would have folded it.
fn qualified_worker(
    worker_id: Uuid,
    skills: Vec<ServiceCode>,
    base: ServiceBase,
    date: NaiveDate,
) -> Worker {
    let mut worker = Worker {
        registered: true,
        review: ReviewStatus::Approved,
        skills: skills.clone(),
        certified_skills: skills.clone(),
        base: Some(base),
        ..Worker::default()
    };
    let kinds = certificates_for(&skills);
    for (index, kind) in kinds.into_iter().enumerate() {
        worker.certificates.push((
            Certificate {
                certificate_id: Uuid::from_u128(worker_id.as_u128() ^ index as u128),
                kind,
                number: format!("SIM-{index}"),
                issued_on: date - Duration::days(365),
                expires_on: date + Duration::days(365),
            },
            false,
        ));
    }
    worker
}

/// A generated day: `orders` orders placed between 07:00 and 21:00 (peaks mid-morning and
/// early evening) for services from two hours to two days ahead, and `workers` workers with
/// one to three skills, a base and a radius, some already booked.
pub fn generated_day(seed: u64, orders: usize, workers: usize, date: NaiveDate) -> Day {
    let mut random = Random(seed);
    let mut candidates = Vec::with_capacity(workers);
    for _ in 0..workers {
        let worker_id = random.uuid();
        let mut skills = vec![pick_service(&mut random)];
        for _ in 0..random.below(3) {
            let extra = pick_service(&mut random);
            if !skills.contains(&extra) {
                skills.push(extra);
            }
        }
        let base = ServiceBase {
            location: shanghai_point(&mut random),
            radius_km: 5 + random.below(16) as u32,
        };
        let mut worker = qualified_worker(worker_id, skills, base, date);
        // Some already have a job that day.
        for job in 0..random.below(3) {
            let start = local(date, 8 + 4 * job as u32, 30 * random.below(2) as u32);
            worker.apply(WorkerEvent::WorkerBooked {
                order_id: random.uuid(),
                start,
                end: start + Duration::minutes(150),
                location: Some(shanghai_point(&mut random)),
                at: start - Duration::days(1),
            });
        }
        candidates.push(Candidate {
            worker_id,
            worker,
            city: "上海市".to_owned(),
            rating: (random.unit() < 0.8).then(|| 3.5 + random.unit() * 1.5),
            recent_earnings_fen: random.below(1_500_000) as i64,
        });
    }
    let mut day_orders = Vec::with_capacity(orders);
    for _ in 0..orders {
        // Two peaks: around 10:00 and 19:00.
        let centre = if random.unit() < 0.55 { 10.0 } else { 19.0 };
        let hour = (centre + (random.unit() + random.unit() + random.unit() - 1.5) * 3.0)
            .clamp(7.0, 20.99);
        let placed_at = local(date, hour as u32, ((hour.fract()) * 60.0) as u32);
        let service = pick_service(&mut random);
        let spec = service.spec();
        let duration = spec
            .min_duration_minutes
            .max(120)
            .min(spec.max_duration_minutes);
        let lead_hours = 2 + random.below(46) as i64;
        let start_hour = (placed_at + Duration::hours(lead_hours))
            .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8"));
        // Round to the half hour, between 08:00 and 18:00 local.
        let start_date = start_hour.date_naive();
        let clock = start_hour.time();
        let hour = clock
            .format("%H")
            .to_string()
            .parse::<u32>()
            .unwrap_or(9)
            .clamp(8, 17);
        let start = local(start_date, hour, 30 * random.below(2) as u32);
        let start = start.max(placed_at + Duration::hours(1));
        day_orders.push(DayOrder {
            placed_at,
            order: OpenOrder {
                order_id: random.uuid(),
                customer_id: random.uuid(),
                service,
                city: "上海市".to_owned(),
                start,
                end: start + Duration::minutes(i64::from(duration)),
                location: Some(shanghai_point(&mut random)),
                declined_by: Vec::new(),
                blocked: Vec::new(),
                previous_workers: Vec::new(),
                waiting_since: placed_at,
            },
        });
    }
    day_orders.sort_by_key(|order| order.placed_at);
    Day {
        date,
        orders: day_orders,
        workers: candidates,
    }
}

/// The day `date` (Asia/Shanghai) from the event log: every order placed that day, and every
/// dispatchable worker as the dispatch read model knows them, with empty calendars.
pub async fn day_from_log(pool: &PgPool, date: NaiveDate) -> anyhow::Result<Day> {
    let from = local(date, 0, 0);
    let to = from + Duration::days(1);
    let rows = sqlx::query_as::<_, (String, serde_json::Value, String, DateTime<Utc>)>(
        "SELECT aggregate_id, payload, event_version, recorded_at FROM events
          WHERE aggregate_type = 'order' AND event_type = 'OrderPlaced'
            AND recorded_at >= $1 AND recorded_at < $2
          ORDER BY recorded_at",
    )
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    let mut orders = Vec::with_capacity(rows.len());
    for (order_id, payload, version, recorded_at) in rows {
        let payload = domain::upcast::upcast("OrderPlaced", &version, payload)
            .map_err(|why| anyhow::anyhow!("an OrderPlaced event: {why}"))?;
        let OrderEvent::OrderPlaced { booking, .. } =
            serde_json::from_value(payload).context("an OrderPlaced event")?
        else {
            continue;
        };
        let start = booking.scheduled_start;
        let location = booking.address.cell();
        orders.push(DayOrder {
            placed_at: recorded_at,
            order: OpenOrder {
                order_id: order_id.parse()?,
                customer_id: booking.customer_id,
                service: booking.service,
                city: booking.address.city,
                start,
                end: start + Duration::minutes(i64::from(booking.duration_minutes)),
                location,
                declined_by: Vec::new(),
                blocked: Vec::new(),
                previous_workers: Vec::new(),
                waiting_since: recorded_at,
            },
        });
    }
    let workers = projections::dispatch::dispatchable_workers(pool, None, Utc::now())
        .await?
        .into_iter()
        .map(|row| {
            let mut candidate = application::dispatch::candidate(row);
            candidate.worker.bookings.clear();
            candidate
        })
        .collect();
    Ok(Day {
        date,
        orders,
        workers,
    })
}

/// How orders find workers in a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Rounds that minimise the total cost of all waiting orders together.
    Optimal,
    /// Rounds that take waiting orders one at a time, oldest first, each to its cheapest worker.
    Greedy,
    /// Every eligible worker sees the order; whoever reacts first takes it.
    Grab,
}

/// What a policy did with the day.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub policy: Policy,
    pub orders: usize,
    pub workers: usize,
    pub assigned: usize,
    pub unassigned: usize,
    pub minutes_to_assign_mean: f64,
    pub minutes_to_assign_p90: f64,
    pub travel_minutes_total: i64,
    pub travel_minutes_mean: f64,
    /// Jain's fairness index of jobs over workers who could have taken any (1 = perfectly even).
    pub load_fairness: f64,
    pub max_jobs_per_worker: usize,
    /// Workers who got at least one job.
    pub workers_used: usize,
    pub planning_millis: u128,
}

/// Replays the day: rounds every `round_minutes` from the first order; an order waits at most
/// `give_up_minutes` before it counts as unassigned (it would go to the admins).
pub fn replay(
    day: &Day,
    policy: Policy,
    weights: &Weights,
    round_minutes: i64,
    give_up_minutes: i64,
    seed: u64,
) -> Outcome {
    let started = Instant::now();
    let mut random = Random(seed ^ 0x5EED);
    let mut workers = day.workers.clone();
    let mut waiting: Vec<&DayOrder> = Vec::new();
    let mut next = 0;
    let mut waits = Vec::new();
    let mut travel_total = 0i64;
    let mut unassigned = 0usize;
    let mut jobs: HashMap<Uuid, usize> = HashMap::new();
    let Some(first) = day.orders.first() else {
        return summarise(day, policy, &workers, &[], 0, 0, &jobs, started);
    };
    let mut clock = first.placed_at;
    let round = Duration::minutes(round_minutes.max(1));
    while next < day.orders.len() || !waiting.is_empty() {
        clock += round;
        while next < day.orders.len() && day.orders[next].placed_at <= clock {
            waiting.push(&day.orders[next]);
            next += 1;
        }
        let before = waiting.len();
        waiting.retain(|order| {
            clock - order.placed_at <= Duration::minutes(give_up_minutes)
                && order.order.start > clock
        });
        unassigned += before - waiting.len();
        if waiting.is_empty() {
            continue;
        }
        let open: Vec<OpenOrder> = waiting.iter().map(|order| order.order.clone()).collect();
        let today = domain::values::business_day(clock);
        let pairs: Vec<(usize, usize, i64)> = match policy {
            Policy::Optimal | Policy::Greedy => {
                let method = if policy == Policy::Optimal {
                    Method::Optimal
                } else {
                    Method::Greedy
                };
                plan_round(&open, &workers, weights, method, today)
                    .proposals
                    .into_iter()
                    .map(|proposal| {
                        (
                            proposal.order_index,
                            proposal.worker_index,
                            proposal.score.travel_minutes,
                        )
                    })
                    .collect()
            }
            Policy::Grab => {
                // Each eligible worker reacts after a random delay; the quickest within this
                // round wins. Workers who take one order this round are busy with the app.
                let matrix = price(&open, &workers, weights, today);
                let mut taken = vec![false; workers.len()];
                let mut pairs = Vec::new();
                for (row, order) in open.iter().enumerate() {
                    let quickest = (0..matrix.columns)
                        .filter(|column| !taken[*column] && matrix.get(row, *column).is_some())
                        .map(|column| (random.below(1_000), column))
                        .min();
                    if let Some((_, column)) = quickest {
                        taken[column] = true;
                        let travel =
                            domain::dispatch::eligibility(order, &workers[column], weights, today)
                                .map_or(0, |score| score.travel_minutes);
                        pairs.push((row, column, travel));
                    }
                }
                pairs
            }
        };
        let mut done = vec![false; open.len()];
        for (row, column, travel) in pairs {
            let order = &open[row];
            workers[column].worker.apply(WorkerEvent::WorkerBooked {
                order_id: order.order_id,
                start: order.start,
                end: order.end,
                location: order.location,
                at: clock,
            });
            *jobs.entry(workers[column].worker_id).or_default() += 1;
            waits.push((clock - waiting[row].placed_at).num_seconds() as f64 / 60.0);
            travel_total += travel;
            done[row] = true;
        }
        let mut index = 0;
        waiting.retain(|_| {
            let keep = !done[index];
            index += 1;
            keep
        });
    }
    summarise(
        day,
        policy,
        &workers,
        &waits,
        travel_total,
        unassigned,
        &jobs,
        started,
    )
}

#[allow(clippy::too_many_arguments)]
fn summarise(
    day: &Day,
    policy: Policy,
    workers: &[Candidate],
    waits: &[f64],
    travel_total: i64,
    unassigned: usize,
    jobs: &HashMap<Uuid, usize>,
    started: Instant,
) -> Outcome {
    let sorted = Sorted::new(waits.to_vec());
    let assigned = waits.len();
    // Fairness over every worker who holds a skill some order asked for.
    let asked: Vec<ServiceCode> = day.orders.iter().map(|order| order.order.service).collect();
    let loads: Vec<f64> = workers
        .iter()
        .filter(|candidate| {
            candidate
                .worker
                .skills
                .iter()
                .any(|skill| asked.contains(skill))
        })
        .map(|candidate| jobs.get(&candidate.worker_id).copied().unwrap_or(0) as f64)
        .collect();
    let sum: f64 = loads.iter().sum();
    let squares: f64 = loads.iter().map(|load| load * load).sum();
    let fairness = if squares > 0.0 {
        sum * sum / (loads.len() as f64 * squares)
    } else {
        1.0
    };
    Outcome {
        policy,
        orders: day.orders.len(),
        workers: workers.len(),
        assigned,
        unassigned: unassigned + day.orders.len().saturating_sub(assigned + unassigned),
        minutes_to_assign_mean: if assigned > 0 {
            waits.iter().sum::<f64>() / assigned as f64
        } else {
            0.0
        },
        minutes_to_assign_p90: sorted.percentile(0.9),
        travel_minutes_total: travel_total,
        travel_minutes_mean: if assigned > 0 {
            travel_total as f64 / assigned as f64
        } else {
            0.0
        },
        load_fairness: (fairness * 1000.0).round() / 1000.0,
        max_jobs_per_worker: jobs.values().copied().max().unwrap_or(0),
        workers_used: jobs.len(),
        planning_millis: started.elapsed().as_millis(),
    }
}

/// `anjia simulate` options.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateOptions {
    /// Which policies to replay; all three when not given.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub policy: Vec<Policy>,
    /// Replay the orders placed on this local date from the event log (needs the database);
    /// without it, a generated day.
    #[arg(long)]
    pub date: Option<NaiveDate>,
    /// Generated day: how many orders.
    #[arg(long, default_value_t = 600)]
    pub orders: usize,
    /// Generated day: how many workers.
    #[arg(long, default_value_t = 300)]
    pub workers: usize,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Minutes between dispatch rounds.
    #[arg(long, default_value_t = 2)]
    pub round_minutes: i64,
    /// Minutes an order may wait before it counts as unassigned.
    #[arg(long, default_value_t = 60)]
    pub give_up_minutes: i64,
}

#[derive(Debug, Serialize)]
pub struct SimulationReport {
    pub source: String,
    pub date: NaiveDate,
    pub outcomes: Vec<Outcome>,
}

pub fn simulate(day: &Day, options: &SimulateOptions, source: String) -> SimulationReport {
    let policies = if options.policy.is_empty() {
        vec![Policy::Optimal, Policy::Greedy, Policy::Grab]
    } else {
        options.policy.clone()
    };
    let weights = Weights::default();
    SimulationReport {
        source,
        date: day.date,
        outcomes: policies
            .into_iter()
            .map(|policy| {
                replay(
                    day,
                    policy,
                    &weights,
                    options.round_minutes,
                    options.give_up_minutes,
                    options.seed,
                )
            })
            .collect(),
    }
}

/// `anjia bench dispatch` options.
#[derive(Debug, Clone, clap::Args)]
pub struct DispatchBenchOptions {
    #[arg(long, default_value_t = 1_000)]
    pub orders: usize,
    #[arg(long, default_value_t = 5_000)]
    pub workers: usize,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Rounds to time (the figures are medians).
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
}

#[derive(Debug, Serialize)]
pub struct DispatchBenchReport {
    pub orders: usize,
    pub workers: usize,
    pub cells: usize,
    pub eligible_cells: usize,
    /// Pricing every pair (eligibility, travel, rating, load), median of the repeats.
    pub pricing_ms: f64,
    /// Solving the priced matrix optimally.
    pub optimal_solve_ms: f64,
    /// One whole automatic round: pricing, solving and explaining every assignment.
    pub round_ms: f64,
    pub greedy_solve_ms: f64,
    pub assigned_optimal: usize,
    pub assigned_greedy: usize,
    /// Cost over assigned pairs (hundredths of a minute of driving), excluding the
    /// unassigned penalty.
    pub cost_optimal: i64,
    pub cost_greedy: i64,
    /// The exact optimum's objective, proved by a dual certificate (weak duality).
    pub certified_optimum: Option<i64>,
    /// (round objective − optimum) / optimum, percent.
    pub gap_optimal_percent: Option<f64>,
    /// The same for one-at-a-time greedy matching.
    pub gap_greedy_percent: Option<f64>,
}

pub fn bench_dispatch(options: &DispatchBenchOptions) -> DispatchBenchReport {
    let date = domain::values::business_day(Utc::now()) + Duration::days(1);
    let day = generated_day(options.seed, options.orders, options.workers, date);
    let orders: Vec<OpenOrder> = day.orders.iter().map(|order| order.order.clone()).collect();
    let weights = Weights::default();
    let today = date;
    let (mut pricing, mut solving, mut rounds, mut greedy_times) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut last = None;
    for _ in 0..options.repeat.max(1) {
        let clock = Instant::now();
        let matrix = price(&orders, &day.workers, &weights, today);
        pricing.push(clock.elapsed().as_secs_f64() * 1000.0);
        let clock = Instant::now();
        let solution = optimal(&matrix);
        solving.push(clock.elapsed().as_secs_f64() * 1000.0);
        let clock = Instant::now();
        let naive = greedy(&matrix);
        greedy_times.push(clock.elapsed().as_secs_f64() * 1000.0);
        let clock = Instant::now();
        let round = plan_round(&orders, &day.workers, &weights, Method::Optimal, today);
        rounds.push(clock.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(round.total_cost, solution.total);
        last = Some((matrix, solution, naive));
    }
    let (matrix, solution, naive) = last.expect("at least one repeat");
    let optimum = certify(&matrix, &solution);
    let assigned_cost = |assignment: &[Option<usize>]| -> i64 {
        assignment
            .iter()
            .enumerate()
            .filter_map(|(row, column)| column.and_then(|column| matrix.get(row, column)))
            .sum()
    };
    let gap = |objective: i64| {
        optimum.map(|optimum| {
            ((objective - optimum) as f64 / optimum.abs().max(1) as f64 * 100.0 * 1e6).round() / 1e6
        })
    };
    let eligible_cells = (0..matrix.rows)
        .map(|row| {
            (0..matrix.columns)
                .filter(|column| matrix.get(row, *column).is_some())
                .count()
        })
        .sum();
    DispatchBenchReport {
        orders: matrix.rows,
        workers: matrix.columns,
        cells: matrix.rows * matrix.columns,
        eligible_cells,
        pricing_ms: median(pricing),
        optimal_solve_ms: median(solving),
        round_ms: median(rounds),
        greedy_solve_ms: median(greedy_times),
        assigned_optimal: solution.assignment.iter().flatten().count(),
        assigned_greedy: naive.assignment.iter().flatten().count(),
        cost_optimal: assigned_cost(&solution.assignment),
        cost_greedy: assigned_cost(&naive.assignment),
        certified_optimum: optimum,
        gap_optimal_percent: gap(solution.total),
        gap_greedy_percent: gap(naive.total),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_day_is_the_same_for_the_same_seed() {
        let date = NaiveDate::from_ymd_opt(2026, 12, 1).expect("date");
        let first = generated_day(3, 50, 40, date);
        let second = generated_day(3, 50, 40, date);
        let ids =
            |day: &Day| -> Vec<Uuid> { day.orders.iter().map(|o| o.order.order_id).collect() };
        assert_eq!(ids(&first), ids(&second));
        assert_eq!(first.workers.len(), 40);
    }

    #[test]
    fn every_policy_accounts_for_every_order_and_optimal_travels_no_more_than_greedy() {
        let date = NaiveDate::from_ymd_opt(2026, 12, 1).expect("date");
        let day = generated_day(11, 120, 60, date);
        let weights = Weights::default();
        let mut outcomes = HashMap::new();
        for policy in [Policy::Optimal, Policy::Greedy, Policy::Grab] {
            let outcome = replay(&day, policy, &weights, 2, 60, 11);
            assert_eq!(outcome.assigned + outcome.unassigned, 120, "{outcome:?}");
            assert!((0.0..=1.0).contains(&outcome.load_fairness));
            outcomes.insert(format!("{policy:?}"), outcome);
        }
        assert!(outcomes["Optimal"].assigned >= outcomes["Greedy"].assigned);
    }

    #[test]
    fn the_benchmark_round_is_certified_optimal_on_a_small_instance() {
        let report = bench_dispatch(&DispatchBenchOptions {
            orders: 60,
            workers: 200,
            seed: 5,
            repeat: 1,
        });
        assert_eq!(report.gap_optimal_percent, Some(0.0));
        assert!(report.gap_greedy_percent.expect("a gap") >= 0.0);
        assert!(report.assigned_optimal >= report.assigned_greedy);
    }
}
