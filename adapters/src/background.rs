//! The background-check provider over HTTP, and the choice between it and the offline list.

use std::sync::Arc;

use anyhow::Context;
use application::background::{BackgroundCheck, OfflineBlacklist};
use domain::onboarding::{BackgroundCheckOutcome, IdCardNumber};
use serde::Deserialize;
use sqlx::PgPool;

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
    pub fn build(&self, pool: &PgPool) -> anyhow::Result<Arc<dyn BackgroundCheck>> {
        Ok(match &self.url {
            Some(url) => Arc::new(HttpBackgroundCheck {
                client: reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(15))
                    .build()?,
                url: url.clone(),
                token: self.token.clone(),
            }),
            None => Arc::new(OfflineBlacklist { pool: pool.clone() }),
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
