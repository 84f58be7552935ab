//! The payment providers: Alipay, WeChat Pay, UnionPay's gateway for bank cards, and the
//! in-process sandbox, each built from its settings; their RSA keys in `signing`.

pub mod alipay;
pub mod sandbox;
pub mod signing;
pub mod unionpay;
pub mod wechat_pay;

use std::sync::Arc;

use application::ports::{PaymentProvider, Providers, SandboxControl};
use sqlx::PgPool;

use self::sandbox::SandboxProvider;

/// Which real providers are configured, and whether the sandbox takes the rest.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    pub alipay: Option<alipay::AlipaySettings>,
    pub wechat_pay: Option<wechat_pay::WechatPaySettings>,
    /// The bank-card acquirer (UnionPay's online gateway), when configured.
    pub unionpay: Option<unionpay::UnionPaySettings>,
    /// `ANJIA_PAYMENT_SANDBOX`: `on` lets the in-process sandbox take every method without a
    /// real provider (development mode only, where it is the default); `off` refuses those
    /// methods, so no payment can confirm itself. The sandbox never takes a method a real
    /// provider is configured for.
    pub sandbox: bool,
}

impl Default for ProviderSettings {
    fn default() -> Self {
        ProviderSettings {
            alipay: None,
            wechat_pay: None,
            unionpay: None,
            sandbox: true,
        }
    }
}

/// The sandbox (when on), plus every real provider configured. Notifications come back to
/// `{base_url}/api/v1/payments/notifications/{provider}`.
pub fn providers(
    sandbox: SandboxProvider,
    settings: &ProviderSettings,
    base_url: &str,
    pool: &PgPool,
) -> anyhow::Result<Providers> {
    let notify_url = |name: &str| format!("{base_url}/api/v1/payments/notifications/{name}");
    let alipay = match &settings.alipay {
        Some(alipay) => Some(Arc::new(alipay::AlipayProvider::new(
            alipay.clone(),
            notify_url("alipay"),
        )?) as Arc<dyn PaymentProvider>),
        None => None,
    };
    let wechat_pay = match &settings.wechat_pay {
        Some(wechat) => Some(Arc::new(wechat_pay::WechatPayProvider::new(
            wechat.clone(),
            notify_url("wechat_pay"),
        )?) as Arc<dyn PaymentProvider>),
        None => None,
    };
    let unionpay = match &settings.unionpay {
        Some(unionpay) => Some(Arc::new(unionpay::UnionPayProvider::new(
            unionpay.clone(),
            notify_url("unionpay"),
            pool.clone(),
        )?) as Arc<dyn PaymentProvider>),
        None => None,
    };
    let sandbox = settings.sandbox.then(|| Arc::new(sandbox));
    Ok(Providers {
        sandbox_control: sandbox
            .clone()
            .map(|sandbox| sandbox as Arc<dyn SandboxControl>),
        sandbox: sandbox.map(|sandbox| sandbox as Arc<dyn PaymentProvider>),
        alipay,
        wechat_pay,
        unionpay,
    })
}
