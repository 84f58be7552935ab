//! Each provider statement of a day against the ledger, every difference listed.

use super::*;

/// One disagreement between a provider's statement and the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    pub kind: String,
    pub reference: String,
    pub statement_amount: Option<i64>,
    pub ledger_amount: Option<i64>,
    /// `missing_in_ledger`, `missing_in_statement` or `amount_differs`.
    pub problem: String,
}

/// A day's reconciliation of one provider.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reconciliation {
    pub provider: String,
    pub day: chrono::NaiveDate,
    pub statement_lines: usize,
    pub ledger_lines: usize,
    pub matched: usize,
    pub differences: Vec<Difference>,
}

/// Compares each provider's statement of a local day with what the event log recorded that
/// day (captures and completed refunds, by provider reference) and lists every difference.
/// Each run is kept for the admins.
pub async fn reconcile(
    services: &Services,
    day: chrono::NaiveDate,
) -> anyhow::Result<Vec<Reconciliation>> {
    let from = domain::availability::local_instant(day, chrono::NaiveTime::MIN);
    let to = from + chrono::Duration::days(1);
    let mut reports = Vec::new();
    for provider in services.payment_providers.all() {
        let Some(statement) = provider.statement(day).await? else {
            tracing::info!(provider = provider.name(), %day, "this provider's statements are not fetched; not reconciled");
            continue;
        };
        let ledger: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT CASE e.event_type WHEN 'PaymentCaptured' THEN 'payment' ELSE 'refund' END,
                    CASE e.event_type
                        WHEN 'PaymentCaptured' THEN e.payload->'PaymentCaptured'->>'provider_transaction'
                        ELSE e.payload->'RefundCompleted'->>'provider_refund' END,
                    CASE e.event_type
                        WHEN 'PaymentCaptured' THEN (e.payload->'PaymentCaptured'->>'amount')::bigint
                        ELSE (e.payload->'RefundCompleted'->>'amount')::bigint END
               FROM events e
               JOIN events created ON created.aggregate_type = 'payment'
                    AND created.aggregate_id = e.aggregate_id AND created.sequence = 1
              WHERE e.aggregate_type = 'payment'
                AND e.event_type IN ('PaymentCaptured', 'RefundCompleted')
                AND e.recorded_at >= $1 AND e.recorded_at < $2
                AND created.payload->'PaymentCreated'->>'provider' = $3",
        )
        .bind(from)
        .bind(to)
        .bind(provider.name())
        .fetch_all(&services.pool)
        .await?;
        let mut theirs: std::collections::BTreeMap<(String, String), i64> = statement
            .iter()
            .map(|line| ((line.kind.clone(), line.reference.clone()), line.amount))
            .collect();
        let mut differences = Vec::new();
        let mut matched = 0;
        for (kind, reference, amount) in &ledger {
            match theirs.remove(&(kind.clone(), reference.clone())) {
                Some(statement_amount) if statement_amount == *amount => matched += 1,
                Some(statement_amount) => differences.push(Difference {
                    kind: kind.clone(),
                    reference: reference.clone(),
                    statement_amount: Some(statement_amount),
                    ledger_amount: Some(*amount),
                    problem: "amount_differs".into(),
                }),
                None => differences.push(Difference {
                    kind: kind.clone(),
                    reference: reference.clone(),
                    statement_amount: None,
                    ledger_amount: Some(*amount),
                    problem: "missing_in_statement".into(),
                }),
            }
        }
        for ((kind, reference), amount) in theirs {
            differences.push(Difference {
                kind,
                reference,
                statement_amount: Some(amount),
                ledger_amount: None,
                problem: "missing_in_ledger".into(),
            });
        }
        let report = Reconciliation {
            provider: provider.name().to_owned(),
            day,
            statement_lines: statement.len(),
            ledger_lines: ledger.len(),
            matched,
            differences,
        };
        sqlx::query(
            "INSERT INTO reconciliation_runs (run_id, provider, day, matched, differences, report)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(Uuid::now_v7())
        .bind(&report.provider)
        .bind(day)
        .bind(report.matched as i32)
        .bind(report.differences.len() as i32)
        .bind(serde_json::to_value(&report)?)
        .execute(&services.pool)
        .await?;
        if !report.differences.is_empty() {
            tracing::warn!(provider = %report.provider, %day, differences = report.differences.len(), "the provider's statement and the ledger differ");
        }
        reports.push(report);
    }
    Ok(reports)
}
