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
        &["workers"]
    }

    fn create_tables(&self, schema: &str) -> String {
        format!(
            "CREATE TABLE {schema}.workers (
                worker_id           uuid PRIMARY KEY,
                name                text        NOT NULL,
                phone_masked        text        NOT NULL,
                skills              text[]      NOT NULL,
                years_of_experience smallint    NOT NULL,
                languages           text[]      NOT NULL,
                city                text        NOT NULL,
                districts           text[]      NOT NULL,
                online              boolean     NOT NULL DEFAULT false,
                suspended           boolean     NOT NULL DEFAULT false,
                suspension_reason   text,
                registered_at       timestamptz NOT NULL,
                updated_at          timestamptz NOT NULL,
                last_sequence       bigint      NOT NULL
            );
            CREATE INDEX ON {schema}.workers USING gin (skills);
            CREATE INDEX ON {schema}.workers (city, name, worker_id);"
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
        let guard = "WHERE worker_id = $1 AND last_sequence < $2";
        let decoded: WorkerEvent = event.decode()?;
        // The name and phone number are sealed under the worker's key; show them opened
        // (the phone masked), or as erased.
        let (name, phone_masked) = match &decoded {
            WorkerEvent::WorkerRegistered { profile, .. }
            | WorkerEvent::WorkerProfileUpdated { profile, .. } => {
                let mut opened = self
                    .vault
                    .open_all(&[&profile.name, &profile.phone])
                    .await?
                    .into_iter();
                (
                    crate::personal::readable(opened.next().flatten()),
                    crate::personal::masked_phone(opened.next().flatten()),
                )
            }
            _ => (String::new(), String::new()),
        };
        match &decoded {
            WorkerEvent::WorkerRegistered { profile, skills, registered_at, .. } => {
                let skills: Vec<&str> = skills.iter().map(|skill| skill.as_str()).collect();
                sqlx::query(&format!(
                    "INSERT INTO {schema}.workers (worker_id, last_sequence, name, phone_masked, skills,
                        years_of_experience, languages, city, districts, registered_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
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
                .execute(&mut *connection)
                .await?
            }
            WorkerEvent::WorkerProfileUpdated { profile, .. } => sqlx::query(&format!(
                "UPDATE {schema}.workers SET last_sequence = $2, updated_at = $3, name = $4, phone_masked = $5,
                    years_of_experience = $6, languages = $7, city = $8, districts = $9 {guard}"
            ))
            .bind(worker_id)
            .bind(event.sequence)
            .bind(event.recorded_at)
            .bind(&name)
            .bind(&phone_masked)
            .bind(i16::from(profile.years_of_experience))
            .bind(&profile.languages)
            .bind(&profile.service_area.city)
            .bind(&profile.service_area.districts)
            .execute(&mut *connection)
            .await?,
            WorkerEvent::WorkerSkillsSet { skills, .. } => {
                let skills: Vec<&str> = skills.iter().map(|skill| skill.as_str()).collect();
                sqlx::query(&format!(
                    "UPDATE {schema}.workers SET last_sequence = $2, updated_at = $3, skills = $4 {guard}"
                ))
                .bind(worker_id)
                .bind(event.sequence)
                .bind(event.recorded_at)
                .bind(skills)
                .execute(&mut *connection)
                .await?
            }
            WorkerEvent::WorkerWentOnline { .. } | WorkerEvent::WorkerWentOffline { .. } => sqlx::query(&format!(
                "UPDATE {schema}.workers SET last_sequence = $2, updated_at = $3, online = $4 {guard}"
            ))
            .bind(worker_id)
            .bind(event.sequence)
            .bind(event.recorded_at)
            .bind(matches!(decoded, WorkerEvent::WorkerWentOnline { .. }))
            .execute(&mut *connection)
            .await?,
            WorkerEvent::WorkerSuspended { reason, .. } => sqlx::query(&format!(
                "UPDATE {schema}.workers SET last_sequence = $2, updated_at = $3, suspended = true,
                    online = false, suspension_reason = $4 {guard}"
            ))
            .bind(worker_id)
            .bind(event.sequence)
            .bind(event.recorded_at)
            .bind(reason)
            .execute(&mut *connection)
            .await?,
            WorkerEvent::WorkerReinstated { .. } => sqlx::query(&format!(
                "UPDATE {schema}.workers SET last_sequence = $2, updated_at = $3, suspended = false,
                    suspension_reason = NULL {guard}"
            ))
            .bind(worker_id)
            .bind(event.sequence)
            .bind(event.recorded_at)
            .execute(&mut *connection)
            .await?,
        };
        Ok(())
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
    pub online: bool,
    pub suspended: bool,
    pub suspension_reason: Option<String>,
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

/// Which workers to list.
#[derive(Debug, Clone, Default)]
pub struct WorkerFilter {
    pub skill: Option<String>,
    pub city: Option<String>,
    pub online_only: bool,
    pub include_suspended: bool,
    /// Keyset: the last (name, id) of the previous page.
    pub after: Option<(String, Uuid)>,
}

pub async fn list(
    pool: &PgPool,
    filter: &WorkerFilter,
    limit: u32,
) -> sqlx::Result<Vec<WorkerRow>> {
    let mut query: QueryBuilder<Postgres> =
        QueryBuilder::new("SELECT * FROM read_workers WHERE true");
    if let Some(skill) = &filter.skill {
        query
            .push(" AND skills @> ARRAY[")
            .push_bind(skill.clone())
            .push("]::text[]");
    }
    if let Some(city) = &filter.city {
        query.push(" AND city = ").push_bind(city.clone());
    }
    if filter.online_only {
        query.push(" AND online");
    }
    if !filter.include_suspended {
        query.push(" AND NOT suspended");
    }
    if let Some((name, worker_id)) = &filter.after {
        query
            .push(" AND (name, worker_id) > (")
            .push_bind(name.clone())
            .push(", ")
            .push_bind(*worker_id)
            .push(")");
    }
    query
        .push(" ORDER BY name, worker_id LIMIT ")
        .push_bind(i64::from(limit));
    query.build_query_as().fetch_all(pool).await
}
