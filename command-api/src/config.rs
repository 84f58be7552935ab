//! Reading the application's settings from the environment, once, at start.
//!
//! The application's settings are plain data; this is the one place that fills them from
//! `ANJIA_*` variables.

use anyhow::Context;
use application::dispatch::DispatchSettings;
use application::jobs::JobSettings;
use application::money::MoneySettings;
use application::reviews::ReviewSettings;
use chrono::Duration;

use adapters::payments::alipay::AlipaySettings;
use adapters::payments::signing::key_text;
use adapters::payments::unionpay::UnionPaySettings;
use adapters::payments::wechat_pay::WechatPaySettings;
use adapters::payments::ProviderSettings;
use adapters::wechat_sign_in::OAuthSettings;

use crate::server::{required_with, setting};

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

impl FromEnvironment for MoneySettings {
    fn from_environment() -> anyhow::Result<Self> {
        let mut settings = MoneySettings::default();
        if let Some(days) = std::env::var("ANJIA_SETTLEMENT_DAYS")
            .ok()
            .filter(|value| !value.trim().is_empty())
        {
            let days: i64 = days
                .trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("ANJIA_SETTLEMENT_DAYS must be a whole number"))?;
            anyhow::ensure!(days >= 0, "ANJIA_SETTLEMENT_DAYS must not be negative");
            settings.settlement_period = Duration::days(days);
        }
        let number = |name: &str| -> anyhow::Result<Option<i64>> {
            match std::env::var(name)
                .ok()
                .filter(|value| !value.trim().is_empty())
            {
                Some(raw) => {
                    Ok(Some(raw.trim().parse().map_err(|_| {
                        anyhow::anyhow!("{name} must be a whole number")
                    })?))
                }
                None => Ok(None),
            }
        };
        if let Some(hours) = number("ANJIA_REFUND_FEE_WINDOW_HOURS")? {
            anyhow::ensure!(
                hours >= 0,
                "ANJIA_REFUND_FEE_WINDOW_HOURS must not be negative"
            );
            settings.refunds.fee_window_hours = hours;
        }
        if let Some(bp) = number("ANJIA_REFUND_LATE_FEE_BP")? {
            anyhow::ensure!(
                (0..=10_000).contains(&bp),
                "ANJIA_REFUND_LATE_FEE_BP must be 0 to 10000"
            );
            settings.refunds.late_fee_bp = bp as u32;
        }
        if let Some(bp) = number("ANJIA_LATE_FEE_WORKER_SHARE_BP")? {
            anyhow::ensure!(
                (0..=10_000).contains(&bp),
                "ANJIA_LATE_FEE_WORKER_SHARE_BP must be 0 to 10000"
            );
            settings.refunds.worker_share_bp = bp as u32;
        }
        if let Some(hours) = number("ANJIA_WITHDRAWAL_ACCOUNT_AGE_HOURS")? {
            anyhow::ensure!(
                hours >= 0,
                "ANJIA_WITHDRAWAL_ACCOUNT_AGE_HOURS must not be negative"
            );
            settings.withdrawals.account_age_hours = hours;
        }
        if let Some(schedule) = std::env::var("ANJIA_MONEY_SCHEDULE")
            .ok()
            .filter(|value| !value.trim().is_empty())
        {
            settings.schedule = schedule;
        }
        Ok(settings)
    }
}

/// `mode` decides whether the sandbox is on when `ANJIA_PAYMENT_SANDBOX` is not set.
pub fn provider_settings(mode: crate::server::Mode) -> anyhow::Result<ProviderSettings> {
    let sandbox = match setting("ANJIA_PAYMENT_SANDBOX").as_deref() {
        None => mode == crate::server::Mode::Development,
        Some("on") => true,
        Some("off") => false,
        Some(other) => anyhow::bail!("ANJIA_PAYMENT_SANDBOX must be on or off, not {other}"),
    };
    Ok(ProviderSettings {
        alipay: alipay_settings()?,
        wechat_pay: wechat_pay_settings()?,
        unionpay: unionpay_settings()?,
        sandbox,
    })
}
/// `None` unless `ANJIA_ALIPAY_APP_ID` is set.
pub fn alipay_settings() -> anyhow::Result<Option<AlipaySettings>> {
    let Some(app_id) = setting("ANJIA_ALIPAY_APP_ID") else {
        return Ok(None);
    };
    let required = |name: &str| required_with(name, "ANJIA_ALIPAY_APP_ID");
    Ok(Some(AlipaySettings {
        app_id,
        private_key: key_text(&required("ANJIA_ALIPAY_PRIVATE_KEY")?)?,
        alipay_public_key: key_text(&required("ANJIA_ALIPAY_PUBLIC_KEY")?)?,
        gateway: setting("ANJIA_ALIPAY_GATEWAY")
            .unwrap_or_else(|| AlipaySettings::DEFAULT_GATEWAY.to_owned()),
    }))
}

/// `None` unless `ANJIA_WECHATPAY_MCH_ID` is set.
pub fn wechat_pay_settings() -> anyhow::Result<Option<WechatPaySettings>> {
    let Some(merchant_id) = setting("ANJIA_WECHATPAY_MCH_ID") else {
        return Ok(None);
    };
    let required = |name: &str| required_with(name, "ANJIA_WECHATPAY_MCH_ID");
    Ok(Some(WechatPaySettings {
        merchant_id,
        app_id: required("ANJIA_WECHATPAY_APP_ID")?,
        merchant_serial: required("ANJIA_WECHATPAY_SERIAL")?,
        private_key: key_text(&required("ANJIA_WECHATPAY_PRIVATE_KEY")?)?,
        platform_key: key_text(&required("ANJIA_WECHATPAY_PLATFORM_KEY")?)?,
        platform_serial: required("ANJIA_WECHATPAY_PLATFORM_SERIAL")?,
        api_v3_key: required("ANJIA_WECHATPAY_API_V3_KEY")?,
        base_url: setting("ANJIA_WECHATPAY_BASE_URL")
            .unwrap_or_else(|| WechatPaySettings::DEFAULT_BASE_URL.to_owned()),
    }))
}

/// `None` unless `ANJIA_UNIONPAY_MER_ID` is set.
pub fn unionpay_settings() -> anyhow::Result<Option<UnionPaySettings>> {
    let Some(mer_id) = setting("ANJIA_UNIONPAY_MER_ID") else {
        return Ok(None);
    };
    let required = |name: &str| required_with(name, "ANJIA_UNIONPAY_MER_ID");
    Ok(Some(UnionPaySettings {
        mer_id,
        cert_id: required("ANJIA_UNIONPAY_CERT_ID")?,
        private_key: key_text(&required("ANJIA_UNIONPAY_PRIVATE_KEY")?)?,
        unionpay_public_key: key_text(&required("ANJIA_UNIONPAY_PUBLIC_KEY")?)?,
        gateway: setting("ANJIA_UNIONPAY_GATEWAY")
            .unwrap_or_else(|| UnionPaySettings::DEFAULT_GATEWAY.to_owned()),
        front_url: setting("ANJIA_UNIONPAY_FRONT_URL").unwrap_or_else(|| "/app/".to_owned()),
    }))
}

/// WeChat sign-in, when its app id, secret and redirect address are all set.
pub fn oauth_settings() -> Option<OAuthSettings> {
    let read = setting;
    Some(OAuthSettings {
        authorize_url: read("ANJIA_WECHAT_AUTHORIZE_URL")
            .unwrap_or_else(|| "https://open.weixin.qq.com/connect/qrconnect".to_owned()),
        api_url: read("ANJIA_WECHAT_API_URL")
            .unwrap_or_else(|| "https://api.weixin.qq.com".to_owned()),
        app_id: read("ANJIA_WECHAT_APP_ID")?,
        app_secret: read("ANJIA_WECHAT_APP_SECRET")?,
        redirect_uri: read("ANJIA_WECHAT_REDIRECT_URI")?,
    })
}

impl FromEnvironment for JobSettings {
    fn from_environment() -> anyhow::Result<Self> {
        let mut settings = JobSettings::default();
        let read = setting;
        if let Some(schedule) = read("ANJIA_CERTIFICATE_EXPIRY_SCHEDULE") {
            settings.certificate_expiry_schedule = schedule;
        }
        if let Some(schedule) = read("ANJIA_HOUSEKEEPING_SCHEDULE") {
            settings.housekeeping_schedule = schedule;
        }
        if let Some(schedule) = read("ANJIA_REMINDER_SCHEDULE") {
            settings.reminder_schedule = schedule;
        }
        if let Some(schedule) = read("ANJIA_RECONCILE_SCHEDULE") {
            settings.reconcile_schedule = schedule;
        }
        if let Some(schedule) = read("ANJIA_AUDIT_SCHEDULE") {
            settings.audit_schedule = schedule;
        }
        if let Some(schedule) = read("ANJIA_ANALYTICS_SCHEDULE") {
            settings.analytics_schedule = schedule;
        }
        Ok(settings)
    }
}
