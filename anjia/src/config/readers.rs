//! The readers: each setting turned into what it configures, with the same parsing, defaults
//! and refusals as always.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration as StdDuration;

use adapters::background::BackgroundCheckSettings;
use adapters::notify::NotifySettings;
use adapters::payments::alipay::AlipaySettings;
use adapters::payments::signing::key_text;
use adapters::payments::unionpay::UnionPaySettings;
use adapters::payments::wechat_pay::WechatPaySettings;
use adapters::payments::ProviderSettings;
use adapters::wechat_sign_in::OAuthSettings;
use anyhow::Context;
use application::jobs::JobSettings;
use application::settings::DispatchSettings;
use application::settings::MoneySettings;
use application::settings::ReviewSettings;
use chrono::Duration;
use command_api::auth::PasswordLimits;
use command_api::state::IceSettings;
use command_api::warehouse::WarehouseSettings;

use super::*;

impl FromEnvironment for DispatchSettings {
    fn from_environment(env: &Environment) -> anyhow::Result<Self> {
        let mut settings = DispatchSettings::default();
        let read = |name: &str| env.get(name);
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
    fn from_environment(env: &Environment) -> anyhow::Result<Self> {
        let mut settings = ReviewSettings::default();
        if let Some(days) = env.get("ANJIA_REVIEW_DAYS") {
            let days: i64 = days
                .parse()
                .map_err(|_| anyhow::anyhow!("ANJIA_REVIEW_DAYS must be a whole number"))?;
            anyhow::ensure!(days >= 1, "ANJIA_REVIEW_DAYS must be at least 1");
            settings.window = Duration::days(days);
        }
        if let Some(default) = env.get("ANJIA_DEFAULT_REVIEW") {
            settings.default_positive = match default.as_str() {
                "on" | "true" | "1" => true,
                "off" | "false" | "0" => false,
                other => anyhow::bail!("ANJIA_DEFAULT_REVIEW must be on or off, not {other}"),
            };
        }
        if let Some(schedule) = env.get("ANJIA_REVIEW_SCHEDULE") {
            settings.schedule = schedule;
        }
        Ok(settings)
    }
}

impl FromEnvironment for MoneySettings {
    fn from_environment(env: &Environment) -> anyhow::Result<Self> {
        let mut settings = MoneySettings::default();
        if let Some(days) = env.get("ANJIA_SETTLEMENT_DAYS") {
            let days: i64 = days
                .trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("ANJIA_SETTLEMENT_DAYS must be a whole number"))?;
            anyhow::ensure!(days >= 0, "ANJIA_SETTLEMENT_DAYS must not be negative");
            settings.settlement_period = Duration::days(days);
        }
        let number = |name: &str| -> anyhow::Result<Option<i64>> {
            match env.get(name) {
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
        if let Some(schedule) = env.get("ANJIA_MONEY_SCHEDULE") {
            settings.schedule = schedule;
        }
        Ok(settings)
    }
}

/// `mode` decides whether the sandbox is on when `ANJIA_PAYMENT_SANDBOX` is not set.
pub fn provider_settings(env: &Environment, mode: Mode) -> anyhow::Result<ProviderSettings> {
    let sandbox = match env.get("ANJIA_PAYMENT_SANDBOX").as_deref() {
        None => mode == Mode::Development,
        Some("on") => true,
        Some("off") => false,
        Some(other) => anyhow::bail!("ANJIA_PAYMENT_SANDBOX must be on or off, not {other}"),
    };
    Ok(ProviderSettings {
        alipay: alipay_settings(env)?,
        wechat_pay: wechat_pay_settings(env)?,
        unionpay: unionpay_settings(env)?,
        sandbox,
    })
}
/// `None` unless `ANJIA_ALIPAY_APP_ID` is set.
pub fn alipay_settings(env: &Environment) -> anyhow::Result<Option<AlipaySettings>> {
    let Some(app_id) = env.get("ANJIA_ALIPAY_APP_ID") else {
        return Ok(None);
    };
    let required = |name: &str| env.required_with(name, "ANJIA_ALIPAY_APP_ID");
    Ok(Some(AlipaySettings {
        app_id,
        private_key: key_text(&required("ANJIA_ALIPAY_PRIVATE_KEY")?)?,
        alipay_public_key: key_text(&required("ANJIA_ALIPAY_PUBLIC_KEY")?)?,
        gateway: env
            .get("ANJIA_ALIPAY_GATEWAY")
            .unwrap_or_else(|| AlipaySettings::DEFAULT_GATEWAY.to_owned()),
    }))
}

/// `None` unless `ANJIA_WECHATPAY_MCH_ID` is set.
pub fn wechat_pay_settings(env: &Environment) -> anyhow::Result<Option<WechatPaySettings>> {
    let Some(merchant_id) = env.get("ANJIA_WECHATPAY_MCH_ID") else {
        return Ok(None);
    };
    let required = |name: &str| env.required_with(name, "ANJIA_WECHATPAY_MCH_ID");
    Ok(Some(WechatPaySettings {
        merchant_id,
        app_id: required("ANJIA_WECHATPAY_APP_ID")?,
        merchant_serial: required("ANJIA_WECHATPAY_SERIAL")?,
        private_key: key_text(&required("ANJIA_WECHATPAY_PRIVATE_KEY")?)?,
        platform_key: key_text(&required("ANJIA_WECHATPAY_PLATFORM_KEY")?)?,
        platform_serial: required("ANJIA_WECHATPAY_PLATFORM_SERIAL")?,
        api_v3_key: required("ANJIA_WECHATPAY_API_V3_KEY")?,
        base_url: env
            .get("ANJIA_WECHATPAY_BASE_URL")
            .unwrap_or_else(|| WechatPaySettings::DEFAULT_BASE_URL.to_owned()),
    }))
}

/// `None` unless `ANJIA_UNIONPAY_MER_ID` is set.
pub fn unionpay_settings(env: &Environment) -> anyhow::Result<Option<UnionPaySettings>> {
    let Some(mer_id) = env.get("ANJIA_UNIONPAY_MER_ID") else {
        return Ok(None);
    };
    let required = |name: &str| env.required_with(name, "ANJIA_UNIONPAY_MER_ID");
    Ok(Some(UnionPaySettings {
        mer_id,
        cert_id: required("ANJIA_UNIONPAY_CERT_ID")?,
        private_key: key_text(&required("ANJIA_UNIONPAY_PRIVATE_KEY")?)?,
        unionpay_public_key: key_text(&required("ANJIA_UNIONPAY_PUBLIC_KEY")?)?,
        gateway: env
            .get("ANJIA_UNIONPAY_GATEWAY")
            .unwrap_or_else(|| UnionPaySettings::DEFAULT_GATEWAY.to_owned()),
        front_url: env
            .get("ANJIA_UNIONPAY_FRONT_URL")
            .unwrap_or_else(|| "/app/".to_owned()),
    }))
}

/// WeChat sign-in, when its app id, secret and redirect address are all set.
pub fn oauth_settings(env: &Environment) -> Option<OAuthSettings> {
    let read = |name: &str| env.get(name);
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
    fn from_environment(env: &Environment) -> anyhow::Result<Self> {
        let mut settings = JobSettings::default();
        let read = |name: &str| env.get(name);
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

impl FromEnvironment for NotifySettings {
    fn from_environment(env: &Environment) -> anyhow::Result<Self> {
        let read = |name: &str| env.get(name);
        Ok(NotifySettings {
            smtp_url: read("ANJIA_SMTP_URL"),
            mail_from: read("ANJIA_MAIL_FROM"),
            sms_gateway_url: read("ANJIA_SMS_GATEWAY_URL"),
            sms_gateway_token: read("ANJIA_SMS_GATEWAY_TOKEN"),
        })
    }
}

impl FromEnvironment for BackgroundCheckSettings {
    fn from_environment(env: &Environment) -> anyhow::Result<Self> {
        let read = |name: &str| env.get(name);
        Ok(BackgroundCheckSettings {
            url: read("ANJIA_BACKGROUND_CHECK_URL"),
            token: read("ANJIA_BACKGROUND_CHECK_TOKEN"),
        })
    }
}

impl FromEnvironment for WarehouseSettings {
    fn from_environment(env: &Environment) -> anyhow::Result<Self> {
        let mut settings = WarehouseSettings::default();
        if let Some(path) = env.get("ANJIA_WAREHOUSE") {
            settings.path = Some(PathBuf::from(path));
        }
        let number = |name: &str| {
            env.get(name)
                .and_then(|value| value.trim().parse::<u64>().ok())
        };
        if let Some(milliseconds) = number("ANJIA_SQL_TIMEOUT_MS") {
            settings.sql.timeout = StdDuration::from_millis(milliseconds.max(1));
        }
        if let Some(memory) = env.get("ANJIA_SQL_MEMORY") {
            settings.sql.memory = memory;
        }
        if let Some(threads) = number("ANJIA_SQL_THREADS") {
            settings.sql.threads = threads.clamp(1, 64) as i64;
        }
        if let Some(rows) = number("ANJIA_SQL_MAX_ROWS") {
            settings.sql.rows = rows.clamp(1, 1_000_000) as usize;
        }
        if let Some(bytes) = number("ANJIA_SQL_MAX_BYTES") {
            settings.sql.bytes = bytes.clamp(1024, 1 << 30) as usize;
        }
        if let Some(concurrency) = number("ANJIA_SQL_CONCURRENCY") {
            settings.sql_concurrency = concurrency.clamp(1, 64) as usize;
        }
        Ok(settings)
    }
}

impl FromEnvironment for PasswordLimits {
    fn from_environment(env: &Environment) -> anyhow::Result<Self> {
        let mut limits = PasswordLimits::default();
        for (name, slot) in [
            ("ANJIA_PASSWORD_WORKERS", &mut limits.workers),
            ("ANJIA_PASSWORD_QUEUE", &mut limits.queue),
        ] {
            if let Some(raw) = env.get(name) {
                *slot = raw
                    .trim()
                    .parse()
                    .map_err(|_| anyhow::anyhow!("{name} must be a whole number"))?;
            }
        }
        anyhow::ensure!(
            limits.workers > 0,
            "ANJIA_PASSWORD_WORKERS must be at least 1"
        );
        Ok(limits)
    }
}

impl FromEnvironment for Mode {
    fn from_environment(env: &Environment) -> anyhow::Result<Self> {
        match env.get("ANJIA_MODE").as_deref() {
            None | Some("production") => Ok(Mode::Production),
            Some("development") => Ok(Mode::Development),
            Some(other) => {
                anyhow::bail!("ANJIA_MODE must be production or development, not {other}")
            }
        }
    }
}

/// Reads `ANJIA_TRUSTED_PROXIES`: comma-separated IP addresses of the proxies in front of us.
pub fn trusted_proxies(env: &Environment) -> anyhow::Result<Vec<IpAddr>> {
    let Some(raw) = env.get("ANJIA_TRUSTED_PROXIES") else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry.parse().map_err(|_| {
                anyhow::anyhow!("ANJIA_TRUSTED_PROXIES: `{entry}` is not an IP address")
            })
        })
        .collect()
}

impl FromEnvironment for Settings {
    fn from_environment(env: &Environment) -> anyhow::Result<Self> {
        let mode = Mode::from_environment(env)?;
        Ok(Settings {
            mode,
            trusted_proxies: trusted_proxies(env)?,
            notify: NotifySettings::from_environment(env)?,
            background: BackgroundCheckSettings::from_environment(env)?,
            jobs: JobSettings::from_environment(env)?,
            oauth: oauth_settings(env),
            dispatch: DispatchSettings::from_environment(env)?,
            money: MoneySettings::from_environment(env)?,
            payment_providers: provider_settings(env, mode)?,
            metrics_token: env.get("ANJIA_METRICS_TOKEN"),
            reviews: ReviewSettings::from_environment(env)?,
            signaling: signaling::Settings::default(),
            warehouse: WarehouseSettings::from_environment(env)?,
            passwords: PasswordLimits::from_environment(env)?,
            staff_code_sign_in: env.get("ANJIA_STAFF_CODE_SIGN_IN").as_deref() == Some("on"),
            web_dir: env
                .get("ANJIA_WEB_DIR")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| std::path::PathBuf::from("web/dist")),
            public_url: env
                .get("ANJIA_PUBLIC_URL")
                .map(|url| url.trim_end_matches('/').to_owned())
                .filter(|url| !url.is_empty()),
            ice: IceSettings::from_environment(env)?,
            writers: writers(env)?,
        })
    }
}

impl FromEnvironment for IceSettings {
    fn from_environment(env: &Environment) -> anyhow::Result<Self> {
        let list = |name: &str| -> Vec<String> {
            env.get(name)
                .map(|urls| {
                    urls.split(',')
                        .map(|url| url.trim().to_owned())
                        .filter(|url| !url.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok(IceSettings {
            stun_urls: list("ANJIA_STUN_URLS"),
            turn_urls: list("ANJIA_TURN_URLS"),
            turn_secret: env.get("ANJIA_TURN_SECRET"),
        })
    }
}

/// `ANJIA_DB_WRITERS`: requests' write transactions at once (at least 1), when set.
fn writers(env: &Environment) -> anyhow::Result<Option<u32>> {
    env.get("ANJIA_DB_WRITERS")
        .map(|writers| {
            writers
                .parse::<u32>()
                .ok()
                .filter(|writers| *writers >= 1)
                .with_context(|| {
                    format!(
                        "ANJIA_DB_WRITERS must be a whole number of at least 1, not {writers:?}"
                    )
                })
        })
        .transpose()
}

/// `ANJIA_DB_POOL`: the server's database connections (at least 4; 64 by default).
pub fn db_pool(env: &Environment) -> anyhow::Result<u32> {
    match env.get("ANJIA_DB_POOL") {
        Some(size) => size
            .parse::<u32>()
            .ok()
            .filter(|size| *size >= 4)
            .with_context(|| {
                format!("ANJIA_DB_POOL must be a whole number of at least 4, not {size:?}")
            }),
        None => Ok(64),
    }
}
