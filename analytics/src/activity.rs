//! The activity report: daily, weekly and monthly active customers and workers, new against
//! returning, and weekly retention cohorts.
//!
//! A person is active on a Beijing day when the log has any of their activity that day: a
//! registration, a sign-in, an app open, an order placed (customers), going online or working
//! on an order (workers). A person is *new* in the period (day, ISO week from Monday, month) of
//! their first activity ever, and *returning* in every later one. Weeks and months are cut to
//! the report's range: only days inside it count.

use chrono::NaiveDate;
use duckdb::Connection;
use serde::Serialize;

use crate::reports::{csv_field, freshness, Filters, Freshness, Report};
use crate::Warehouse;

/// One period and role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ActiveRow {
    /// The period's first day: the day, the Monday of the week, the first of the month.
    pub start: NaiveDate,
    pub role: String,
    pub active: i64,
    /// Active for the first time ever in this period.
    pub new: i64,
    pub returning: i64,
}

/// The people first active in one week, and how many of them were active in each week after.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Cohort {
    pub role: String,
    /// The Monday of the week they were first active.
    pub week: NaiveDate,
    pub size: i64,
    /// `active[k]`: how many were active in the k-th week after (0: their first week).
    pub active: Vec<i64>,
    /// `active[k]` over `size`.
    pub retention: Vec<f64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ActivityReport {
    pub filters: Filters,
    pub freshness: Freshness,
    pub daily: Vec<ActiveRow>,
    pub weekly: Vec<ActiveRow>,
    pub monthly: Vec<ActiveRow>,
    pub cohorts: Vec<Cohort>,
}

/// Range and role, as DuckDB parameters: from, from, to, to, role, role.
fn params(filters: &Filters) -> [Box<dyn duckdb::ToSql>; 6] {
    [
        Box::new(filters.from),
        Box::new(filters.from),
        Box::new(filters.to),
        Box::new(filters.to),
        Box::new(filters.role.clone()),
        Box::new(filters.role.clone()),
    ]
}

const IN_RANGE: &str = "(?::DATE IS NULL OR day >= ?::DATE) AND (?::DATE IS NULL OR day <= ?::DATE)
    AND (?::VARCHAR IS NULL OR role = ?::VARCHAR)";

fn actives(
    connection: &Connection,
    filters: &Filters,
    period: &str,
) -> anyhow::Result<Vec<ActiveRow>> {
    let params = params(filters);
    let sql = format!(
        "WITH firsts AS (
             SELECT user_id, role, min(day) AS first_day FROM activity_facts GROUP BY ALL
         ), a AS (
             SELECT DISTINCT user_id, role, day FROM activity_facts WHERE {IN_RANGE}
         )
         SELECT date_trunc('{period}', a.day)::DATE AS start, a.role,
                count(DISTINCT a.user_id),
                count(DISTINCT a.user_id) FILTER (
                    WHERE date_trunc('{period}', f.first_day) = date_trunc('{period}', a.day))
           FROM a JOIN firsts f USING (user_id, role)
          GROUP BY ALL ORDER BY start, a.role"
    );
    let rows = connection
        .prepare(&sql)?
        .query_map(duckdb::params_from_iter(params.iter()), |row| {
            let active: i64 = row.get(2)?;
            let new: i64 = row.get(3)?;
            Ok(ActiveRow {
                start: row.get(0)?,
                role: row.get(1)?,
                active,
                new,
                returning: active - new,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

fn cohorts(connection: &Connection, filters: &Filters) -> anyhow::Result<Vec<Cohort>> {
    let params = params(filters);
    let sql = format!(
        "WITH firsts AS (
             SELECT user_id, role, min(day) AS day FROM activity_facts GROUP BY ALL
         ), cohort AS (
             SELECT user_id, role, date_trunc('week', day)::DATE AS week FROM firsts
              WHERE {IN_RANGE}
         ), weeks AS (
             SELECT DISTINCT user_id, role, date_trunc('week', day)::DATE AS week
               FROM activity_facts WHERE ?::DATE IS NULL OR day <= ?::DATE
         )
         SELECT c.role, c.week, date_diff('week', c.week, w.week) AS k, count(DISTINCT c.user_id)
           FROM cohort c JOIN weeks w USING (user_id, role)
          WHERE w.week >= c.week
          GROUP BY ALL ORDER BY c.role, c.week, k"
    );
    let mut all: Vec<Box<dyn duckdb::ToSql>> = params.into_iter().collect();
    all.push(Box::new(filters.to));
    all.push(Box::new(filters.to));
    let mut statement = connection.prepare(&sql)?;
    let counts = statement
        .query_map(duckdb::params_from_iter(all.iter()), |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, NaiveDate>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut cohorts: Vec<Cohort> = Vec::new();
    for (role, week, k, active) in counts {
        let fresh = cohorts
            .last()
            .is_none_or(|cohort| cohort.role != role || cohort.week != week);
        if fresh {
            cohorts.push(Cohort {
                role,
                week,
                size: 0,
                active: Vec::new(),
                retention: Vec::new(),
            });
        }
        let cohort = cohorts.last_mut().expect("just pushed");
        let k = usize::try_from(k).unwrap_or(0);
        if cohort.active.len() <= k {
            cohort.active.resize(k + 1, 0);
        }
        cohort.active[k] = active;
    }
    for cohort in &mut cohorts {
        cohort.size = cohort.active.first().copied().unwrap_or(0);
        cohort.retention = cohort
            .active
            .iter()
            .map(|active| {
                if cohort.size == 0 {
                    0.0
                } else {
                    (*active as f64 / cohort.size as f64 * 1000.0).round() / 1000.0
                }
            })
            .collect();
    }
    Ok(cohorts)
}

/// The activity report over the range and role of `filters`.
pub fn activity(connection: &Connection, filters: &Filters) -> anyhow::Result<ActivityReport> {
    Ok(ActivityReport {
        filters: filters.clone(),
        freshness: freshness(connection)?,
        daily: actives(connection, filters, "day")?,
        weekly: actives(connection, filters, "week")?,
        monthly: actives(connection, filters, "month")?,
        cohorts: cohorts(connection, filters)?,
    })
}

impl Report for ActivityReport {
    fn freshness(&self) -> &Freshness {
        &self.freshness
    }

    /// Every period's row, with the period's name first.
    fn csv(&self) -> String {
        let mut out = String::from("period,start,role,active,new,returning\n");
        for (period, rows) in [
            ("day", &self.daily),
            ("week", &self.weekly),
            ("month", &self.monthly),
        ] {
            for row in rows {
                out.push_str(&format!(
                    "{period},{},{},{},{},{}\n",
                    row.start,
                    csv_field(&row.role),
                    row.active,
                    row.new,
                    row.returning
                ));
            }
        }
        out
    }
}

impl Warehouse {
    /// The activity report, on a read-only connection of its own.
    pub fn activity(&self, filters: &Filters) -> anyhow::Result<ActivityReport> {
        activity(&self.open_read_only()?, filters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};
    use duckdb::params;
    use uuid::Uuid;

    #[test]
    fn actives_split_new_from_returning_and_cohorts_follow_their_first_week() {
        let (_scratch, warehouse) = crate::Scratch::new();
        let connection = warehouse.open_for_load().expect("warehouse");
        // Monday 2026-11-02. Customer 1: first active that Monday, again Wednesday and the
        // next Monday. Customer 2: first active Wednesday only. Worker 3: active both Mondays.
        let monday: NaiveDate = "2026-11-02".parse().expect("date");
        let facts = [
            (1, "customer", 0),
            (1, "customer", 2),
            (1, "customer", 2),
            (1, "customer", 7),
            (2, "customer", 2),
            (3, "worker", 0),
            (3, "worker", 7),
        ];
        for (user, role, offset) in facts {
            let day = monday + Duration::days(offset);
            let at = Utc.from_utc_datetime(&day.and_hms_opt(2, 0, 0).expect("time"));
            connection
                .execute(
                    "INSERT INTO activity_facts VALUES (?, ?, 'app_opened', ?, ?, 'ios')",
                    params![Uuid::from_u128(user), role, at, day],
                )
                .expect("fact");
        }
        drop(connection);
        let report = warehouse.activity(&Filters::default()).expect("report");
        let row = |rows: &[ActiveRow], offset: i64, role: &str| {
            rows.iter()
                .find(|row| row.start == monday + Duration::days(offset) && row.role == role)
                .map(|row| (row.active, row.new, row.returning))
        };
        assert_eq!(row(&report.daily, 0, "customer"), Some((1, 1, 0)));
        assert_eq!(row(&report.daily, 2, "customer"), Some((2, 1, 1)));
        assert_eq!(row(&report.daily, 7, "customer"), Some((1, 0, 1)));
        assert_eq!(row(&report.weekly, 0, "customer"), Some((2, 2, 0)));
        assert_eq!(row(&report.weekly, 7, "customer"), Some((1, 0, 1)));
        assert_eq!(row(&report.weekly, 7, "worker"), Some((1, 0, 1)));
        assert_eq!(row(&report.monthly, -1, "customer"), Some((2, 2, 0)));
        let customers = report
            .cohorts
            .iter()
            .find(|cohort| cohort.role == "customer")
            .expect("a customer cohort");
        assert_eq!((customers.week, customers.size), (monday, 2));
        assert_eq!(customers.active, vec![2, 1]);
        assert_eq!(customers.retention, vec![1.0, 0.5]);

        // A range from the Wednesday: customer 1 is returning there, customer 2 new.
        let from_wednesday = Filters {
            from: Some(monday + Duration::days(2)),
            role: Some("customer".into()),
            ..Filters::default()
        };
        let report = warehouse.activity(&from_wednesday).expect("report");
        assert_eq!(row(&report.weekly, 0, "customer"), Some((2, 2, 0)));
        assert_eq!(row(&report.daily, 2, "customer"), Some((2, 1, 1)));
        assert!(report.daily.iter().all(|row| row.role == "customer"));
        // Only customer 2 was first active from Wednesday on, and not the week after.
        assert_eq!(report.cohorts.len(), 1);
        assert_eq!(report.cohorts[0].size, 1);
        assert_eq!(report.cohorts[0].active, vec![1]);
    }
}
