//! Reports computed in the warehouse. Every report takes a date range (Asia/Shanghai dates,
//! inclusive) and filters, and says how fresh the warehouse was when it ran.

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use duckdb::{params, AccessMode, Config, Connection};
use serde::{Deserialize, Serialize};

use crate::Warehouse;

/// What every report is asked.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Filters {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub service: Option<String>,
    pub city: Option<String>,
    /// `customer` or `worker` (the activity report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// What every report offers besides its own figures.
pub trait Report: Serialize + Send + 'static {
    /// How fresh the warehouse was when the report ran.
    fn freshness(&self) -> &Freshness;
    /// The report's rows as CSV, with a header.
    fn csv(&self) -> String;
}

/// The warehouse's freshness.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Freshness {
    /// When the last refresh finished (`None` before the first).
    pub refreshed_at: Option<DateTime<Utc>>,
    /// Events loaded so far.
    pub events: i64,
}

/// One day, service and area of the revenue report; money in fen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RevenueRow {
    pub day: NaiveDate,
    pub service: String,
    pub city: String,
    pub district: String,
    /// Payments captured (gross merchandise value).
    pub gmv_fen: i64,
    pub refunds_fen: i64,
    /// GMV less refunds.
    pub net_fen: i64,
    /// Commission the platform kept at release, less commission given back in disputes.
    pub commission_fen: i64,
    /// Workers' shares at release, less what disputes took back.
    pub worker_payouts_fen: i64,
    /// Cancellation fees the platform kept (late cancellations), less the workers' shares:
    /// with `commission_fen`, the platform's revenue as the ledger counts it.
    pub kept_fees_fen: i64,
    /// The workers' shares of kept cancellation fees (their income, with `worker_payouts_fen`).
    pub fee_shares_fen: i64,
    /// Orders whose payment was captured.
    pub paid_orders: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RevenueReport {
    pub filters: Filters,
    pub freshness: Freshness,
    pub rows: Vec<RevenueRow>,
    pub total_gmv_fen: i64,
    pub total_refunds_fen: i64,
    pub total_net_fen: i64,
    pub total_commission_fen: i64,
    pub total_worker_payouts_fen: i64,
    pub total_kept_fees_fen: i64,
    pub total_fee_shares_fen: i64,
    pub paid_orders: i64,
    /// GMV per paid order, rounded down to the fen.
    pub average_order_fen: i64,
}

impl Warehouse {
    /// Opens the file read-only (reports, analysts).
    pub fn open_read_only(&self) -> anyhow::Result<Connection> {
        if !self.path().exists() {
            return Err(crate::NotLoaded.into());
        }
        let config = Config::default()
            .access_mode(AccessMode::ReadOnly)?
            .enable_autoload_extension(false)?;
        Connection::open_with_flags(self.path(), config)
            .with_context(|| format!("opening the warehouse {}", self.path().display()))
    }
}

impl Warehouse {
    /// The revenue report, on a read-only connection of its own.
    pub fn revenue(&self, filters: &Filters) -> anyhow::Result<RevenueReport> {
        revenue(&self.open_read_only()?, filters)
    }
}

pub(crate) fn freshness(connection: &Connection) -> anyhow::Result<Freshness> {
    let mut statement =
        connection.prepare("SELECT refreshed_at, events FROM load_state WHERE id = 1")?;
    let mut rows = statement.query([])?;
    Ok(match rows.next()? {
        Some(row) => Freshness {
            refreshed_at: Some(row.get(0)?),
            events: row.get(1)?,
        },
        None => Freshness {
            refreshed_at: None,
            events: 0,
        },
    })
}

/// GMV, refunds, net revenue, commission and worker payouts by day (of the money's movement),
/// service and area.
pub fn revenue(connection: &Connection, filters: &Filters) -> anyhow::Result<RevenueReport> {
    let mut statement = connection.prepare(
        "SELECT m.day, o.service, o.city, o.district,
                sum(CASE WHEN m.kind = 'captured' THEN m.amount_fen ELSE 0 END)::BIGINT,
                sum(CASE WHEN m.kind = 'refunded' THEN m.amount_fen ELSE 0 END)::BIGINT,
                sum(CASE WHEN m.kind = 'released' THEN m.commission_fen
                         WHEN m.kind = 'clawed_back' THEN -m.commission_fen ELSE 0 END)::BIGINT,
                sum(CASE WHEN m.kind = 'released' THEN m.worker_share_fen
                         WHEN m.kind = 'clawed_back' THEN -m.worker_share_fen ELSE 0 END)::BIGINT,
                count(DISTINCT CASE WHEN m.kind = 'captured' THEN m.order_id END)::BIGINT,
                sum(CASE WHEN m.kind = 'fee_kept' THEN m.commission_fen ELSE 0 END)::BIGINT,
                sum(CASE WHEN m.kind = 'fee_kept' THEN m.worker_share_fen ELSE 0 END)::BIGINT
           FROM money_facts m JOIN order_facts o USING (order_id)
          WHERE (?::DATE IS NULL OR m.day >= ?::DATE)
            AND (?::DATE IS NULL OR m.day <= ?::DATE)
            AND (?::VARCHAR IS NULL OR o.service = ?::VARCHAR)
            AND (?::VARCHAR IS NULL OR o.city = ?::VARCHAR)
          GROUP BY ALL
          ORDER BY m.day, o.service, o.city, o.district",
    )?;
    let rows = statement
        .query_map(
            params![
                filters.from,
                filters.from,
                filters.to,
                filters.to,
                filters.service,
                filters.service,
                filters.city,
                filters.city
            ],
            |row| {
                let gmv: i64 = row.get(4)?;
                let refunds: i64 = row.get(5)?;
                Ok(RevenueRow {
                    day: row.get(0)?,
                    service: row.get(1)?,
                    city: row.get(2)?,
                    district: row.get(3)?,
                    gmv_fen: gmv,
                    refunds_fen: refunds,
                    net_fen: gmv - refunds,
                    commission_fen: row.get(6)?,
                    worker_payouts_fen: row.get(7)?,
                    paid_orders: row.get(8)?,
                    kept_fees_fen: row.get(9)?,
                    fee_shares_fen: row.get(10)?,
                })
            },
        )?
        .collect::<Result<Vec<_>, _>>()?;
    let sum = |field: fn(&RevenueRow) -> i64| rows.iter().map(field).sum::<i64>();
    let (gmv, refunds) = (sum(|row| row.gmv_fen), sum(|row| row.refunds_fen));
    let paid_orders = sum(|row| row.paid_orders);
    Ok(RevenueReport {
        filters: filters.clone(),
        freshness: freshness(connection)?,
        total_gmv_fen: gmv,
        total_refunds_fen: refunds,
        total_net_fen: gmv - refunds,
        total_commission_fen: sum(|row| row.commission_fen),
        total_worker_payouts_fen: sum(|row| row.worker_payouts_fen),
        total_kept_fees_fen: sum(|row| row.kept_fees_fen),
        total_fee_shares_fen: sum(|row| row.fee_shares_fen),
        paid_orders,
        average_order_fen: if paid_orders > 0 {
            gmv / paid_orders
        } else {
            0
        },
        rows,
    })
}

impl Report for RevenueReport {
    fn freshness(&self) -> &Freshness {
        &self.freshness
    }

    /// The rows as CSV, with a header, money in fen.
    fn csv(&self) -> String {
        let mut out = String::from(
            "day,service,city,district,gmv_fen,refunds_fen,net_fen,commission_fen,worker_payouts_fen,kept_fees_fen,fee_shares_fen,paid_orders\n",
        );
        for row in &self.rows {
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},{},{}\n",
                row.day,
                csv_field(&row.service),
                csv_field(&row.city),
                csv_field(&row.district),
                row.gmv_fen,
                row.refunds_fen,
                row.net_fen,
                row.commission_fen,
                row.worker_payouts_fen,
                row.kept_fees_fen,
                row.fee_shares_fen,
                row.paid_orders
            ));
        }
        out
    }
}

/// A CSV field, quoted when it must be. A text cell that a spreadsheet would take for a
/// formula (it starts with `=`, `+`, `-`, `@`, a tab or a carriage return) is neutralised with
/// a leading `'`, so opening an export never runs what someone typed into a name or a reason.
pub fn csv_field(value: &str) -> String {
    let neutralised;
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        neutralised = format!("'{value}");
        neutralised.as_str()
    } else {
        value
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// One day (of placement), service and city of the orders report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OrdersRow {
    pub day: NaiveDate,
    pub service: String,
    pub city: String,
    pub placed: i64,
    pub paid: i64,
    pub assigned: i64,
    pub completed: i64,
    pub cancelled: i64,
}

/// Cancelled orders by the stage they were in and the reason given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Cancellations {
    pub stage: String,
    pub reason: String,
    pub orders: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrdersReport {
    pub filters: Filters,
    pub freshness: Freshness,
    pub rows: Vec<OrdersRow>,
    /// Orders placed in the range that reached each step: placed → paid → assigned → completed.
    pub placed: i64,
    pub paid: i64,
    pub assigned: i64,
    pub completed: i64,
    pub cancelled: i64,
    pub cancellations: Vec<Cancellations>,
    /// Minutes from payment to the first assignment, over the orders that had both.
    pub assign_minutes_median: Option<f64>,
    pub assign_minutes_average: Option<f64>,
    /// Minutes workers spent serving (start to finish of services begun in the range, of the
    /// service and city asked) against minutes they were online in the range.
    pub service_minutes: f64,
    pub online_minutes: f64,
    /// `service_minutes` over `online_minutes`, when anyone was online.
    pub utilisation: Option<f64>,
    pub workers: Vec<WorkerUtilisation>,
}

/// One worker's share of the orders report's utilisation.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct WorkerUtilisation {
    pub worker_id: uuid::Uuid,
    pub services: i64,
    pub service_minutes: f64,
    pub online_minutes: f64,
    pub utilisation: Option<f64>,
}

/// Per worker: services begun in the range (with the service and city filters) and their
/// minutes, and minutes online in the range (an online spell ends at the worker's next status:
/// offline or suspended; one still open ends now). Beijing days bound the range.
const UTILISATION: &str = "
WITH bounds AS (
    SELECT coalesce(epoch(?::DATE::TIMESTAMP) - 28800, 0) AS lo,
           least(coalesce(epoch((?::DATE + 1)::TIMESTAMP) - 28800, 1e12), epoch(now())) AS hi
), served AS (
    SELECT s.worker_id, s.order_id,
           (epoch(min(c.occurred_at)) - epoch(min(s.occurred_at))) / 60.0 AS minutes
      FROM order_milestones s
      JOIN order_milestones c ON c.order_id = s.order_id AND c.milestone = 'completed'
      JOIN order_facts o ON o.order_id = s.order_id
     WHERE s.milestone = 'started'
       AND (?::DATE IS NULL OR s.day >= ?::DATE) AND (?::DATE IS NULL OR s.day <= ?::DATE)
       AND (?::VARCHAR IS NULL OR o.service = ?::VARCHAR) AND (?::VARCHAR IS NULL OR o.city = ?::VARCHAR)
     GROUP BY s.worker_id, s.order_id
), spells AS (
    SELECT worker_id, status, epoch(occurred_at) AS started,
           lead(epoch(occurred_at)) OVER (PARTITION BY worker_id ORDER BY occurred_at) AS ended
      FROM worker_status_facts WHERE status IN ('online', 'offline', 'suspended')
), online AS (
    SELECT worker_id,
           sum(greatest(0, least(coalesce(ended, hi), hi) - greatest(started, lo))) / 60.0 AS minutes
      FROM spells, bounds WHERE status = 'online' GROUP BY worker_id
), s AS (
    SELECT worker_id, count(*) AS services, sum(minutes) AS minutes FROM served GROUP BY worker_id
)
SELECT coalesce(s.worker_id, online.worker_id), coalesce(s.services, 0),
       coalesce(s.minutes, 0)::DOUBLE, coalesce(online.minutes, 0)::DOUBLE
  FROM s FULL JOIN online ON online.worker_id = s.worker_id
 WHERE coalesce(s.services, 0) > 0 OR coalesce(online.minutes, 0) > 0
 ORDER BY 1
";

fn ratio(part: f64, whole: f64) -> Option<f64> {
    (whole > 0.0).then(|| (part / whole * 10_000.0).round() / 10_000.0)
}

fn utilisation(
    connection: &Connection,
    filters: &Filters,
) -> anyhow::Result<Vec<WorkerUtilisation>> {
    let mut params: Vec<Box<dyn duckdb::ToSql>> =
        vec![Box::new(filters.from), Box::new(filters.to)];
    params.extend(filter_params(filters));
    let rows = connection
        .prepare(UTILISATION)?
        .query_map(duckdb::params_from_iter(params.iter()), |row| {
            let service_minutes: f64 = row.get(2)?;
            let online_minutes: f64 = row.get(3)?;
            Ok(WorkerUtilisation {
                worker_id: row.get(0)?,
                services: row.get(1)?,
                service_minutes,
                online_minutes,
                utilisation: ratio(service_minutes, online_minutes),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The orders of the range (by placement day) and filters, with each one's milestones.
const ORDERS_IN_RANGE: &str = "
WITH o AS (
    SELECT order_id, service, city, day FROM order_facts
     WHERE (?::DATE IS NULL OR day >= ?::DATE) AND (?::DATE IS NULL OR day <= ?::DATE)
       AND (?::VARCHAR IS NULL OR service = ?::VARCHAR) AND (?::VARCHAR IS NULL OR city = ?::VARCHAR)
), m AS (
    SELECT order_id,
           bool_or(milestone = 'paid') AS paid,
           bool_or(milestone = 'assigned') AS assigned,
           bool_or(milestone = 'completed') AS completed,
           bool_or(milestone = 'cancelled') AS cancelled,
           min(occurred_at) FILTER (WHERE milestone = 'paid') AS paid_at,
           min(occurred_at) FILTER (WHERE milestone = 'assigned') AS assigned_at
      FROM order_milestones WHERE order_id IN (SELECT order_id FROM o) GROUP BY order_id
)
";

fn filter_params(filters: &Filters) -> [Box<dyn duckdb::ToSql>; 8] {
    [
        Box::new(filters.from),
        Box::new(filters.from),
        Box::new(filters.to),
        Box::new(filters.to),
        Box::new(filters.service.clone()),
        Box::new(filters.service.clone()),
        Box::new(filters.city.clone()),
        Box::new(filters.city.clone()),
    ]
}

/// Volume and the funnel by day, service and city; cancellations by stage and reason; time to
/// assign.
pub fn orders(connection: &Connection, filters: &Filters) -> anyhow::Result<OrdersReport> {
    let params = filter_params(filters);
    let params = duckdb::params_from_iter(params.iter());
    let rows = connection
        .prepare(&format!(
            "{ORDERS_IN_RANGE}
             SELECT o.day, o.service, o.city, count(*),
                    count(*) FILTER (WHERE m.paid), count(*) FILTER (WHERE m.assigned),
                    count(*) FILTER (WHERE m.completed), count(*) FILTER (WHERE m.cancelled)
               FROM o LEFT JOIN m USING (order_id)
              GROUP BY ALL ORDER BY o.day, o.service, o.city"
        ))?
        .query_map(params, |row| {
            Ok(OrdersRow {
                day: row.get(0)?,
                service: row.get(1)?,
                city: row.get(2)?,
                placed: row.get(3)?,
                paid: row.get(4)?,
                assigned: row.get(5)?,
                completed: row.get(6)?,
                cancelled: row.get(7)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let params = filter_params(filters);
    let cancellations = connection
        .prepare(&format!(
            "{ORDERS_IN_RANGE}
             SELECT coalesce(c.detail, ''), coalesce(c.reason, ''), count(DISTINCT c.order_id)
               FROM order_milestones c JOIN o USING (order_id)
              WHERE c.milestone = 'cancelled'
              GROUP BY ALL ORDER BY 3 DESC, 1, 2"
        ))?
        .query_map(duckdb::params_from_iter(params.iter()), |row| {
            Ok(Cancellations {
                stage: row.get(0)?,
                reason: row.get(1)?,
                orders: row.get(2)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let params = filter_params(filters);
    let (median, average): (Option<f64>, Option<f64>) = connection.query_row(
        &format!(
            "{ORDERS_IN_RANGE}
             SELECT median(epoch(m.assigned_at - m.paid_at) / 60.0),
                    avg(epoch(m.assigned_at - m.paid_at) / 60.0)
               FROM o JOIN m USING (order_id)
              WHERE m.paid_at IS NOT NULL AND m.assigned_at IS NOT NULL"
        ),
        duckdb::params_from_iter(params.iter()),
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let sum = |field: fn(&OrdersRow) -> i64| rows.iter().map(field).sum::<i64>();
    let workers = utilisation(connection, filters)?;
    let service_minutes: f64 = workers.iter().map(|worker| worker.service_minutes).sum();
    let online_minutes: f64 = workers.iter().map(|worker| worker.online_minutes).sum();
    Ok(OrdersReport {
        service_minutes,
        online_minutes,
        utilisation: ratio(service_minutes, online_minutes),
        workers,
        filters: filters.clone(),
        freshness: freshness(connection)?,
        placed: sum(|row| row.placed),
        paid: sum(|row| row.paid),
        assigned: sum(|row| row.assigned),
        completed: sum(|row| row.completed),
        cancelled: sum(|row| row.cancelled),
        rows,
        cancellations,
        assign_minutes_median: median,
        assign_minutes_average: average,
    })
}

impl Report for OrdersReport {
    fn freshness(&self) -> &Freshness {
        &self.freshness
    }

    /// The rows as CSV, with a header.
    fn csv(&self) -> String {
        let mut out = String::from("day,service,city,placed,paid,assigned,completed,cancelled\n");
        for row in &self.rows {
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{}\n",
                row.day,
                csv_field(&row.service),
                csv_field(&row.city),
                row.placed,
                row.paid,
                row.assigned,
                row.completed,
                row.cancelled
            ));
        }
        out
    }
}

impl Warehouse {
    /// The orders report, on a read-only connection of its own.
    pub fn orders(&self, filters: &Filters) -> anyhow::Result<OrdersReport> {
        orders(&self.open_read_only()?, filters)
    }
}

/// Average ratings of a group of reviews.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Ratings {
    /// The group: a service, a worker, a city or a week (its Monday), as the list says.
    pub key: String,
    pub reviews: i64,
    pub quality: f64,
    pub attitude: f64,
    pub skill: f64,
    /// The mean of the three.
    pub overall: f64,
}

/// A worker whose ratings are falling: the last 30 days against the 30 before.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Falling {
    pub worker_id: uuid::Uuid,
    pub recent_reviews: i64,
    pub recent_overall: f64,
    pub earlier_reviews: i64,
    pub earlier_overall: f64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SatisfactionReport {
    pub filters: Filters,
    pub freshness: Freshness,
    pub overall: Ratings,
    /// How many reviews gave 1 to 5 stars, per dimension: `[quality, attitude, skill]` for each
    /// star count from 1 to 5.
    pub distribution: Vec<[i64; 3]>,
    pub by_service: Vec<Ratings>,
    pub by_city: Vec<Ratings>,
    pub by_worker: Vec<Ratings>,
    /// By week of the review (Monday, Beijing), oldest first.
    pub trend: Vec<Ratings>,
    /// Workers with at least three reviews in each window whose overall fell by half a star or
    /// more, the steepest first; the windows end on `to` (or today).
    pub falling: Vec<Falling>,
}

/// The reviews of the range (by review day) and filters, hidden ones left out.
const REVIEWS_IN_RANGE: &str = "
WITH r AS (
    SELECT v.order_id, v.worker_id, v.quality, v.attitude, v.skill, v.day, o.service, o.city
      FROM review_facts v JOIN order_facts o USING (order_id)
     WHERE (?::DATE IS NULL OR v.day >= ?::DATE) AND (?::DATE IS NULL OR v.day <= ?::DATE)
       AND (?::VARCHAR IS NULL OR o.service = ?::VARCHAR) AND (?::VARCHAR IS NULL OR o.city = ?::VARCHAR)
       AND NOT EXISTS (SELECT 1 FROM order_milestones h
                        WHERE h.order_id = v.order_id AND h.milestone = 'review_hidden')
)
";

fn ratings(connection: &Connection, filters: &Filters, key: &str) -> anyhow::Result<Vec<Ratings>> {
    let params = filter_params(filters);
    let group = if key.is_empty() {
        String::new()
    } else {
        format!("GROUP BY {key} ORDER BY {key}")
    };
    let key = if key.is_empty() {
        "''".to_owned()
    } else {
        format!("{key}::VARCHAR")
    };
    let rows = connection
        .prepare(&format!(
            "{REVIEWS_IN_RANGE}
             SELECT {key}, count(*), coalesce(avg(quality), 0), coalesce(avg(attitude), 0),
                    coalesce(avg(skill), 0), coalesce(avg((quality + attitude + skill) / 3.0), 0)
               FROM r {group}"
        ))?
        .query_map(duckdb::params_from_iter(params.iter()), |row| {
            Ok(Ratings {
                key: row.get(0)?,
                reviews: row.get(1)?,
                quality: row.get(2)?,
                attitude: row.get(3)?,
                skill: row.get(4)?,
                overall: row.get(5)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Averages per dimension, their distribution, by service, city, worker and week, and the
/// workers whose ratings are falling.
pub fn satisfaction(
    connection: &Connection,
    filters: &Filters,
) -> anyhow::Result<SatisfactionReport> {
    let overall = ratings(connection, filters, "")?
        .pop()
        .context("an overall row")?;
    let params = filter_params(filters);
    let mut distribution = vec![[0i64; 3]; 5];
    let mut statement = connection.prepare(&format!(
        "{REVIEWS_IN_RANGE}
         SELECT s.stars,
                count(*) FILTER (WHERE r.quality = s.stars),
                count(*) FILTER (WHERE r.attitude = s.stars),
                count(*) FILTER (WHERE r.skill = s.stars)
           FROM range(1, 6) s(stars), r GROUP BY s.stars"
    ))?;
    let mut rows = statement.query(duckdb::params_from_iter(params.iter()))?;
    while let Some(row) = rows.next()? {
        let stars: i64 = row.get(0)?;
        if let Some(slot) = usize::try_from(stars - 1)
            .ok()
            .and_then(|at| distribution.get_mut(at))
        {
            *slot = [row.get(1)?, row.get(2)?, row.get(3)?];
        }
    }
    let end = filters
        .to
        .unwrap_or_else(|| crate::load::beijing_day(Utc::now()));
    let falling = connection
        .prepare(
            "WITH r AS (
                 SELECT v.worker_id, v.day, (v.quality + v.attitude + v.skill) / 3.0 AS overall
                   FROM review_facts v
                  WHERE v.worker_id IS NOT NULL
                    AND NOT EXISTS (SELECT 1 FROM order_milestones h
                                     WHERE h.order_id = v.order_id AND h.milestone = 'review_hidden')
             ), w AS (
                 SELECT worker_id,
                        count(*) FILTER (WHERE day > ?::DATE - 30 AND day <= ?::DATE) AS recent_n,
                        avg(overall) FILTER (WHERE day > ?::DATE - 30 AND day <= ?::DATE) AS recent,
                        count(*) FILTER (WHERE day > ?::DATE - 60 AND day <= ?::DATE - 30) AS earlier_n,
                        avg(overall) FILTER (WHERE day > ?::DATE - 60 AND day <= ?::DATE - 30) AS earlier
                   FROM r GROUP BY worker_id
             )
             SELECT worker_id, recent_n, recent, earlier_n, earlier FROM w
              WHERE recent_n >= 3 AND earlier_n >= 3 AND earlier - recent >= 0.5
              ORDER BY recent - earlier, worker_id",
        )?
        .query_map(params![end, end, end, end, end, end, end, end], |row| {
            Ok(Falling {
                worker_id: row.get(0)?,
                recent_reviews: row.get(1)?,
                recent_overall: row.get(2)?,
                earlier_reviews: row.get(3)?,
                earlier_overall: row.get(4)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SatisfactionReport {
        filters: filters.clone(),
        freshness: freshness(connection)?,
        overall,
        distribution,
        by_service: ratings(connection, filters, "service")?,
        by_city: ratings(connection, filters, "city")?,
        by_worker: ratings(connection, filters, "worker_id")?,
        trend: ratings(connection, filters, "date_trunc('week', day)::DATE")?,
        falling,
    })
}

impl Report for SatisfactionReport {
    fn freshness(&self) -> &Freshness {
        &self.freshness
    }

    /// The per-worker averages as CSV, with a header.
    fn csv(&self) -> String {
        let mut out = String::from("worker_id,reviews,quality,attitude,skill,overall\n");
        for row in &self.by_worker {
            out.push_str(&format!(
                "{},{},{:.3},{:.3},{:.3},{:.3}\n",
                row.key, row.reviews, row.quality, row.attitude, row.skill, row.overall
            ));
        }
        out
    }
}

impl Warehouse {
    /// The satisfaction report, on a read-only connection of its own.
    pub fn satisfaction(&self, filters: &Filters) -> anyhow::Result<SatisfactionReport> {
        satisfaction(&self.open_read_only()?, filters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_cell_a_spreadsheet_would_run_as_a_formula_is_neutralised() {
        for (cell, written) in [
            (
                "=HYPERLINK(\"http://x\")",
                "\"'=HYPERLINK(\"\"http://x\"\")\"",
            ),
            ("+86 138", "'+86 138"),
            ("-1+1", "'-1+1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tcmd", "'\tcmd"),
            ("上海市", "上海市"),
            ("a,b", "\"a,b\""),
            ("", ""),
        ] {
            assert_eq!(csv_field(cell), written, "{cell:?}");
        }
    }

    #[test]
    fn a_worker_whose_last_thirty_days_rate_half_a_star_lower_is_falling() {
        let (_scratch, warehouse) = crate::Scratch::new();
        let connection = warehouse.open_for_load().expect("warehouse");
        // Worker 1: four 5-star reviews 31–40 days before the end, then three 3-star ones in
        // the last 30 days. Worker 2: steady 4s. Worker 3: falling, but one recent review only.
        let end: NaiveDate = "2026-06-30".parse().expect("date");
        let review = |worker: u128, days_before: i64, stars: u8| {
            let order = uuid::Uuid::new_v4();
            let day = end - chrono::Duration::days(days_before);
            let at = day.and_hms_opt(4, 0, 0).expect("time").and_utc();
            connection
                .execute(
                    "INSERT INTO order_facts VALUES (?, ?, 'nanny', '上海市', '徐汇区', 100, ?, ?)",
                    params![order, uuid::Uuid::new_v4(), at, day],
                )
                .expect("order");
            connection
                .execute(
                    "INSERT INTO review_facts VALUES (?, ?, ?, ?, ?, false, ?, ?)",
                    params![
                        order,
                        uuid::Uuid::from_u128(worker),
                        stars,
                        stars,
                        stars,
                        at,
                        day
                    ],
                )
                .expect("review");
        };
        for days in [31, 33, 35, 40] {
            review(1, days, 5);
            review(2, days, 4);
            review(3, days, 5);
        }
        for days in [1, 5, 29] {
            review(1, days, 3);
            review(2, days, 4);
        }
        review(3, 2, 1);
        let report = satisfaction(
            &connection,
            &Filters {
                to: Some(end),
                ..Filters::default()
            },
        )
        .expect("report");
        assert_eq!(
            report.falling,
            vec![Falling {
                worker_id: uuid::Uuid::from_u128(1),
                recent_reviews: 3,
                recent_overall: 3.0,
                earlier_reviews: 4,
                earlier_overall: 5.0,
            }]
        );
        assert_eq!(report.overall.reviews, 19);
        assert_eq!(report.by_worker.len(), 3);
    }
}
