//! The `anjia` binary's one typed configuration. Every `ANJIA_*` setting is declared once in
//! `SETTINGS`, read once at start by clap (from the environment, or as a `--anjia-…` flag), and
//! turned into the typed settings the application, the adapters and the HTTP layer take (by
//! `readers`).
//! Nothing else in the workspace reads the environment: `clippy.toml` forbids `std::env::var`
//! and its kin, and a test checks that every name read here is declared.

use std::collections::BTreeMap;

mod readers;

pub use self::readers::*;

/// One setting the platform reads.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub name: &'static str,
    pub help: &'static str,
    /// Kept out of `--help`.
    pub secret: bool,
}

/// Every setting, with what it does. (`DATABASE_URL`, `ANJIA_VAR_DIR`, `ANJIA_MASTER_KEY`,
/// `ANJIA_LISTEN`, `ANJIA_ADMIN_PASSWORD` and `RUST_LOG` are the command line's own.)
pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "ANJIA_MODE",
        help: "`production` (the default) or `development`",
        secret: false,
    },
    Setting {
        name: "ANJIA_PUBLIC_URL",
        help:
            "where the platform is reached from outside; providers' notifications come back there",
        secret: false,
    },
    Setting {
        name: "ANJIA_WEB_DIR",
        help: "the web apps' build, served at /admin/ and /app/ (web/dist)",
        secret: false,
    },
    Setting {
        name: "ANJIA_DB_POOL",
        help: "the server's database connections, at least 4 (64)",
        secret: false,
    },
    Setting {
        name: "ANJIA_DB_WRITERS",
        help: "requests' write transactions at once; more wait their turn (4 per core)",
        secret: false,
    },
    Setting {
        name: "ANJIA_TRUSTED_PROXIES",
        help: "comma-separated addresses of the reverse proxies whose X-Forwarded-For is believed",
        secret: false,
    },
    Setting {
        name: "ANJIA_METRICS_TOKEN",
        help: "the bearer token /metrics asks for",
        secret: true,
    },
    Setting {
        name: "ANJIA_STAFF_CODE_SIGN_IN",
        help: "`on`: admins and analysts may sign in by one-time code",
        secret: false,
    },
    Setting {
        name: "ANJIA_PASSWORD_WORKERS",
        help: "password hashes computed at once",
        secret: false,
    },
    Setting {
        name: "ANJIA_PASSWORD_QUEUE",
        help: "sign-ins waiting for a hash before 429",
        secret: false,
    },
    Setting {
        name: "ANJIA_SMTP_URL",
        help: "e-mail: smtp://host:port, smtp://…?tls=required or smtps://user:password@host:port",
        secret: true,
    },
    Setting {
        name: "ANJIA_MAIL_FROM",
        help: "the sender of e-mail",
        secret: false,
    },
    Setting {
        name: "ANJIA_SMS_GATEWAY_URL",
        help: "the HTTP SMS gateway",
        secret: false,
    },
    Setting {
        name: "ANJIA_SMS_GATEWAY_TOKEN",
        help: "the SMS gateway's bearer token",
        secret: true,
    },
    Setting {
        name: "ANJIA_BACKGROUND_CHECK_URL",
        help: "the background-check provider; without it the offline list is read",
        secret: false,
    },
    Setting {
        name: "ANJIA_BACKGROUND_CHECK_TOKEN",
        help: "the background-check provider's bearer token",
        secret: true,
    },
    Setting {
        name: "ANJIA_HOLD_MINUTES",
        help: "how long an unpaid order holds its named worker (15)",
        secret: false,
    },
    Setting {
        name: "ANJIA_NAMED_CONFIRM_MINUTES",
        help: "how long a named worker has to confirm (10)",
        secret: false,
    },
    Setting {
        name: "ANJIA_GRAB_WINDOW_MINUTES",
        help: "how long an order is offered for grabbing (10)",
        secret: false,
    },
    Setting {
        name: "ANJIA_AUTO_WINDOW_MINUTES",
        help: "how long automatic rounds try before the admins (30)",
        secret: false,
    },
    Setting {
        name: "ANJIA_ACCEPT_MINUTES",
        help: "how long a dispatched worker has to accept (10)",
        secret: false,
    },
    Setting {
        name: "ANJIA_DISPATCH_MODES",
        help: "first dispatch stage per service, e.g. daily_cleaning=grab,nanny=auto",
        secret: false,
    },
    Setting {
        name: "ANJIA_DISPATCH_SCHEDULE",
        help: "when the dispatcher runs (cron with seconds)",
        secret: false,
    },
    Setting {
        name: "ANJIA_MAX_UNPAID_NAMED_ORDERS",
        help: "unpaid orders naming a worker one customer may hold (3)",
        secret: false,
    },
    Setting {
        name: "ANJIA_SETTLEMENT_DAYS",
        help: "days income stays pending (7)",
        secret: false,
    },
    Setting {
        name: "ANJIA_MONEY_SCHEDULE",
        help: "when releases, settlements, refunds and payouts run",
        secret: false,
    },
    Setting {
        name: "ANJIA_REFUND_FEE_WINDOW_HOURS",
        help: "hours before the start when cancelling starts to cost",
        secret: false,
    },
    Setting {
        name: "ANJIA_REFUND_LATE_FEE_BP",
        help: "the late cancellation fee, basis points",
        secret: false,
    },
    Setting {
        name: "ANJIA_LATE_FEE_WORKER_SHARE_BP",
        help: "the worker's share of that fee, basis points",
        secret: false,
    },
    Setting {
        name: "ANJIA_WITHDRAWAL_ACCOUNT_AGE_HOURS",
        help: "how old a bank account must be to withdraw to",
        secret: false,
    },
    Setting {
        name: "ANJIA_PAYMENT_SANDBOX",
        help: "`on` or `off`: the in-process payment sandbox (development only)",
        secret: false,
    },
    Setting {
        name: "ANJIA_ALIPAY_APP_ID",
        help: "Alipay's app id; turns Alipay on",
        secret: false,
    },
    Setting {
        name: "ANJIA_ALIPAY_PRIVATE_KEY",
        help: "our RSA key for Alipay (PEM or base64 DER)",
        secret: true,
    },
    Setting {
        name: "ANJIA_ALIPAY_PUBLIC_KEY",
        help: "Alipay's public key",
        secret: false,
    },
    Setting {
        name: "ANJIA_ALIPAY_GATEWAY",
        help: "Alipay's gateway",
        secret: false,
    },
    Setting {
        name: "ANJIA_WECHATPAY_MCH_ID",
        help: "WeChat Pay's merchant id; turns WeChat Pay on",
        secret: false,
    },
    Setting {
        name: "ANJIA_WECHATPAY_APP_ID",
        help: "the app id WeChat Pay charges for",
        secret: false,
    },
    Setting {
        name: "ANJIA_WECHATPAY_SERIAL",
        help: "our certificate's serial",
        secret: false,
    },
    Setting {
        name: "ANJIA_WECHATPAY_PRIVATE_KEY",
        help: "our RSA key for WeChat Pay",
        secret: true,
    },
    Setting {
        name: "ANJIA_WECHATPAY_PLATFORM_KEY",
        help: "WeChat Pay's platform public key",
        secret: false,
    },
    Setting {
        name: "ANJIA_WECHATPAY_PLATFORM_SERIAL",
        help: "the platform key's serial",
        secret: false,
    },
    Setting {
        name: "ANJIA_WECHATPAY_API_V3_KEY",
        help: "the APIv3 key notifications are encrypted with",
        secret: true,
    },
    Setting {
        name: "ANJIA_WECHATPAY_BASE_URL",
        help: "WeChat Pay's API",
        secret: false,
    },
    Setting {
        name: "ANJIA_UNIONPAY_MER_ID",
        help: "UnionPay's merchant id; turns bank cards on",
        secret: false,
    },
    Setting {
        name: "ANJIA_UNIONPAY_CERT_ID",
        help: "our signing certificate's id",
        secret: false,
    },
    Setting {
        name: "ANJIA_UNIONPAY_PRIVATE_KEY",
        help: "our RSA key for UnionPay",
        secret: true,
    },
    Setting {
        name: "ANJIA_UNIONPAY_PUBLIC_KEY",
        help: "UnionPay's public key",
        secret: false,
    },
    Setting {
        name: "ANJIA_UNIONPAY_GATEWAY",
        help: "UnionPay's gateway",
        secret: false,
    },
    Setting {
        name: "ANJIA_UNIONPAY_FRONT_URL",
        help: "where the cashier sends the customer back (/app/)",
        secret: false,
    },
    Setting {
        name: "ANJIA_WECHAT_APP_ID",
        help: "WeChat sign-in's app id",
        secret: false,
    },
    Setting {
        name: "ANJIA_WECHAT_APP_SECRET",
        help: "WeChat sign-in's secret",
        secret: true,
    },
    Setting {
        name: "ANJIA_WECHAT_REDIRECT_URI",
        help: "where WeChat sends the browser back",
        secret: false,
    },
    Setting {
        name: "ANJIA_WECHAT_AUTHORIZE_URL",
        help: "WeChat's authorize page",
        secret: false,
    },
    Setting {
        name: "ANJIA_WECHAT_API_URL",
        help: "WeChat's API",
        secret: false,
    },
    Setting {
        name: "ANJIA_REVIEW_DAYS",
        help: "days a customer may review (15)",
        secret: false,
    },
    Setting {
        name: "ANJIA_DEFAULT_REVIEW",
        help: "`on`: a default positive review when none is given in time",
        secret: false,
    },
    Setting {
        name: "ANJIA_REVIEW_SCHEDULE",
        help: "when default reviews are recorded",
        secret: false,
    },
    Setting {
        name: "ANJIA_CERTIFICATE_EXPIRY_SCHEDULE",
        help: "when expired certificates are noticed",
        secret: false,
    },
    Setting {
        name: "ANJIA_HOUSEKEEPING_SCHEDULE",
        help: "when expired rows are purged",
        secret: false,
    },
    Setting {
        name: "ANJIA_REMINDER_SCHEDULE",
        help: "when due reminders are delivered",
        secret: false,
    },
    Setting {
        name: "ANJIA_RECONCILE_SCHEDULE",
        help: "when yesterday's statements are reconciled",
        secret: false,
    },
    Setting {
        name: "ANJIA_AUDIT_SCHEDULE",
        help: "when the hash chains are verified",
        secret: false,
    },
    Setting {
        name: "ANJIA_ANALYTICS_SCHEDULE",
        help: "when the warehouse is refreshed",
        secret: false,
    },
    Setting {
        name: "ANJIA_WAREHOUSE",
        help: "the DuckDB file (var/warehouse.duckdb)",
        secret: false,
    },
    Setting {
        name: "ANJIA_SQL_TIMEOUT_MS",
        help: "an analyst's query's time limit",
        secret: false,
    },
    Setting {
        name: "ANJIA_SQL_MEMORY",
        help: "an analyst's query's memory limit, e.g. 512MB",
        secret: false,
    },
    Setting {
        name: "ANJIA_SQL_THREADS",
        help: "an analyst's query's threads",
        secret: false,
    },
    Setting {
        name: "ANJIA_SQL_MAX_ROWS",
        help: "rows an answer carries at most",
        secret: false,
    },
    Setting {
        name: "ANJIA_SQL_MAX_BYTES",
        help: "bytes an answer carries at most",
        secret: false,
    },
    Setting {
        name: "ANJIA_SQL_CONCURRENCY",
        help: "analysts' queries at once, across processes",
        secret: false,
    },
    Setting {
        name: "ANJIA_STUN_URLS",
        help: "comma-separated STUN servers for interview calls",
        secret: false,
    },
    Setting {
        name: "ANJIA_TURN_URLS",
        help: "comma-separated TURN servers for interview calls",
        secret: false,
    },
    Setting {
        name: "ANJIA_TURN_SECRET",
        help: "the TURN servers' shared secret",
        secret: true,
    },
];

/// The settings as they were given: each trimmed, a blank one as if unset.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    values: BTreeMap<&'static str, String>,
}

impl Environment {
    /// The setting's value, trimmed; `None` when unset or blank.
    pub fn get(&self, name: &str) -> Option<String> {
        debug_assert!(
            SETTINGS.iter().any(|setting| setting.name == name),
            "{name} is not declared in SETTINGS"
        );
        self.values
            .get(name)
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    }

    /// A setting that must be there because `anchor` is (a provider's other settings once its
    /// first one is given).
    pub fn required_with(&self, name: &str, anchor: &str) -> anyhow::Result<String> {
        self.get(name)
            .ok_or_else(|| anyhow::anyhow!("{name} is required with {anchor}"))
    }

    /// One line per setting: its name, its value (`<set>` for a secret, `-` when unset) and
    /// what it does.
    pub fn describe(&self) -> Vec<String> {
        let width = SETTINGS
            .iter()
            .map(|setting| setting.name.len())
            .max()
            .unwrap_or(0);
        SETTINGS
            .iter()
            .map(|setting| {
                let value = match self.get(setting.name) {
                    None => "-".to_owned(),
                    Some(_) if setting.secret => "<set>".to_owned(),
                    Some(value) => value,
                };
                format!("{:width$}  {value}  ({})", setting.name, setting.help)
            })
            .collect()
    }

    /// Settings given by hand (tests and tools).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut values = BTreeMap::new();
        for (name, value) in pairs {
            if let Some(setting) = SETTINGS.iter().find(|setting| setting.name == name) {
                values.insert(setting.name, value.to_owned());
            }
        }
        Environment { values }
    }
}

/// `ANJIA_HOLD_MINUTES` is also `--anjia-hold-minutes`.
fn flag(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

impl clap::FromArgMatches for Environment {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut values = BTreeMap::new();
        for setting in SETTINGS {
            if let Some(value) = matches.get_one::<String>(setting.name) {
                values.insert(setting.name, value.clone());
            }
        }
        Ok(Environment { values })
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl clap::Args for Environment {
    fn augment_args(mut command: clap::Command) -> clap::Command {
        for setting in SETTINGS {
            // Made once per process, at start.
            let long: &'static str = Box::leak(flag(setting.name).into_boxed_str());
            command = command.arg(
                clap::Arg::new(setting.name)
                    .long(long)
                    .env(setting.name)
                    .value_name("VALUE")
                    .help(setting.help)
                    .hide_env_values(setting.secret)
                    .global(true)
                    .hide(true),
            );
        }
        command
    }

    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        Self::augment_args(command)
    }
}

/// `ANJIA_MODE`: how much the server trusts the machine it runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// The default: refuses a payment sandbox that confirms its own payments, and personal
    /// data sealed under a key kept in the same database.
    #[default]
    Production,
    /// A developer's machine and the tests (`scripts/start` asks for it): the sandbox takes
    /// payments without a real provider, and a generated key may seal personal data.
    Development,
}

/// Everything the platform is configured with, typed.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `ANJIA_MODE`: production unless asked for development.
    pub mode: Mode,
    pub notify: adapters::notify::NotifySettings,
    pub background: adapters::background::BackgroundCheckSettings,
    pub jobs: application::jobs::JobSettings,
    pub oauth: Option<adapters::wechat_sign_in::OAuthSettings>,
    pub trusted_proxies: Vec<std::net::IpAddr>,
    pub dispatch: application::settings::DispatchSettings,
    /// `ANJIA_PUBLIC_URL`: where this platform is reached from outside (payment providers'
    /// notifications come back there); by default the address it listens on.
    pub public_url: Option<String>,
    pub money: application::settings::MoneySettings,
    /// Alipay and WeChat Pay, when configured.
    pub payment_providers: adapters::payments::ProviderSettings,
    /// `ANJIA_METRICS_TOKEN`: when set, `/metrics` asks for it as a bearer token.
    pub metrics_token: Option<String>,
    pub reviews: application::settings::ReviewSettings,
    /// The signaling rooms' grace period, pings and time-outs.
    pub signaling: signaling::Settings,
    /// The analytics warehouse's file and refresh schedule.
    pub warehouse: command_api::warehouse::WarehouseSettings,
    /// How much password hashing a process takes on at once.
    pub passwords: command_api::auth::PasswordLimits,
    /// `ANJIA_STAFF_CODE_SIGN_IN=on`: admins and analysts may sign in by one-time code unless
    /// they turned it off (by default they may not until they turn it on).
    pub staff_code_sign_in: bool,
    /// `ANJIA_WEB_DIR`: the web apps' build (`vite build`'s `dist`), served at `/admin/`.
    pub web_dir: std::path::PathBuf,
    /// `ANJIA_STUN_URLS`, `ANJIA_TURN_URLS` and `ANJIA_TURN_SECRET`: what interview calls
    /// traverse NATs with.
    pub ice: command_api::state::IceSettings,
    /// `ANJIA_DB_WRITERS`: requests' write transactions at once, each on a connection of its
    /// own (`application::services::default_writers` when unset).
    pub writers: Option<u32>,
}

impl Settings {
    /// What production mode refuses to start with; what development mode allows, said loudly.
    /// `master_key_given`: whether `ANJIA_MASTER_KEY` is set.
    pub fn check(&self, master_key_given: bool) -> anyhow::Result<()> {
        if self.mode == Mode::Production {
            anyhow::ensure!(
                !self.payment_providers.sandbox,
                "the payment sandbox confirms its own payments: it runs only with ANJIA_MODE=development"
            );
            anyhow::ensure!(
                master_key_given,
                "ANJIA_MASTER_KEY is not set: personal data would be sealed under a key kept in the \
                 database itself. Set it (base64 of 32 bytes, kept outside the database), or run \
                 with ANJIA_MODE=development on a developer's machine"
            );
        } else {
            if !master_key_given {
                tracing::warn!("DEVELOPMENT MODE: personal data is sealed under a development key kept in the database; never use this with real people's data (set ANJIA_MASTER_KEY)");
            }
            if self.payment_providers.sandbox {
                tracing::warn!(
                    "DEVELOPMENT MODE: the payment sandbox confirms payments that no provider took"
                );
            }
        }
        Ok(())
    }
}

/// Settings read from the environment.
pub trait FromEnvironment: Sized {
    fn from_environment(env: &Environment) -> anyhow::Result<Self>;
}

#[cfg(test)]
mod tests {
    use application::settings::DispatchSettings;
    use chrono::Duration;

    use super::*;

    /// Every name this module reads is declared, and every declared name is read somewhere.
    #[test]
    fn every_setting_read_is_declared_and_every_declared_one_is_read() {
        let readers = include_str!("config/readers.rs");
        let mut read = std::collections::BTreeSet::new();
        for piece in readers.split('"').skip(1).step_by(2) {
            if piece.starts_with("ANJIA_")
                && piece
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                read.insert(piece);
            }
        }
        for setting in SETTINGS {
            assert!(
                read.contains(setting.name),
                "{} is declared but never read",
                setting.name
            );
        }
        let declared: std::collections::BTreeSet<_> =
            SETTINGS.iter().map(|setting| setting.name).collect();
        for name in read {
            assert!(declared.contains(name), "{name} is read but not declared");
        }
    }

    #[test]
    fn the_list_of_settings_shows_values_but_never_a_secret() {
        let env = Environment::from_pairs([
            ("ANJIA_HOLD_MINUTES", "20"),
            ("ANJIA_METRICS_TOKEN", "scrape-secret"),
        ]);
        let lines = env.describe();
        assert_eq!(lines.len(), SETTINGS.len());
        let line = |name: &str| {
            lines
                .iter()
                .find(|line| line.starts_with(&format!("{name} ")))
                .cloned()
                .unwrap_or_default()
        };
        assert!(line("ANJIA_HOLD_MINUTES").contains("  20  ("));
        assert!(line("ANJIA_METRICS_TOKEN").contains("<set>"));
        assert!(!lines.iter().any(|line| line.contains("scrape-secret")));
        assert!(line("ANJIA_MODE").contains("  -  ("));
    }

    #[test]
    fn blank_settings_are_unset_and_values_are_trimmed() {
        let env = Environment::from_pairs([("ANJIA_HOLD_MINUTES", " 20 "), ("ANJIA_MODE", "  ")]);
        assert_eq!(env.get("ANJIA_HOLD_MINUTES").as_deref(), Some("20"));
        assert_eq!(env.get("ANJIA_MODE"), None);
        let dispatch = DispatchSettings::from_environment(&env).expect("dispatch settings");
        assert_eq!(dispatch.hold, Duration::minutes(20));
        assert!(
            DispatchSettings::from_environment(&Environment::from_pairs([(
                "ANJIA_HOLD_MINUTES",
                "soon"
            )]))
            .is_err()
        );
    }
}
