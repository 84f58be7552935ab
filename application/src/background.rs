//! The `BackgroundCheck` port: is this person on the list of dishonest persons subject to
//! enforcement (失信被执行人名单)? An HTTP adapter asks a real provider; the offline adapter
//! reads a list imported from CSV by `anjia import-blacklist FILE`.

use anyhow::Context;
use domain::onboarding::{BackgroundCheckOutcome, IdCardNumber};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

#[async_trait::async_trait]
pub trait BackgroundCheck: Send + Sync {
    async fn check(
        &self,
        name: &str,
        id_number: &IdCardNumber,
    ) -> anyhow::Result<BackgroundCheckOutcome>;
}

/// Where background checks go, from the environment.
pub fn id_number_hash(id_number: &IdCardNumber) -> Vec<u8> {
    Sha256::digest(id_number.as_str().as_bytes()).to_vec()
}

/// Matches against the imported list by the hash of the identity number.
pub struct OfflineBlacklist {
    pub pool: PgPool,
}

#[async_trait::async_trait]
impl BackgroundCheck for OfflineBlacklist {
    async fn check(
        &self,
        _name: &str,
        id_number: &IdCardNumber,
    ) -> anyhow::Result<BackgroundCheckOutcome> {
        let hits: Vec<String> = sqlx::query_scalar(
            "SELECT case_number FROM blacklist_entries WHERE id_number_hash = $1 ORDER BY case_number",
        )
        .bind(id_number_hash(id_number))
        .fetch_all(&self.pool)
        .await
        .context("reading the offline list")?;
        Ok(BackgroundCheckOutcome {
            source: "offline-blacklist".to_owned(),
            hits,
        })
    }
}

/// What an import did.
#[derive(Debug, serde::Serialize)]
pub struct ImportReport {
    pub rows: usize,
    pub imported: u64,
    pub refused: Vec<String>,
}

/// Imports a CSV with the header `name,id_number,case_number,court,published_on`. Rows with an
/// invalid identity number are reported, not imported; importing twice changes nothing.
pub async fn import_blacklist(pool: &PgPool, csv_text: &str) -> anyhow::Result<ImportReport> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(csv_text.as_bytes());
    let mut report = ImportReport {
        rows: 0,
        imported: 0,
        refused: Vec::new(),
    };
    let mut transaction = pool.begin().await?;
    for (index, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("reading CSV row {}", index + 2))?;
        report.rows += 1;
        let field = |position: usize| record.get(position).unwrap_or_default().to_owned();
        let Ok(id_number) = IdCardNumber::parse(&field(1)) else {
            report
                .refused
                .push(format!("row {}: invalid identity number", index + 2));
            continue;
        };
        let published_on = chrono::NaiveDate::parse_from_str(&field(4), "%Y-%m-%d").ok();
        report.imported += sqlx::query(
            "INSERT INTO blacklist_entries (id_number_hash, name, case_number, court, published_on)
             VALUES ($1, $2, $3, NULLIF($4, ''), $5) ON CONFLICT DO NOTHING",
        )
        .bind(id_number_hash(&id_number))
        .bind(field(0))
        .bind(field(2))
        .bind(field(3))
        .bind(published_on)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
    }
    transaction.commit().await?;
    Ok(report)
}
