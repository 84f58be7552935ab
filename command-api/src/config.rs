//! Reading the application's settings from the environment, once, at start.
//!
//! The application's settings are plain data; this is the one place that fills them from
//! `ANJIA_*` variables.

use anyhow::Context;
use application::dispatch::DispatchSettings;
use application::reviews::ReviewSettings;
use chrono::Duration;

use crate::server::setting;

/// Settings that can be read from the environment.
pub trait FromEnvironment: Sized {
    fn from_environment() -> anyhow::Result<Self>;
}

impl FromEnvironment for DispatchSettings {
    fn from_environment() -> anyhow::Result<Self> {
        let mut settings = DispatchSettings::default();
        let read = setting;
        for (name, slot) in [
            ("ANJIA_HOLD_MINUTES", &mut settings.hold),
            ("ANJIA_NAMED_CONFIRM_MINUTES", &mut settings.named_confirm),
            ("ANJIA_GRAB_WINDOW_MINUTES", &mut settings.grab_window),
            ("ANJIA_AUTO_WINDOW_MINUTES", &mut settings.auto_window),
            ("ANJIA_ACCEPT_MINUTES", &mut settings.accept_within),
        ] {
            if let Some(raw) = read(name) {
                let minutes: i64 = raw
                    .trim()
                    .parse()
                    .with_context(|| format!("{name} must be a whole number of minutes"))?;
                anyhow::ensure!(minutes > 0, "{name} must be positive");
                *slot = Duration::minutes(minutes);
            }
        }
        if let Some(raw) = read("ANJIA_DISPATCH_MODES") {
            settings.set_modes(&raw)?;
        }
        if let Some(schedule) = read("ANJIA_DISPATCH_SCHEDULE") {
            settings.schedule = schedule;
        }
        if let Some(raw) = read("ANJIA_MAX_UNPAID_NAMED_ORDERS") {
            settings.max_unpaid_named = raw
                .trim()
                .parse()
                .context("ANJIA_MAX_UNPAID_NAMED_ORDERS must be a whole number")?;
            anyhow::ensure!(
                settings.max_unpaid_named > 0,
                "ANJIA_MAX_UNPAID_NAMED_ORDERS must be positive"
            );
        }
        Ok(settings)
    }
}

impl FromEnvironment for ReviewSettings {
    fn from_environment() -> anyhow::Result<Self> {
        let mut settings = ReviewSettings::default();
        if let Some(days) = setting("ANJIA_REVIEW_DAYS") {
            let days: i64 = days
                .parse()
                .map_err(|_| anyhow::anyhow!("ANJIA_REVIEW_DAYS must be a whole number"))?;
            anyhow::ensure!(days >= 1, "ANJIA_REVIEW_DAYS must be at least 1");
            settings.window = Duration::days(days);
        }
        if let Some(default) = setting("ANJIA_DEFAULT_REVIEW") {
            settings.default_positive = match default.as_str() {
                "on" | "true" | "1" => true,
                "off" | "false" | "0" => false,
                other => anyhow::bail!("ANJIA_DEFAULT_REVIEW must be on or off, not {other}"),
            };
        }
        if let Some(schedule) = setting("ANJIA_REVIEW_SCHEDULE") {
            settings.schedule = schedule;
        }
        Ok(settings)
    }
}
