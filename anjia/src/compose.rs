//! The composition root: adapters built from their settings and wired into the application's
//! services, and the services into the HTTP state. Nothing else builds an adapter.

use std::sync::Arc;

use application::services::{Ports, Services};
use command_api::auth::{PasswordPool, TokenKey};
use command_api::state::AppState;
use command_api::warehouse::WarehouseHandle;
use sqlx::PgPool;

use crate::config::Settings;

/// The application's services: the buses, the vault, and every port made real. `base_url` is
/// where this platform is reached: payment providers send their notifications there. A tool
/// (demo data, reconciliation) takes these and nothing of HTTP.
pub async fn services(
    pool: &PgPool,
    settings: &Settings,
    vault: vault::Vault,
    base_url: &str,
) -> anyhow::Result<Services> {
    let sandbox = adapters::payments::sandbox::SandboxProvider::new(
        pool.clone(),
        adapters::payments::sandbox::sandbox_key(pool).await?,
        format!("{base_url}/api/v1/payments/notifications/sandbox"),
    );
    Ok(Services::new(
        pool.clone(),
        Ports {
            vault,
            notifier: settings.notify.build(pool)?,
            background: settings.background.build(pool)?,
            bank: Arc::new(adapters::bank::SandboxBank { pool: pool.clone() }),
            payment_providers: adapters::payments::providers(
                sandbox,
                &settings.payment_providers,
                base_url,
                pool,
            )?,
            dispatch: settings.dispatch.clone(),
            money: settings.money.clone(),
            reviews: settings.reviews.clone(),
            writers: settings
                .writers
                .unwrap_or_else(application::services::default_writers),
        },
    ))
}

/// The HTTP layer's state: the services, plus sign-in, the signaling hub, the warehouse and
/// what only the HTTP side needs.
pub async fn state(
    pool: PgPool,
    settings: &Settings,
    vault: vault::Vault,
    base_url: &str,
) -> anyhow::Result<AppState> {
    // Before any command runs, so none goes uncounted.
    command_api::metrics::install();
    let services = services(&pool, settings, vault, base_url).await?;
    Ok(AppState::new(command_api::state::Shared {
        oauth: match &settings.oauth {
            Some(wechat) => Some(Arc::new(adapters::wechat_sign_in::WechatSignIn::new(
                wechat.clone(),
            )?)),
            None => None,
        },
        signaling: signaling::Hub::start(
            pool.clone(),
            application::secrets::server_secret(&pool, "room_token_key").await?,
            settings.signaling.clone(),
        )
        .await?,
        trusted_proxies: settings.trusted_proxies.clone(),
        metrics_token: settings.metrics_token.clone(),
        // Without a setting (tests) each state gets a file of its own.
        warehouse: match &settings.warehouse.path {
            Some(path) => WarehouseHandle::new(path.clone()),
            None => WarehouseHandle::scratch(),
        }
        .with_limits(
            settings.warehouse.sql.clone(),
            settings.warehouse.sql_concurrency,
        ),
        shutdown: tokio::sync::watch::channel(false).1,
        passwords: PasswordPool::new(settings.passwords),
        staff_code_sign_in: settings.staff_code_sign_in,
        web_dir: settings.web_dir.clone(),
        ice: Arc::new(settings.ice.clone()),
        token_key: TokenKey::load_or_create(&pool).await?,
        services,
    }))
}
