//! Matching open orders to workers: who is eligible, what each pairing costs, and the
//! assignment of a whole round at once with the least total cost.
//!
//! A round looks at every open order and every available worker together. Matching one order
//! at a time gives the nearest worker to whichever order comes first and can leave a later
//! order with nobody nearby; the optimal assignment (the Hungarian method with potentials,
//! O(n²·m) for n orders and m workers) finds the pairing whose total cost is least. Each
//! worker takes at most one order per round; the next round sees their new booking.
//!
//! Costs are integers (hundredths of a minute of travel), so the optimum is exact and the
//! solver's dual potentials certify it.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::catalogue::ServiceCode;
use crate::geo::driving_minutes;
use crate::order::WorkerFacts;
use crate::values::{business_day, GeoPoint};
use crate::worker::{ServiceBase, Worker};

pub use crate::stages::{AssignmentScore, DispatchStage};

/// The weights of the cost of giving an order to a worker. Everything is in hundredths of a
/// minute of travel, so the weights read as "this is worth N minutes of driving".
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Weights {
    /// Per minute of driving from where the worker will be to the address.
    pub travel_per_minute: i64,
    /// Per star the worker's average rating falls short of five.
    pub per_missing_star: i64,
    /// Per job the worker already has that business day (spreads the work).
    pub per_job_that_day: i64,
    /// Per ¥100 the worker earned in the last 30 days (spreads the income).
    pub per_100_yuan_earned: i64,
    /// Subtracted when the customer has been served by this worker before and did not block them.
    pub previous_worker_bonus: i64,
    /// Rating assumed for a worker with no reviews yet.
    pub unrated_stars: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            travel_per_minute: 100,
            per_missing_star: 1_500,
            per_job_that_day: 800,
            per_100_yuan_earned: 20,
            previous_worker_bonus: 2_000,
            unrated_stars: 4.5,
        }
    }
}

/// An order waiting for a worker, with what the match depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenOrder {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub service: ServiceCode,
    pub city: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub location: Option<GeoPoint>,
    /// Workers who declined or let it expire: never offered again.
    pub declined_by: Vec<Uuid>,
    /// Workers the customer blocked.
    pub blocked: Vec<Uuid>,
    /// Workers who served this customer before.
    pub previous_workers: Vec<Uuid>,
    /// When it started waiting, for time-to-assign figures.
    pub waiting_since: DateTime<Utc>,
}

/// A worker as the dispatcher sees them: the aggregate's state plus figures from read models.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub worker_id: Uuid,
    pub worker: Worker,
    pub city: String,
    /// Average over all dimensions of all reviews, 1.0–5.0; `None` before the first review.
    pub rating: Option<f64>,
    /// Income in the last 30 days, fen.
    pub recent_earnings_fen: i64,
}

/// Why a worker cannot take an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ineligible {
    Inactive,
    NotQualified,
    Declined,
    Blocked,
    OutOfRange,
    Busy,
}

/// A worker as the eligibility rule sees them.
#[derive(Debug, Clone, Copy)]
pub struct Applicant<'a> {
    pub worker_id: Uuid,
    /// Active and approved.
    pub active: bool,
    /// The services the worker may be dispatched for today.
    pub skills: &'a [ServiceCode],
    pub base: Option<ServiceBase>,
    /// Where the worker works, compared only when the order or the worker has no coordinates.
    pub city: Option<&'a str>,
}

impl<'a> Applicant<'a> {
    /// `facts` of the worker's day, and the base from their stream.
    pub fn new(worker: &Worker, facts: &'a WorkerFacts) -> Self {
        Applicant {
            worker_id: facts.worker_id,
            active: facts.active && facts.approved,
            skills: &facts.skills,
            base: worker.base,
            city: None,
        }
    }
}

/// An order as the eligibility rule sees it. What a path does not ask is left empty: a
/// customer naming a worker asks nothing of where they work (`location` and `city` are
/// `None`), a grab asks the radius but not the city.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    pub service: ServiceCode,
    pub location: Option<GeoPoint>,
    pub city: Option<&'a str>,
    /// Workers the customer blocked.
    pub blocked: &'a [Uuid],
    /// Workers who declined the order or let it expire.
    pub declined_by: &'a [Uuid],
}

/// Whether a worker may take an order: the one rule the automatic rounds, a customer naming a
/// worker, a grab, the free-times search and an admin asking "why not this worker?" share.
/// Whether the worker is free at the time is the calendar's question (`Worker::is_free`).
pub fn may_take(worker: &Applicant<'_>, order: &Wanted<'_>) -> Result<(), Ineligible> {
    if !worker.active {
        return Err(Ineligible::Inactive);
    }
    if !worker.skills.contains(&order.service) {
        return Err(Ineligible::NotQualified);
    }
    if order.declined_by.contains(&worker.worker_id) {
        return Err(Ineligible::Declined);
    }
    if order.blocked.contains(&worker.worker_id) {
        return Err(Ineligible::Blocked);
    }
    let in_range = match (worker.base, order.location) {
        (Some(base), Some(location)) => base.reaches(location),
        _ => match (worker.city, order.city) {
            (Some(theirs), Some(wanted)) => theirs == wanted,
            _ => true,
        },
    };
    if !in_range {
        return Err(Ineligible::OutOfRange);
    }
    Ok(())
}

/// Facts about a worker that do not depend on the order, computed once per round.
struct Prepared<'a> {
    candidate: &'a Candidate,
    skills: Vec<ServiceCode>,
    active: bool,
}

/// Checks eligibility and prices one pairing.
fn score(
    order: &OpenOrder,
    worker: &Prepared<'_>,
    weights: &Weights,
) -> Result<AssignmentScore, Ineligible> {
    let candidate = worker.candidate;
    may_take(
        &Applicant {
            worker_id: candidate.worker_id,
            active: worker.active,
            skills: &worker.skills,
            base: candidate.worker.base,
            city: Some(&candidate.city),
        },
        &Wanted {
            service: order.service,
            location: order.location,
            city: Some(&order.city),
            blocked: &order.blocked,
            declined_by: &order.declined_by,
        },
    )?;
    if !candidate
        .worker
        .is_free(order.start, order.end, order.location)
    {
        return Err(Ineligible::Busy);
    }
    let travel_minutes = match (
        candidate.worker.position_before(order.start),
        order.location,
    ) {
        (Some(from), Some(to)) => driving_minutes(from, to),
        // Without coordinates: the cautious estimate the calendar uses.
        _ => 45,
    };
    let day = business_day(order.start);
    let jobs_that_day = candidate
        .worker
        .bookings
        .iter()
        .filter(|booked| business_day(booked.start) == day)
        .count() as u32;
    let stars = candidate
        .rating
        .unwrap_or(weights.unrated_stars)
        .clamp(1.0, 5.0);
    let previous_worker = order.previous_workers.contains(&candidate.worker_id);
    let travel_cost = travel_minutes * weights.travel_per_minute;
    let rating_cost = ((5.0 - stars) * weights.per_missing_star as f64).round() as i64;
    let load_cost = i64::from(jobs_that_day) * weights.per_job_that_day;
    let earnings_cost = candidate.recent_earnings_fen / 10_000 * weights.per_100_yuan_earned;
    let preference_cost = if previous_worker {
        -weights.previous_worker_bonus
    } else {
        0
    };
    Ok(AssignmentScore {
        travel_minutes,
        travel_cost,
        rating: candidate.rating,
        rating_cost,
        jobs_that_day,
        load_cost,
        recent_earnings_fen: candidate.recent_earnings_fen,
        earnings_cost,
        previous_worker,
        preference_cost,
        total: travel_cost + rating_cost + load_cost + earnings_cost + preference_cost,
        eligible_workers: 0,
        method: String::new(),
    })
}

/// Every order's cost against every worker; `None` where the worker is not eligible.
pub struct CostMatrix {
    pub rows: usize,
    pub columns: usize,
    costs: Vec<Option<i64>>,
}

impl CostMatrix {
    pub fn new(rows: usize, columns: usize, costs: Vec<Option<i64>>) -> Self {
        assert_eq!(costs.len(), rows * columns, "a cost per cell");
        CostMatrix {
            rows,
            columns,
            costs,
        }
    }

    pub fn get(&self, row: usize, column: usize) -> Option<i64> {
        self.costs[row * self.columns + column]
    }

    /// The total of an assignment, charging `penalty` for every order left without a worker.
    pub fn total(&self, assignment: &[Option<usize>], penalty: i64) -> i64 {
        assignment
            .iter()
            .enumerate()
            .map(|(row, column)| {
                column
                    .and_then(|column| self.get(row, column))
                    .unwrap_or(penalty)
            })
            .sum()
    }
}

/// What leaving an order unassigned costs in a round: more than any real pairing, so an order
/// is left only when nobody eligible is free.
pub const UNASSIGNED_PENALTY: i64 = 1_000_000_000;

/// A solved round: a worker column (or none) per order row, and the total cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Solution {
    pub assignment: Vec<Option<usize>>,
    pub total: i64,
    /// The solver's dual potentials (per order, per extended column), for `certify`.
    pub potentials: Option<(Vec<i64>, Vec<i64>)>,
}

/// The minimum-cost assignment of rows to distinct columns, where a row may also stay
/// unassigned at `UNASSIGNED_PENALTY`. Shortest augmenting paths with potentials (the
/// Hungarian method in the Jonker–Volgenant form), one row at a time.
pub fn optimal(matrix: &CostMatrix) -> Solution {
    let n = matrix.rows;
    // Real worker columns, then one "nobody" column per order.
    let m = matrix.columns + n;
    let cost = |row: usize, column: usize| extended_cost(matrix, row, column);
    const INF: i64 = i64::MAX / 4;
    let mut u = vec![0i64; n + 1];
    let mut v = vec![0i64; m + 1];
    // p[j]: the row (1-based) holding column j; p[0] is the row being inserted.
    let mut p = vec![0usize; m + 1];
    let mut way = vec![0usize; m + 1];
    let mut min_to = vec![INF; m + 1];
    let mut used = vec![false; m + 1];
    let mut touched: Vec<usize> = Vec::new();
    for row in 1..=n {
        p[0] = row;
        let mut j0 = 0usize;
        min_to.fill(INF);
        used.fill(false);
        touched.clear();
        loop {
            used[j0] = true;
            touched.push(j0);
            let i0 = p[j0];
            let mut delta = INF;
            let mut j1 = 0usize;
            let row_u = u[i0];
            for j in 1..=m {
                if used[j] {
                    continue;
                }
                let reduced = cost(i0 - 1, j - 1) - row_u - v[j];
                if reduced < min_to[j] {
                    min_to[j] = reduced;
                    way[j] = j0;
                }
                if min_to[j] < delta {
                    delta = min_to[j];
                    j1 = j;
                }
            }
            for &j in &touched {
                u[p[j]] += delta;
                v[j] -= delta;
            }
            for j in 0..=m {
                if !used[j] {
                    min_to[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut assignment = vec![None; n];
    // Real worker columns only; an order holding a "nobody" column stays unassigned.
    for (column, holder) in p[1..=matrix.columns].iter().enumerate() {
        if *holder != 0 && matrix.get(holder - 1, column).is_some() {
            assignment[holder - 1] = Some(column);
        }
    }
    let total = matrix.total(&assignment, UNASSIGNED_PENALTY);
    Solution {
        assignment,
        total,
        potentials: Some((u[1..].to_vec(), v[1..].to_vec())),
    }
}

/// One order at a time, in the given order, each to its cheapest still-free eligible worker:
/// what a dispatcher without a global view does. For comparison only.
pub fn greedy(matrix: &CostMatrix) -> Solution {
    let mut taken = vec![false; matrix.columns];
    let mut assignment = vec![None; matrix.rows];
    for (row, slot) in assignment.iter_mut().enumerate() {
        let best = (0..matrix.columns)
            .filter(|column| !taken[*column])
            .filter_map(|column| matrix.get(row, column).map(|cost| (cost, column)))
            .min();
        if let Some((_, column)) = best {
            taken[column] = true;
            *slot = Some(column);
        }
    }
    let total = matrix.total(&assignment, UNASSIGNED_PENALTY);
    Solution {
        assignment,
        total,
        potentials: None,
    }
}

/// The cost a cell has in the solver's extended problem: real workers, then one "nobody"
/// column per order; ineligible cells cost more than leaving the order unassigned.
fn extended_cost(matrix: &CostMatrix, row: usize, column: usize) -> i64 {
    if column < matrix.columns {
        matrix.get(row, column).unwrap_or(UNASSIGNED_PENALTY * 4)
    } else {
        UNASSIGNED_PENALTY
    }
}

/// An independent optimality certificate by linear-programming duality. The assignment LP
/// (each order one column, each column at most one order) has the dual: maximise Σu + Σv
/// subject to u_i + v_j ≤ c_ij and v_j ≤ 0. Any feasible dual bounds every assignment from
/// below, so potentials that are feasible and whose sum equals the assignment's total prove
/// it optimal. Returns the bound when the potentials are feasible.
pub fn certify(matrix: &CostMatrix, solution: &Solution) -> Option<i64> {
    let (u, v) = solution.potentials.as_ref()?;
    let extended = matrix.columns + matrix.rows;
    if u.len() != matrix.rows || v.len() != extended || v.iter().any(|value| *value > 0) {
        return None;
    }
    for (row, u_row) in u.iter().enumerate() {
        for (column, v_column) in v.iter().enumerate() {
            if u_row + v_column > extended_cost(matrix, row, column) {
                return None;
            }
        }
    }
    Some(u.iter().sum::<i64>() + v.iter().sum::<i64>())
}

/// One proposed assignment of a round.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    pub order_index: usize,
    pub worker_index: usize,
    pub score: AssignmentScore,
}

/// A planned round: what to assign, and what could not be placed.
#[derive(Debug, Clone, PartialEq)]
pub struct Round {
    pub proposals: Vec<Proposal>,
    pub unassigned: Vec<usize>,
    pub total_cost: i64,
    pub matrix_cells: usize,
}

/// The method a round uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Optimal,
    Greedy,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Optimal => "optimal",
            Method::Greedy => "greedy",
        }
    }
}

/// Prices every pairing, solves the round and explains each assignment.
pub fn plan_round(
    orders: &[OpenOrder],
    candidates: &[Candidate],
    weights: &Weights,
    method: Method,
    today: NaiveDate,
) -> Round {
    let prepared = prepare(candidates, today);
    let matrix = price_prepared(orders, &prepared, weights);
    let solution = match method {
        Method::Optimal => optimal(&matrix),
        Method::Greedy => greedy(&matrix),
    };
    let mut proposals = Vec::new();
    let mut unassigned = Vec::new();
    for (row, column) in solution.assignment.iter().enumerate() {
        match column {
            Some(column) => {
                // The explanation is recomputed for the chosen pairs only.
                let Ok(mut score) = score(&orders[row], &prepared[*column], weights) else {
                    unreachable!("a priced cell is eligible");
                };
                score.eligible_workers = (0..matrix.columns)
                    .filter(|other| matrix.get(row, *other).is_some())
                    .count() as u32;
                score.method = method.as_str().to_owned();
                proposals.push(Proposal {
                    order_index: row,
                    worker_index: *column,
                    score,
                })
            }
            None => unassigned.push(row),
        }
    }
    Round {
        proposals,
        unassigned,
        total_cost: solution.total,
        matrix_cells: matrix.rows * matrix.columns,
    }
}

fn prepare(candidates: &[Candidate], today: NaiveDate) -> Vec<Prepared<'_>> {
    candidates
        .iter()
        .map(|candidate| {
            let facts = candidate.worker.facts(candidate.worker_id, today);
            Prepared {
                candidate,
                skills: facts.skills,
                active: facts.active && facts.approved,
            }
        })
        .collect()
}

/// The cost matrix of a round: every order against every worker, `None` where ineligible.
/// Rows are priced on every core.
pub fn price(
    orders: &[OpenOrder],
    candidates: &[Candidate],
    weights: &Weights,
    today: NaiveDate,
) -> CostMatrix {
    price_prepared(orders, &prepare(candidates, today), weights)
}

fn price_prepared(
    orders: &[OpenOrder],
    prepared: &[Prepared<'_>],
    weights: &Weights,
) -> CostMatrix {
    let columns = prepared.len();
    let mut costs = vec![None; orders.len() * columns];
    let threads = std::thread::available_parallelism()
        .map_or(1, |count| count.get())
        .clamp(1, 16);
    let rows_per_thread = orders.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        for (chunk, cells) in costs
            .chunks_mut(rows_per_thread * columns.max(1))
            .enumerate()
        {
            let first_row = chunk * rows_per_thread;
            scope.spawn(move || {
                for (offset, row_cells) in cells.chunks_mut(columns.max(1)).enumerate() {
                    let order = &orders[first_row + offset];
                    for (cell, worker) in row_cells.iter_mut().zip(prepared) {
                        *cell = score(order, worker, weights).ok().map(|score| score.total);
                    }
                }
            });
        }
    });
    CostMatrix::new(orders.len(), columns, costs)
}

/// Why a worker was not eligible, for an admin asking "why not this worker?".
pub fn eligibility(
    order: &OpenOrder,
    candidate: &Candidate,
    weights: &Weights,
    today: NaiveDate,
) -> Result<AssignmentScore, Ineligible> {
    let facts = candidate.worker.facts(candidate.worker_id, today);
    score(
        order,
        &Prepared {
            candidate,
            skills: facts.skills,
            active: facts.active && facts.approved,
        },
        weights,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_decides_who_may_take_an_order_and_each_path_asks_what_it_needs() {
        let worker_id = Uuid::from_u128(1);
        let skills = [ServiceCode::DailyCleaning];
        let at = |latitude: f64| GeoPoint {
            latitude,
            longitude: 121.47,
            system: crate::values::CoordinateSystem::Wgs84,
        };
        let applicant = Applicant {
            worker_id,
            active: true,
            skills: &skills,
            base: Some(ServiceBase {
                location: at(31.23),
                radius_km: 5,
            }),
            city: Some("上海"),
        };
        let wanted = Wanted {
            service: ServiceCode::DailyCleaning,
            location: Some(at(31.24)),
            city: Some("上海"),
            blocked: &[],
            declined_by: &[],
        };
        assert_eq!(may_take(&applicant, &wanted), Ok(()));
        let inactive = Applicant {
            active: false,
            ..applicant
        };
        assert_eq!(may_take(&inactive, &wanted), Err(Ineligible::Inactive));
        let nanny = Wanted {
            service: ServiceCode::Nanny,
            ..wanted
        };
        assert_eq!(may_take(&applicant, &nanny), Err(Ineligible::NotQualified));
        let blocked = [worker_id];
        let blocking = Wanted {
            blocked: &blocked,
            ..wanted
        };
        assert_eq!(may_take(&applicant, &blocking), Err(Ineligible::Blocked));
        let declining = Wanted {
            declined_by: &blocked,
            ..wanted
        };
        assert_eq!(may_take(&applicant, &declining), Err(Ineligible::Declined));
        // Twenty kilometres north: outside a five-kilometre radius.
        let far = Wanted {
            location: Some(at(31.41)),
            ..wanted
        };
        assert_eq!(may_take(&applicant, &far), Err(Ineligible::OutOfRange));
        // Without coordinates the city decides, when the path asks it.
        let elsewhere = Wanted {
            location: None,
            city: Some("北京"),
            ..wanted
        };
        assert_eq!(
            may_take(&applicant, &elsewhere),
            Err(Ineligible::OutOfRange)
        );
        // A customer naming a worker asks nothing of where they work.
        let named = Wanted {
            location: None,
            city: None,
            ..far
        };
        assert_eq!(may_take(&applicant, &named), Ok(()));
    }

    fn matrix(rows: &[&[Option<i64>]]) -> CostMatrix {
        let columns = rows.first().map_or(0, |row| row.len());
        CostMatrix::new(
            rows.len(),
            columns,
            rows.iter().flat_map(|row| row.iter().copied()).collect(),
        )
    }

    /// Every way to give rows distinct columns (or none): the exact optimum by brute force.
    fn brute_force(matrix: &CostMatrix) -> i64 {
        fn walk(matrix: &CostMatrix, row: usize, taken: &mut Vec<bool>) -> i64 {
            if row == matrix.rows {
                return 0;
            }
            let mut best = UNASSIGNED_PENALTY + walk(matrix, row + 1, taken);
            for column in 0..matrix.columns {
                if taken[column] {
                    continue;
                }
                if let Some(cost) = matrix.get(row, column) {
                    taken[column] = true;
                    best = best.min(cost + walk(matrix, row + 1, taken));
                    taken[column] = false;
                }
            }
            best
        }
        walk(matrix, 0, &mut vec![false; matrix.columns])
    }

    #[test]
    fn the_optimum_beats_order_by_order_matching() {
        // Worker 0 is a little nearer to order 0 but the only one who can reach order 1.
        let costs = matrix(&[&[Some(10), Some(12)], &[Some(11), None]]);
        let best = optimal(&costs);
        assert_eq!(best.assignment, vec![Some(1), Some(0)]);
        assert_eq!(best.total, 23);
        assert_eq!(certify(&costs, &best), Some(23));
        let naive = greedy(&costs);
        assert_eq!(naive.assignment, vec![Some(0), None]);
        assert!(naive.total > best.total);
    }

    #[test]
    fn orders_nobody_can_take_stay_unassigned() {
        let costs = matrix(&[&[None, None], &[Some(5), None], &[Some(7), Some(3)]]);
        let best = optimal(&costs);
        assert_eq!(best.assignment, vec![None, Some(0), Some(1)]);
    }

    #[test]
    fn more_orders_than_workers_leaves_the_dearest_out() {
        let costs = matrix(&[&[Some(1)], &[Some(2)], &[Some(3)]]);
        let best = optimal(&costs);
        assert_eq!(best.assignment.iter().flatten().count(), 1);
        assert_eq!(best.total, 1 + 2 * UNASSIGNED_PENALTY);
    }

    #[test]
    fn negative_costs_are_fine() {
        let costs = matrix(&[&[Some(-5), Some(2)], &[Some(-4), Some(0)]]);
        assert_eq!(optimal(&costs).total, -5);
    }

    /// A small deterministic generator, so the property runs the same everywhere.
    struct SplitMix(u64);
    impl SplitMix {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
    }

    #[test]
    fn optimal_equals_brute_force_on_random_small_rounds() {
        let mut random = SplitMix(7);
        for case in 0..400 {
            let rows = 1 + (random.next() % 5) as usize;
            let columns = 1 + (random.next() % 6) as usize;
            let costs: Vec<Option<i64>> = (0..rows * columns)
                .map(|_| {
                    if random.next() % 4 == 0 {
                        None
                    } else {
                        Some((random.next() % 200) as i64 - 50)
                    }
                })
                .collect();
            let costs = CostMatrix::new(rows, columns, costs);
            let solved = optimal(&costs);
            assert_eq!(solved.total, brute_force(&costs), "case {case}");
            assert_eq!(certify(&costs, &solved), Some(solved.total), "case {case}");
            let naive = greedy(&costs);
            assert!(naive.total >= solved.total, "case {case}");
            // No worker twice.
            let mut used: Vec<usize> = solved.assignment.iter().flatten().copied().collect();
            used.sort_unstable();
            used.dedup();
            assert_eq!(used.len(), solved.assignment.iter().flatten().count());
        }
    }
}
