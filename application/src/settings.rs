//! The application's settings, as plain data: how dispatch, money and reviews behave. The
//! binary fills them from its configuration; the use cases read them from `Services`.

use std::collections::HashMap;

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use domain::dispatch::{DispatchStage, Weights};
use domain::ServiceCode;

/// How dispatch behaves, from the environment.
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// `ANJIA_HOLD_MINUTES`: how long an unpaid order (and its named worker's time) is held.
    pub hold: Duration,
    /// `ANJIA_NAMED_CONFIRM_MINUTES`: how long a named worker has to confirm.
    pub named_confirm: Duration,
    /// `ANJIA_GRAB_WINDOW_MINUTES`: how long an order is offered for grabbing.
    pub grab_window: Duration,
    /// `ANJIA_AUTO_WINDOW_MINUTES`: how long automatic rounds try before the admins take over.
    pub auto_window: Duration,
    /// `ANJIA_ACCEPT_MINUTES`: how long a dispatched worker has to accept.
    pub accept_within: Duration,
    /// `ANJIA_DISPATCH_MODES`, e.g. `daily_cleaning=grab,nanny=auto`: the first stage per
    /// service for orders that name no worker (`grab`, `auto` or `admin`).
    pub modes: HashMap<ServiceCode, DispatchStage>,
    /// `ANJIA_DISPATCH_SCHEDULE`: when the timers and automatic rounds run (cron with seconds).
    pub schedule: String,
    /// How old a reservation must be before reconciliation may give it back: every step that
    /// books a worker and then commits the order finishes well inside it. One minute.
    pub reservation_grace: Duration,
    pub weights: Weights,
    /// `ANJIA_MAX_UNPAID_NAMED_ORDERS`: unpaid orders naming a worker one customer may hold
    /// at once (each holds that worker's time until paid or expired).
    pub max_unpaid_named: i64,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        let modes = ServiceCode::ALL
            .into_iter()
            .map(|service| {
                // Quick jobs go to whoever grabs first; live-in care is matched with care.
                let stage = match service {
                    ServiceCode::DailyCleaning
                    | ServiceCode::DeepCleaning
                    | ServiceCode::HomeRepair => DispatchStage::Grab,
                    _ => DispatchStage::Auto,
                };
                (service, stage)
            })
            .collect();
        DispatchSettings {
            hold: Duration::minutes(15),
            named_confirm: Duration::minutes(10),
            grab_window: Duration::minutes(10),
            auto_window: Duration::minutes(30),
            accept_within: Duration::minutes(10),
            modes,
            schedule: "*/5 * * * * *".to_owned(),
            reservation_grace: Duration::minutes(1),
            weights: Weights::default(),
            max_unpaid_named: 3,
        }
    }
}

impl DispatchSettings {
    /// Reads `service=stage,…`.
    pub fn set_modes(&mut self, raw: &str) -> anyhow::Result<()> {
        for pair in raw
            .split(',')
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
        {
            let (service, stage) = pair
                .split_once('=')
                .with_context(|| format!("ANJIA_DISPATCH_MODES: `{pair}` is not service=stage"))?;
            let service = ServiceCode::parse(service.trim())
                .with_context(|| format!("ANJIA_DISPATCH_MODES: unknown service `{service}`"))?;
            let stage = DispatchStage::parse(stage.trim())
                .filter(|stage| *stage != DispatchStage::Named)
                .with_context(|| {
                    format!("ANJIA_DISPATCH_MODES: `{stage}` is not grab, auto or admin")
                })?;
            self.modes.insert(service, stage);
        }
        Ok(())
    }

    pub fn first_open_stage(&self, service: ServiceCode) -> DispatchStage {
        self.modes
            .get(&service)
            .copied()
            .unwrap_or(DispatchStage::Auto)
    }

    pub fn deadline(&self, stage: DispatchStage, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let window = match stage {
            DispatchStage::Named => self.named_confirm,
            DispatchStage::Grab => self.grab_window,
            DispatchStage::Auto => self.auto_window,
            DispatchStage::Admin => return None,
        };
        Some(now + window)
    }

    /// The stage after `stage` for a service: grab and auto in the order the service's mode
    /// implies, then the admins.
    pub(crate) fn next_stage(
        &self,
        stage: Option<DispatchStage>,
        service: ServiceCode,
    ) -> DispatchStage {
        let first = self.first_open_stage(service);
        match stage {
            None | Some(DispatchStage::Named) => first,
            Some(DispatchStage::Grab) => DispatchStage::Auto,
            Some(DispatchStage::Auto) | Some(DispatchStage::Admin) => DispatchStage::Admin,
        }
    }

    pub fn pay_by(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + self.hold
    }
}

/// Money settings.
#[derive(Debug, Clone)]
pub struct MoneySettings {
    /// `ANJIA_SETTLEMENT_DAYS`: how long income stays pending (T+7 by default).
    pub settlement_period: Duration,
    /// `ANJIA_MONEY_SCHEDULE`: when releases and settlements run (cron with seconds).
    pub schedule: String,
    /// `ANJIA_REFUND_FEE_WINDOW_HOURS`, `ANJIA_REFUND_LATE_FEE_BP` and
    /// `ANJIA_LATE_FEE_WORKER_SHARE_BP`: the cancellation policy.
    pub refunds: domain::payment::RefundPolicy,
    pub withdrawals: domain::wallet::WithdrawalRules,
    /// How long a payment waits for its notification before the provider is asked.
    pub query_after: Duration,
}

impl Default for MoneySettings {
    fn default() -> Self {
        MoneySettings {
            settlement_period: Duration::days(7),
            schedule: "*/10 * * * * *".to_owned(),
            refunds: domain::payment::RefundPolicy::default(),
            withdrawals: domain::wallet::WithdrawalRules::default(),
            query_after: Duration::minutes(2),
        }
    }
}

/// Review settings, from the environment.
#[derive(Debug, Clone)]
pub struct ReviewSettings {
    /// `ANJIA_REVIEW_DAYS`: how long after the service a customer may review (15 by default).
    pub window: Duration,
    /// `ANJIA_DEFAULT_REVIEW`: `on` (default) records a five-star default when the window
    /// closes without a review; `off` records nothing.
    pub default_positive: bool,
    /// `ANJIA_REVIEW_SCHEDULE`: when closed windows are looked for (cron with seconds).
    pub schedule: String,
}

impl Default for ReviewSettings {
    fn default() -> Self {
        ReviewSettings {
            window: Duration::days(15),
            default_positive: true,
            schedule: "30 * * * * *".to_owned(),
        }
    }
}
