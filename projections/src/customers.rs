//! The customer profiles read model: each customer's name, masked contact details, emergency
//! contact and saved addresses, as their profile page and the admin search show them.

use anyhow::Context;
use chrono::{DateTime, Utc};
use domain::customer::CustomerEvent;
use serde::Serialize;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::log::StoredEvent;
use crate::personal::{masked_email, masked_phone, readable};
use crate::projector::Projection;

pub struct CustomersProjection {
    pub vault: vault::Vault,
}

#[async_trait::async_trait]
impl Projection for CustomersProjection {
    fn name(&self) -> &'static str {
        "customers"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["customers", "customer_addresses"]
    }

    fn create_tables(&self, schema: &str) -> String {
        format!(
            "CREATE TABLE {schema}.customers (
                customer_id            uuid PRIMARY KEY,
                name                   text        NOT NULL,
                phone_masked           text,
                email_masked           text,
                emergency_name         text,
                emergency_phone_masked text,
                emergency_relation     text,
                suspended              boolean     NOT NULL DEFAULT false,
                suspension_reason      text,
                groups                 text[]      NOT NULL DEFAULT '{{}}',
                registered_at          timestamptz NOT NULL,
                updated_at             timestamptz NOT NULL,
                search_terms           text[]      NOT NULL DEFAULT '{{}}',
                last_sequence          bigint      NOT NULL
            );
            CREATE INDEX ON {schema}.customers (name, customer_id);
            CREATE INDEX ON {schema}.customers USING gin (search_terms);
            CREATE TABLE {schema}.customer_addresses (
                address_id           uuid PRIMARY KEY,
                customer_id          uuid        NOT NULL,
                label                text        NOT NULL,
                city                 text        NOT NULL,
                district             text        NOT NULL,
                detail               text        NOT NULL,
                contact_name         text        NOT NULL,
                contact_phone_masked text        NOT NULL,
                latitude             double precision,
                longitude            double precision,
                coordinate_system    text,
                added_at             timestamptz NOT NULL
            );
            CREATE INDEX ON {schema}.customer_addresses (customer_id, added_at);"
        )
    }

    async fn apply(
        &self,
        connection: &mut PgConnection,
        schema: &str,
        event: &StoredEvent,
    ) -> anyhow::Result<()> {
        if event.aggregate_type != "customer" {
            return Ok(());
        }
        let customer_id: Uuid = event.aggregate_id.parse().context("customer id")?;
        let decoded: CustomerEvent = event.decode()?;
        if let CustomerEvent::CustomerRegistered {
            name,
            phone,
            registered_at,
            ..
        } = &decoded
        {
            let mut sealed = vec![name];
            sealed.extend(phone.as_ref());
            let mut opened = self.vault.open_all(&sealed).await?.into_iter();
            let name = readable(opened.next().flatten());
            let phone = phone
                .as_ref()
                .map(|_| masked_phone(opened.next().flatten()));
            sqlx::query(&format!(
                "INSERT INTO {schema}.customers (customer_id, name, phone_masked, registered_at, updated_at, last_sequence)
                 VALUES ($1, $2, $3, $4, $4, $5) ON CONFLICT (customer_id) DO NOTHING"
            ))
            .bind(customer_id)
            .bind(name)
            .bind(phone)
            .bind(registered_at)
            .bind(event.sequence)
            .execute(&mut *connection)
            .await?;
            refresh_terms(connection, schema, customer_id).await?;
            return Ok(());
        }
        // Every later event first moves the customer's sequence; an event already applied
        // moves nothing and is skipped.
        let fresh = sqlx::query(&format!(
            "UPDATE {schema}.customers SET last_sequence = $2, updated_at = $3
              WHERE customer_id = $1 AND last_sequence < $2"
        ))
        .bind(customer_id)
        .bind(event.sequence)
        .bind(event.recorded_at)
        .execute(&mut *connection)
        .await?
        .rows_affected();
        if fresh == 0 {
            return Ok(());
        }
        let searched_by = matches!(
            decoded,
            CustomerEvent::CustomerRenamed { .. } | CustomerEvent::ContactDetailsChanged { .. }
        );
        self.apply_change(connection, schema, customer_id, decoded)
            .await?;
        if searched_by {
            refresh_terms(connection, schema, customer_id).await?;
        }
        Ok(())
    }
}

/// What the admins' customer search finds a customer by.
async fn refresh_terms(
    connection: &mut PgConnection,
    schema: &str,
    customer_id: Uuid,
) -> anyhow::Result<()> {
    crate::search::refresh(
        connection,
        &format!("{schema}.customers"),
        "customer_id",
        customer_id,
        "name || ' ' || coalesce(phone_masked, '') || ' ' || coalesce(email_masked, '')",
    )
    .await
}

impl CustomersProjection {
    async fn apply_change(
        &self,
        connection: &mut PgConnection,
        schema: &str,
        customer_id: Uuid,
        decoded: CustomerEvent,
    ) -> anyhow::Result<()> {
        match &decoded {
            CustomerEvent::CustomerRegistered { .. } => {}
            CustomerEvent::CustomerRenamed { name, .. } => {
                let name = readable(self.vault.open(name).await?);
                sqlx::query(&format!(
                    "UPDATE {schema}.customers SET name = $2 WHERE customer_id = $1"
                ))
                .bind(customer_id)
                .bind(name)
                .execute(&mut *connection)
                .await?;
            }
            CustomerEvent::ContactDetailsChanged { phone, email, .. } => {
                let phone = match phone {
                    Some(sealed) => Some(masked_phone(self.vault.open(sealed).await?)),
                    None => None,
                };
                let email = match email {
                    Some(sealed) => Some(masked_email(self.vault.open(sealed).await?)),
                    None => None,
                };
                sqlx::query(&format!(
                    "UPDATE {schema}.customers SET phone_masked = $2, email_masked = $3 WHERE customer_id = $1"
                ))
                .bind(customer_id)
                .bind(phone)
                .bind(email)
                .execute(&mut *connection)
                .await?;
            }
            CustomerEvent::EmergencyContactSet { contact, .. } => {
                let mut opened = self
                    .vault
                    .open_all(&[&contact.name, &contact.phone, &contact.relation])
                    .await?
                    .into_iter();
                sqlx::query(&format!(
                    "UPDATE {schema}.customers SET emergency_name = $2, emergency_phone_masked = $3, emergency_relation = $4
                      WHERE customer_id = $1"
                ))
                .bind(customer_id)
                .bind(readable(opened.next().flatten()))
                .bind(masked_phone(opened.next().flatten()))
                .bind(readable(opened.next().flatten()))
                .execute(&mut *connection)
                .await?;
            }
            CustomerEvent::AddressAdded {
                address_id,
                label,
                address,
                added_at,
            } => {
                let mut sealed = vec![
                    &address.detail,
                    &address.contact_name,
                    &address.contact_phone,
                ];
                sealed.extend(address.location.as_ref().map(|point| &point.sealed));
                let mut opened = self.vault.open_all(&sealed).await?;
                // The point is shown to its owner only; once it cannot be opened, none is kept.
                let location = opened
                    .get_mut(3)
                    .and_then(Option::take)
                    .and_then(|text| domain::values::SealedPoint::parse(&text));
                let mut opened = opened.into_iter();
                sqlx::query(&format!(
                    "INSERT INTO {schema}.customer_addresses (address_id, customer_id, label, city, district, detail,
                        contact_name, contact_phone_masked, latitude, longitude, coordinate_system, added_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (address_id) DO NOTHING"
                ))
                .bind(address_id)
                .bind(customer_id)
                .bind(label)
                .bind(&address.city)
                .bind(&address.district)
                .bind(readable(opened.next().flatten()))
                .bind(readable(opened.next().flatten()))
                .bind(masked_phone(opened.next().flatten()))
                .bind(location.map(|point| point.latitude))
                .bind(location.map(|point| point.longitude))
                .bind(location.map(|point| point.system.as_str()))
                .bind(added_at)
                .execute(&mut *connection)
                .await?;
            }
            CustomerEvent::CustomerSuspended { reason, .. } => {
                sqlx::query(&format!(
                    "UPDATE {schema}.customers SET suspended = true, suspension_reason = $2 WHERE customer_id = $1"
                ))
                .bind(customer_id)
                .bind(reason)
                .execute(&mut *connection)
                .await?;
            }
            CustomerEvent::CustomerReinstated { .. } => {
                sqlx::query(&format!(
                    "UPDATE {schema}.customers SET suspended = false, suspension_reason = NULL WHERE customer_id = $1"
                ))
                .bind(customer_id)
                .execute(&mut *connection)
                .await?;
            }
            CustomerEvent::CustomerGroupsSet { groups, .. } => {
                sqlx::query(&format!(
                    "UPDATE {schema}.customers SET groups = $2 WHERE customer_id = $1"
                ))
                .bind(customer_id)
                .bind(groups)
                .execute(&mut *connection)
                .await?;
            }
            CustomerEvent::AddressRemoved { address_id, .. } => {
                sqlx::query(&format!(
                    "DELETE FROM {schema}.customer_addresses WHERE address_id = $1"
                ))
                .bind(address_id)
                .execute(&mut *connection)
                .await?;
            }
            // Blocked workers live in the dispatch read model.
            CustomerEvent::WorkerBlocked { .. } | CustomerEvent::WorkerUnblocked { .. } => {}
        }
        Ok(())
    }
}

/// A customer's profile as the read side shows it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct CustomerRow {
    pub customer_id: Uuid,
    pub name: String,
    pub phone_masked: Option<String>,
    pub email_masked: Option<String>,
    pub emergency_name: Option<String>,
    pub emergency_phone_masked: Option<String>,
    pub emergency_relation: Option<String>,
    pub suspended: bool,
    pub suspension_reason: Option<String>,
    pub groups: Vec<String>,
    pub registered_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_sequence: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct AddressRow {
    pub address_id: Uuid,
    pub customer_id: Uuid,
    pub label: String,
    pub city: String,
    pub district: String,
    pub detail: String,
    pub contact_name: String,
    pub contact_phone_masked: String,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub coordinate_system: Option<String>,
    pub added_at: DateTime<Utc>,
}

/// A customer's profile row and addresses, read from one snapshot: the projector may commit a
/// batch between two separate reads, and the profile would then show half of it.
pub async fn profile(
    pool: &PgPool,
    customer_id: Uuid,
) -> sqlx::Result<Option<(CustomerRow, Vec<AddressRow>)>> {
    let mut snapshot = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *snapshot)
        .await?;
    let row: Option<CustomerRow> =
        sqlx::query_as("SELECT * FROM read_customers WHERE customer_id = $1")
            .bind(customer_id)
            .fetch_optional(&mut *snapshot)
            .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let addresses = sqlx::query_as(
        "SELECT * FROM read_customer_addresses WHERE customer_id = $1 ORDER BY added_at, address_id",
    )
    .bind(customer_id)
    .fetch_all(&mut *snapshot)
    .await?;
    snapshot.commit().await?;
    Ok(Some((row, addresses)))
}

/// What an admin searches customers by. Text matches anywhere in the name (Chinese works);
/// the phone tail matches the last digits of the masked number.
#[derive(Debug, Clone, Default)]
pub struct CustomerSearch {
    pub text: Option<String>,
    pub phone_tail: Option<String>,
    pub suspended: Option<bool>,
    pub group: Option<String>,
    /// Keyset: the last (name, id) of the previous page.
    pub after: Option<(String, Uuid)>,
}

pub async fn search(
    pool: &PgPool,
    search: &CustomerSearch,
    limit: u32,
) -> sqlx::Result<Vec<CustomerRow>> {
    let mut query: QueryBuilder<Postgres> =
        QueryBuilder::new("SELECT * FROM read_customers WHERE true");
    if let Some(suspended) = search.suspended {
        query.push(" AND suspended = ").push_bind(suspended);
    }
    crate::personal::push_person_filters(
        &mut query,
        search.text.as_deref(),
        search.phone_tail.as_deref(),
        search.group.as_deref(),
        search.after.as_ref(),
        "customer_id",
    );
    query
        .push(" ORDER BY name, customer_id LIMIT ")
        .push_bind(i64::from(limit));
    // Planned for the searched terms each time (see `orders::list`).
    query
        .build_query_as()
        .persistent(false)
        .fetch_all(pool)
        .await
}
