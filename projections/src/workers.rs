//! The worker directory: who can do what, where, and whether they are available.

use anyhow::Context;
use chrono::{DateTime, Utc};
use domain::worker::WorkerEvent;
use serde::Serialize;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::log::StoredEvent;
use crate::projector::Projection;

pub struct WorkersProjection {
    pub vault: vault::Vault,
}

#[async_trait::async_trait]
impl Projection for WorkersProjection {
    fn name(&self) -> &'static str {
        "workers"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["workers", "worker_certificates"]
    }

    fn create_tables(&self, schema: &str) -> String {
        format!(
            "CREATE TABLE {schema}.workers (
                worker_id             uuid PRIMARY KEY,
                name                  text        NOT NULL,
                phone_masked          text        NOT NULL,
                skills                text[]      NOT NULL,
                years_of_experience   smallint    NOT NULL,
                languages             text[]      NOT NULL,
                city                  text        NOT NULL,
                districts             text[]      NOT NULL,
                photo_ref             text,
                online                boolean     NOT NULL DEFAULT false,
                suspended             boolean     NOT NULL DEFAULT false,
                suspension_reason     text,
                review_status         text        NOT NULL DEFAULT 'pending',
                review_note           text,
                level                 text        NOT NULL DEFAULT 'standard',
                groups                text[]      NOT NULL DEFAULT '{{}}',
                certified_skills      text[]      NOT NULL DEFAULT '{{}}',
                id_number_masked      text,
                background_status     text        NOT NULL DEFAULT 'not_checked',
                background_source     text,
                background_hits       text[]      NOT NULL DEFAULT '{{}}',
                registered_at         timestamptz NOT NULL,
                updated_at            timestamptz NOT NULL,
                last_sequence         bigint      NOT NULL,
                search_terms          text[]      NOT NULL DEFAULT '{{}}'
            );
            CREATE INDEX ON {schema}.workers USING gin (skills);
            CREATE INDEX ON {schema}.workers USING gin (search_terms);
            CREATE INDEX ON {schema}.workers (city, name, worker_id);
            CREATE TABLE {schema}.worker_certificates (
                certificate_id uuid PRIMARY KEY,
                worker_id      uuid        NOT NULL,
                kind           text        NOT NULL,
                number         text        NOT NULL,
                issued_on      date        NOT NULL,
                expires_on     date        NOT NULL,
                expired        boolean     NOT NULL DEFAULT false,
                added_at       timestamptz NOT NULL
            );
            CREATE INDEX ON {schema}.worker_certificates (worker_id);
            CREATE INDEX ON {schema}.worker_certificates (expires_on) WHERE NOT expired;"
        )
    }

    async fn apply(
        &self,
        connection: &mut PgConnection,
        schema: &str,
        event: &StoredEvent,
    ) -> anyhow::Result<()> {
        if event.aggregate_type != "worker" {
            return Ok(());
        }
        let worker_id: Uuid = event.aggregate_id.parse().context("worker id")?;
        let decoded: WorkerEvent = event.decode()?;
        if let WorkerEvent::WorkerRegistered {
            profile,
            skills,
            registered_at,
            ..
        } = &decoded
        {
            let (name, phone_masked) = self.open_profile(profile).await?;
            let skills: Vec<&str> = skills.iter().map(|skill| skill.as_str()).collect();
            sqlx::query(&format!(
                "INSERT INTO {schema}.workers (worker_id, last_sequence, name, phone_masked, skills,
                    years_of_experience, languages, city, districts, registered_at, updated_at, photo_ref)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11)
                 ON CONFLICT (worker_id) DO NOTHING"
            ))
            .bind(worker_id)
            .bind(event.sequence)
            .bind(&name)
            .bind(&phone_masked)
            .bind(skills)
            .bind(i16::from(profile.years_of_experience))
            .bind(&profile.languages)
            .bind(&profile.service_area.city)
            .bind(&profile.service_area.districts)
            .bind(registered_at)
            .bind(&profile.photo_ref)
            .execute(&mut *connection)
            .await?;
            refresh_terms(connection, schema, worker_id).await?;
            return Ok(());
        }
        // Every later event first moves the worker's sequence; an event already applied moves
        // nothing and is skipped.
        let fresh = sqlx::query(&format!(
            "UPDATE {schema}.workers SET last_sequence = $2, updated_at = $3
              WHERE worker_id = $1 AND last_sequence < $2"
        ))
        .bind(worker_id)
        .bind(event.sequence)
        .bind(event.recorded_at)
        .execute(&mut *connection)
        .await?
        .rows_affected();
        if fresh == 0 {
            return Ok(());
        }
        if matches!(decoded, WorkerEvent::WorkerProfileUpdated { .. }) {
            self.apply_change(connection, schema, worker_id, &decoded)
                .await?;
            return refresh_terms(connection, schema, worker_id).await;
        }
        self.apply_change(connection, schema, worker_id, &decoded)
            .await
    }
}

/// What the admins' worker search finds a worker by.
async fn refresh_terms(
    connection: &mut PgConnection,
    schema: &str,
    worker_id: Uuid,
) -> anyhow::Result<()> {
    crate::search::refresh(
        connection,
        &format!("{schema}.workers"),
        "worker_id",
        worker_id,
        "name || ' ' || phone_masked || ' ' || city",
    )
    .await
}

impl WorkersProjection {
    async fn apply_change(
        &self,
        connection: &mut PgConnection,
        schema: &str,
        worker_id: Uuid,
        decoded: &WorkerEvent,
    ) -> anyhow::Result<()> {
        let set = |assignments: &str| {
            format!("UPDATE {schema}.workers SET {assignments} WHERE worker_id = $1")
        };
        match decoded {
            WorkerEvent::WorkerRegistered { .. } => {}
            WorkerEvent::WorkerProfileUpdated { profile, .. } => {
                let (name, phone_masked) = self.open_profile(profile).await?;
                sqlx::query(&set("name = $2, phone_masked = $3, years_of_experience = $4, languages = $5, city = $6, districts = $7, photo_ref = $8"))
                    .bind(worker_id)
                    .bind(&name)
                    .bind(&phone_masked)
                    .bind(i16::from(profile.years_of_experience))
                    .bind(&profile.languages)
                    .bind(&profile.service_area.city)
                    .bind(&profile.service_area.districts)
                    .bind(&profile.photo_ref)
                    .execute(&mut *connection)
                    .await?;
            }
            WorkerEvent::WorkerSkillsSet { skills, .. } => {
                let skills: Vec<&str> = skills.iter().map(|skill| skill.as_str()).collect();
                sqlx::query(&set("skills = $2"))
                    .bind(worker_id)
                    .bind(skills)
                    .execute(&mut *connection)
                    .await?;
            }
            WorkerEvent::WorkerWentOnline { .. } | WorkerEvent::WorkerWentOffline { .. } => {
                sqlx::query(&set("online = $2"))
                    .bind(worker_id)
                    .bind(matches!(decoded, WorkerEvent::WorkerWentOnline { .. }))
                    .execute(&mut *connection)
                    .await?;
            }
            WorkerEvent::WorkerSuspended { reason, .. } => {
                sqlx::query(&set(
                    "suspended = true, online = false, suspension_reason = $2",
                ))
                .bind(worker_id)
                .bind(reason)
                .execute(&mut *connection)
                .await?;
            }
            WorkerEvent::WorkerReinstated { .. } => {
                sqlx::query(&set("suspended = false, suspension_reason = NULL"))
                    .bind(worker_id)
                    .execute(&mut *connection)
                    .await?;
            }
            WorkerEvent::IdentitySubmitted { id_number, .. } => {
                let masked = match self.vault.open(id_number).await? {
                    Some(opened) => domain::onboarding::IdCardNumber::parse(&opened)
                        .map(|number| number.masked())
                        .unwrap_or_else(|_| "***".to_owned()),
                    None => crate::personal::ERASED.to_owned(),
                };
                sqlx::query(&set(
                    "id_number_masked = $2, background_status = 'not_checked', background_source = NULL, background_hits = '{}'",
                ))
                .bind(worker_id)
                .bind(masked)
                .execute(&mut *connection)
                .await?;
            }
            WorkerEvent::BackgroundChecked { outcome, .. } => {
                sqlx::query(&set(
                    "background_status = $2, background_source = $3, background_hits = $4",
                ))
                .bind(worker_id)
                .bind(if outcome.clear() { "clear" } else { "hit" })
                .bind(&outcome.source)
                .bind(&outcome.hits)
                .execute(&mut *connection)
                .await?;
            }
            WorkerEvent::CertificateAdded { certificate, at } => {
                sqlx::query(&format!(
                    "INSERT INTO {schema}.worker_certificates (certificate_id, worker_id, kind, number, issued_on, expires_on, added_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (certificate_id) DO NOTHING"
                ))
                .bind(certificate.certificate_id)
                .bind(worker_id)
                .bind(certificate.kind.as_str())
                .bind(&certificate.number)
                .bind(certificate.issued_on)
                .bind(certificate.expires_on)
                .bind(at)
                .execute(&mut *connection)
                .await?;
            }
            WorkerEvent::CertificateExpired { certificate_id, .. } => {
                sqlx::query(&format!("UPDATE {schema}.worker_certificates SET expired = true WHERE certificate_id = $1"))
                    .bind(certificate_id)
                    .execute(&mut *connection)
                    .await?;
            }
            WorkerEvent::WorkerApproved { level, .. } => {
                sqlx::query(&set(
                    "review_status = 'approved', review_note = NULL, level = $2",
                ))
                .bind(worker_id)
                .bind(level.as_str())
                .execute(&mut *connection)
                .await?;
            }
            WorkerEvent::WorkerRejected { reason, .. } => {
                sqlx::query(&set("review_status = 'rejected', review_note = $2"))
                    .bind(worker_id)
                    .bind(reason)
                    .execute(&mut *connection)
                    .await?;
            }
            WorkerEvent::DocumentsRequested { what, .. } => {
                sqlx::query(&set(
                    "review_status = 'documents_requested', review_note = $2",
                ))
                .bind(worker_id)
                .bind(what)
                .execute(&mut *connection)
                .await?;
            }
            WorkerEvent::SkillCertified { service, .. } => {
                sqlx::query(&set(
                    "certified_skills = array_append(certified_skills, $2)",
                ))
                .bind(worker_id)
                .bind(service.as_str())
                .execute(&mut *connection)
                .await?;
            }
            WorkerEvent::LevelSet { level, .. } => {
                sqlx::query(&set("level = $2"))
                    .bind(worker_id)
                    .bind(level.as_str())
                    .execute(&mut *connection)
                    .await?;
            }
            // The worker's calendar as a read model comes with booking (issue 4).
            WorkerEvent::WorkerBooked { .. }
            | WorkerEvent::BookingReleased { .. }
            | WorkerEvent::WeeklyPlanSet { .. }
            | WorkerEvent::DayHoursSet { .. }
            | WorkerEvent::LeaveTaken { .. }
            | WorkerEvent::ServiceBaseSet { .. } => {}
            WorkerEvent::GroupsSet { groups, .. } => {
                sqlx::query(&set("groups = $2"))
                    .bind(worker_id)
                    .bind(groups)
                    .execute(&mut *connection)
                    .await?;
            }
        }
        Ok(())
    }
}

impl WorkersProjection {
    /// The name and masked phone number, opened; or the erased marker.
    async fn open_profile(
        &self,
        profile: &domain::worker::WorkerProfile,
    ) -> anyhow::Result<(String, String)> {
        let mut opened = self
            .vault
            .open_all(&[&profile.name, &profile.phone])
            .await?
            .into_iter();
        Ok((
            crate::personal::readable(opened.next().flatten()),
            crate::personal::masked_phone(opened.next().flatten()),
        ))
    }
}

/// One worker as the directory shows them.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct WorkerRow {
    pub worker_id: Uuid,
    pub name: String,
    pub phone_masked: String,
    pub skills: Vec<String>,
    pub years_of_experience: i16,
    pub languages: Vec<String>,
    pub city: String,
    pub districts: Vec<String>,
    pub photo_ref: Option<String>,
    pub online: bool,
    pub suspended: bool,
    pub suspension_reason: Option<String>,
    pub review_status: String,
    pub review_note: Option<String>,
    pub level: String,
    pub groups: Vec<String>,
    pub certified_skills: Vec<String>,
    pub id_number_masked: Option<String>,
    pub background_status: String,
    pub background_source: Option<String>,
    pub background_hits: Vec<String>,
    pub registered_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_sequence: i64,
}

pub async fn get(pool: &PgPool, worker_id: Uuid) -> sqlx::Result<Option<WorkerRow>> {
    sqlx::query_as("SELECT * FROM read_workers WHERE worker_id = $1")
        .bind(worker_id)
        .fetch_optional(pool)
        .await
}

/// One certificate of a worker.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct CertificateRow {
    pub certificate_id: Uuid,
    pub worker_id: Uuid,
    pub kind: String,
    pub number: String,
    pub issued_on: chrono::NaiveDate,
    pub expires_on: chrono::NaiveDate,
    pub expired: bool,
    pub added_at: DateTime<Utc>,
}

pub async fn certificates(pool: &PgPool, worker_id: Uuid) -> sqlx::Result<Vec<CertificateRow>> {
    sqlx::query_as("SELECT * FROM read_worker_certificates WHERE worker_id = $1 ORDER BY expires_on, certificate_id")
        .bind(worker_id)
        .fetch_all(pool)
        .await
}

/// Certificates past their date that are not yet marked expired: the expiry job's work list.
pub async fn due_for_expiry(
    pool: &PgPool,
    today: chrono::NaiveDate,
    limit: i64,
) -> sqlx::Result<Vec<CertificateRow>> {
    sqlx::query_as(
        "SELECT * FROM read_worker_certificates WHERE NOT expired AND expires_on < $1 ORDER BY expires_on, certificate_id LIMIT $2",
    )
    .bind(today)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Which workers to list: the public directory sets a few of these, the admins' search any.
#[derive(Debug, Clone, Default)]
pub struct WorkerSearch {
    pub city: Option<String>,
    pub online_only: bool,
    pub text: Option<String>,
    pub phone_tail: Option<String>,
    pub review_status: Option<String>,
    pub suspended: Option<bool>,
    pub service: Option<String>,
    pub level: Option<String>,
    pub group: Option<String>,
    pub after: Option<(String, Uuid)>,
    /// Only workers whose average rating (all dimensions) is at least this.
    pub min_rating: Option<f64>,
    /// Only workers whose service base is near this place: the point in each datum (WGS-84,
    /// GCJ-02, BD-09, so each base is compared in its own) and the most kilometres, or, when
    /// `None`, each worker's own service radius.
    pub near: Option<Near>,
}

/// A place to measure workers' bases from.
#[derive(Debug, Clone)]
pub struct Near {
    /// (latitude, longitude) in WGS-84, GCJ-02 and BD-09, on the public grid.
    pub points: [(f64, f64); 3],
    pub within_km: Option<f64>,
}

pub async fn search(
    pool: &PgPool,
    search: &WorkerSearch,
    limit: u32,
) -> sqlx::Result<Vec<WorkerRow>> {
    let mut query: QueryBuilder<Postgres> =
        QueryBuilder::new("SELECT * FROM read_workers WHERE true");
    if let Some(status) = &search.review_status {
        query
            .push(" AND review_status = ")
            .push_bind(status.clone());
    }
    if let Some(suspended) = search.suspended {
        query.push(" AND suspended = ").push_bind(suspended);
    }
    if let Some(service) = &search.service {
        query
            .push(" AND skills @> ARRAY[")
            .push_bind(service.clone())
            .push("]::text[]");
    }
    if let Some(level) = &search.level {
        query.push(" AND level = ").push_bind(level.clone());
    }
    if let Some(city) = &search.city {
        query.push(" AND city = ").push_bind(city.clone());
    }
    if search.online_only {
        query.push(" AND online");
    }
    if let Some(min_rating) = search.min_rating {
        query
            .push(
                " AND worker_id IN (SELECT worker_id FROM read_worker_ratings
                   WHERE reviews > 0
                     AND (quality_sum + attitude_sum + skill_sum)::float8 / (reviews * 3) >= ",
            )
            .push_bind(min_rating)
            .push(")");
    }
    if let Some(near) = &search.near {
        // The base in its own datum, against the place converted into that datum, both on the
        // public grid (`GeoPoint::coarse`: two decimals of a degree), so moving the place
        // about cannot find where a base lies within its cell.
        query.push(
            " AND worker_id IN (SELECT worker_id FROM (
                SELECT worker_id,
                       (state->'base'->>'radius_km')::float8 AS radius_km,
                       radians(round((state->'base'->'location'->>'latitude')::numeric, 2)::float8) AS phi,
                       radians(round((state->'base'->'location'->>'longitude')::numeric, 2)::float8) AS lambda,
                       state->'base'->'location'->>'system' AS system
                  FROM read_dispatch_workers WHERE state->'base' IS NOT NULL AND state->'base' <> 'null') b
                CROSS JOIN LATERAL (SELECT CASE b.system WHEN 'wgs84' THEN ",
        );
        let [(wgs_lat, wgs_lon), (gcj_lat, gcj_lon), (bd_lat, bd_lon)] = near.points;
        query
            .push_bind(wgs_lat)
            .push(" WHEN 'gcj02' THEN ")
            .push_bind(gcj_lat)
            .push(" ELSE ")
            .push_bind(bd_lat)
            .push(" END AS lat, CASE b.system WHEN 'wgs84' THEN ")
            .push_bind(wgs_lon)
            .push(" WHEN 'gcj02' THEN ")
            .push_bind(gcj_lon)
            .push(" ELSE ")
            .push_bind(bd_lon)
            .push(
                " END AS lon) p
                WHERE 2 * 6371.0088 * asin(least(1, sqrt(
                        sin((radians(p.lat) - b.phi) / 2) ^ 2
                        + cos(b.phi) * cos(radians(p.lat)) * sin((radians(p.lon) - b.lambda) / 2) ^ 2)))
                      <= COALESCE(",
            )
            .push_bind(near.within_km)
            .push("::float8, b.radius_km))");
    }
    crate::personal::push_person_filters(
        &mut query,
        search.text.as_deref(),
        search.phone_tail.as_deref(),
        search.group.as_deref(),
        search.after.as_ref(),
        "worker_id",
    );
    query
        .push(" ORDER BY name, worker_id LIMIT ")
        .push_bind(i64::from(limit));
    // Planned for the searched terms each time (see `orders::list`).
    query
        .build_query_as()
        .persistent(false)
        .fetch_all(pool)
        .await
}
