//! When a worker works: a weekly plan of local (Asia/Shanghai) hours, per-date exceptions and
//! leave, and the travel time needed between two jobs. Pure: the worker aggregate and the slot
//! listing both decide with these functions.

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveTime, TimeZone, Timelike, Utc,
};
use serde::{Deserialize, Serialize};

use crate::values::{GeoPoint, ValueError};

fn shanghai() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("a valid offset")
}

/// A stretch of local time within one day, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl TimeRange {
    pub fn parse(start: NaiveTime, end: NaiveTime) -> Result<Self, ValueError> {
        if end <= start {
            return Err(ValueError::BadDates);
        }
        Ok(TimeRange { start, end })
    }
}

/// Working hours for each weekday, Monday first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct WeeklyPlan {
    pub days: [Vec<TimeRange>; 7],
}

impl WeeklyPlan {
    /// Sorts each day and refuses overlapping ranges within it.
    pub fn validated(mut self) -> Result<Self, ValueError> {
        for day in &mut self.days {
            *day = validated_ranges(std::mem::take(day))?;
        }
        Ok(self)
    }
}

pub fn validated_ranges(mut ranges: Vec<TimeRange>) -> Result<Vec<TimeRange>, ValueError> {
    ranges.sort_by_key(|range| range.start);
    if ranges.windows(2).any(|pair| pair[1].start < pair[0].end)
        || ranges.iter().any(|range| range.end <= range.start)
    {
        return Err(ValueError::BadDates);
    }
    Ok(ranges)
}

/// A date with its own hours (empty: a day off).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayOverride {
    pub date: NaiveDate,
    pub ranges: Vec<TimeRange>,
}

/// Leave from the first to the last day, both included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leave {
    pub leave_id: uuid::Uuid,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// Everything about a worker's time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Availability {
    /// No plan yet means no limits: the worker is free whenever not booked.
    pub plan: Option<WeeklyPlan>,
    pub overrides: Vec<DayOverride>,
    pub leaves: Vec<Leave>,
}

impl Availability {
    fn on_leave(&self, date: NaiveDate) -> bool {
        self.leaves
            .iter()
            .any(|leave| leave.from <= date && date <= leave.to)
    }

    /// The local working hours of one date, or `None` when there is no plan.
    pub fn hours_on(&self, date: NaiveDate) -> Option<Vec<TimeRange>> {
        if self.on_leave(date) {
            return Some(vec![]);
        }
        if let Some(special) = self.overrides.iter().find(|special| special.date == date) {
            return Some(special.ranges.clone());
        }
        self.plan
            .as_ref()
            .map(|plan| plan.days[date.weekday().num_days_from_monday() as usize].clone())
    }

    /// Whether `[start, end)` is inside working time. A job within one local day must fit in
    /// one of that day's ranges; a longer, live-in job (a 26-day 月嫂 term) needs only that no
    /// day of it is on leave or a day off.
    pub fn covers(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        if end - start >= Duration::hours(24) {
            // Live-in work: every day of it must be a working day, not leave or a day off.
            let first_day = start.with_timezone(&shanghai()).date_naive();
            let last_day = (end - Duration::nanoseconds(1))
                .with_timezone(&shanghai())
                .date_naive();
            let mut day = first_day;
            while day <= last_day {
                if self.hours_on(day).is_some_and(|ranges| ranges.is_empty()) {
                    return false;
                }
                day = day.succ_opt().expect("a next day");
            }
            return true;
        }
        // Shorter work, possibly across midnight: each day's part must fit in that day's hours.
        let mut segment_start = start;
        while segment_start < end {
            let local = segment_start.with_timezone(&shanghai());
            let day = local.date_naive();
            let next_midnight = local_instant(day.succ_opt().expect("a next day"), NaiveTime::MIN);
            let segment_end = end.min(next_midnight);
            let minutes = |instant: DateTime<Utc>| {
                (instant - local_instant(day, NaiveTime::MIN)).num_minutes()
            };
            let (from, to) = (minutes(segment_start), minutes(segment_end));
            let fits = match self.hours_on(day) {
                None => true,
                Some(ranges) => ranges.iter().any(|range| {
                    let range_start = i64::from(range.start.num_seconds_from_midnight()) / 60;
                    let range_end = i64::from(range.end.num_seconds_from_midnight()) / 60;
                    range_start <= from && to <= range_end
                }),
            };
            if !fits {
                return false;
            }
            segment_start = segment_end;
        }
        true
    }
}

/// The UTC instant of a local date and time.
pub fn local_instant(date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    shanghai()
        .from_local_datetime(&date.and_time(time))
        .single()
        .expect("a fixed offset has no gaps")
        .with_timezone(&Utc)
}

/// Minutes to get from one job to the next: 15 minutes to pack up and set off, plus the
/// straight-line distance at 20 km/h (city traffic), rounded up to five minutes. Without a
/// location for either job, a cautious 45 minutes.
pub fn travel_minutes(from: Option<GeoPoint>, to: Option<GeoPoint>) -> i64 {
    let (Some(from), Some(to)) = (from, to) else {
        return 45;
    };
    let kilometres = distance_km(from, to);
    let minutes = 15.0 + kilometres / 20.0 * 60.0;
    ((minutes / 5.0).ceil() * 5.0) as i64
}

/// Great-circle distance, with both points brought to WGS-84 first.
pub fn distance_km(a: GeoPoint, b: GeoPoint) -> f64 {
    a.distance_m(b) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::CoordinateSystem;

    fn time(hour: u32, minute: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(hour, minute, 0).expect("time")
    }

    fn weekdays_nine_to_six() -> WeeklyPlan {
        let mut plan = WeeklyPlan::default();
        for day in plan.days.iter_mut().take(5) {
            *day = vec![TimeRange::parse(time(9, 0), time(18, 0)).expect("range")];
        }
        plan
    }

    #[test]
    fn a_job_must_fit_inside_the_local_working_hours_of_its_day() {
        // 2026-11-30 is a Monday.
        let monday = NaiveDate::from_ymd_opt(2026, 11, 30).expect("date");
        let availability = Availability {
            plan: Some(weekdays_nine_to_six()),
            ..Default::default()
        };
        assert!(availability.covers(
            local_instant(monday, time(9, 0)),
            local_instant(monday, time(12, 0))
        ));
        assert!(availability.covers(
            local_instant(monday, time(15, 0)),
            local_instant(monday, time(18, 0))
        ));
        assert!(!availability.covers(
            local_instant(monday, time(8, 30)),
            local_instant(monday, time(11, 0))
        ));
        assert!(!availability.covers(
            local_instant(monday, time(16, 0)),
            local_instant(monday, time(19, 0))
        ));
        let saturday = NaiveDate::from_ymd_opt(2026, 12, 5).expect("date");
        assert!(!availability.covers(
            local_instant(saturday, time(10, 0)),
            local_instant(saturday, time(12, 0))
        ));
    }

    #[test]
    fn exceptions_and_leave_override_the_plan() {
        let monday = NaiveDate::from_ymd_opt(2026, 11, 30).expect("date");
        let saturday = NaiveDate::from_ymd_opt(2026, 12, 5).expect("date");
        let availability = Availability {
            plan: Some(weekdays_nine_to_six()),
            overrides: vec![DayOverride {
                date: saturday,
                ranges: vec![TimeRange::parse(time(10, 0), time(14, 0)).expect("range")],
            }],
            leaves: vec![Leave {
                leave_id: uuid::Uuid::nil(),
                from: monday,
                to: monday,
            }],
        };
        assert!(availability.covers(
            local_instant(saturday, time(10, 0)),
            local_instant(saturday, time(13, 0))
        ));
        assert!(!availability.covers(
            local_instant(monday, time(10, 0)),
            local_instant(monday, time(12, 0))
        ));
        // A 26-day live-in term is refused if any day of it is on leave.
        let term_start = local_instant(monday, time(0, 0)) - Duration::days(3);
        assert!(!availability.covers(term_start, term_start + Duration::days(26)));
        assert!(Availability::default().covers(term_start, term_start + Duration::days(26)));
    }

    #[test]
    fn travel_time_grows_with_distance_and_is_cautious_without_locations() {
        let home = GeoPoint::new(31.2304, 121.4737, CoordinateSystem::Gcj02).expect("point");
        let near = GeoPoint::new(31.2404, 121.4737, CoordinateSystem::Gcj02).expect("point");
        let far = GeoPoint::new(31.3304, 121.6737, CoordinateSystem::Gcj02).expect("point");
        assert_eq!(travel_minutes(Some(home), Some(home)), 15);
        assert_eq!(travel_minutes(Some(home), Some(near)), 20);
        assert!(travel_minutes(Some(home), Some(far)) > 60);
        assert_eq!(travel_minutes(None, Some(home)), 45);
    }

    #[test]
    fn overlapping_ranges_in_a_day_are_refused() {
        let ranges = vec![
            TimeRange::parse(time(9, 0), time(12, 0)).expect("range"),
            TimeRange::parse(time(11, 0), time(14, 0)).expect("range"),
        ];
        assert_eq!(validated_ranges(ranges), Err(ValueError::BadDates));
    }
}
