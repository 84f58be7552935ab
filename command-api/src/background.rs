//! The `BackgroundCheck` port: is this person on the list of dishonest persons subject to
//! enforcement (失信被执行人名单)? An HTTP adapter asks a real provider; the offline adapter
//! reads a list imported from CSV by `anjia import-blacklist FILE`.

use anyhow::Context;
use domain::onboarding::{BackgroundCheckOutcome, IdCardNumber};
use serde::Deserialize;
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
#[derive(Clone, Default)]
pub struct BackgroundCheckSettings {
    /// `ANJIA_BACKGROUND_CHECK_URL`: the provider's endpoint; without it, the offline list.
    pub url: Option<String>,
    pub token: Option<String>,
}

impl std::fmt::Debug for BackgroundCheckSettings {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("BackgroundCheckSettings")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl BackgroundCheckSettings {
    pub fn from_environment() -> Self {
        let read = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.trim().is_empty())
        };
        BackgroundCheckSettings {
            url: read("ANJIA_BACKGROUND_CHECK_URL"),
            token: read("ANJIA_BACKGROUND_CHECK_TOKEN"),
        }
    }

    pub fn build(&self, pool: &PgPool) -> anyhow::Result<std::sync::Arc<dyn BackgroundCheck>> {
        Ok(match &self.url {
            Some(url) => std::sync::Arc::new(HttpBackgroundCheck {
                client: reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(15))
                    .build()?,
                url: url.clone(),
                token: self.token.clone(),
            }),
            None => std::sync::Arc::new(OfflineBlacklist { pool: pool.clone() }),
        })
    }
}

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

/// A provider answering POST `{"name", "id_number"}` with `{"hits": [{"case_number": ...}]}`.
pub struct HttpBackgroundCheck {
    client: reqwest::Client,
    url: String,
    token: Option<String>,
}

#[derive(Deserialize)]
struct ProviderAnswer {
    hits: Vec<ProviderHit>,
}

#[derive(Deserialize)]
struct ProviderHit {
    case_number: String,
}

#[async_trait::async_trait]
impl BackgroundCheck for HttpBackgroundCheck {
    async fn check(
        &self,
        name: &str,
        id_number: &IdCardNumber,
    ) -> anyhow::Result<BackgroundCheckOutcome> {
        let mut request = self
            .client
            .post(&self.url)
            .json(&serde_json::json!({ "name": name, "id_number": id_number.as_str() }));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .context("calling the background-check provider")?;
        anyhow::ensure!(
            response.status().is_success(),
            "the background-check provider answered {}",
            response.status()
        );
        let answer: ProviderAnswer = response
            .json()
            .await
            .context("reading the provider's answer")?;
        Ok(BackgroundCheckOutcome {
            source: format!(
                "http:{}",
                reqwest::Url::parse(&self.url)
                    .ok()
                    .and_then(|url| url.host_str().map(str::to_owned))
                    .unwrap_or_default()
            ),
            hits: answer.hits.into_iter().map(|hit| hit.case_number).collect(),
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
