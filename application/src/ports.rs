//! The ports to the world outside that the services hold: the payment providers (by name) and
//! the bank. (E-mail and SMS are `notify`'s, background checks `background`'s, sign-in
//! providers `identity`'s.) The adapters implement them; the use cases only call them.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::payment::PaymentMethod;
use domain::Fen;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How the sandbox should behave for one payment: a script for the test double, told through
/// `SandboxControl` before the payment is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxBehaviour {
    /// Notify success once.
    #[default]
    Succeed,
    /// Notify failure.
    Fail,
    /// Never notify: the query job has to ask.
    Timeout,
    /// Notify success twice.
    NotifyTwice,
    /// Notify success once; the first refund asked for then fails.
    RefundFailsOnce,
}

impl SandboxBehaviour {
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxBehaviour::Succeed => "succeed",
            SandboxBehaviour::Fail => "fail",
            SandboxBehaviour::Timeout => "timeout",
            SandboxBehaviour::NotifyTwice => "notify_twice",
            SandboxBehaviour::RefundFailsOnce => "refund_fails_once",
        }
    }
}

/// What a provider hands the customer's app to complete the payment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkout {
    pub provider: String,
    /// The provider's transaction number for this payment.
    pub provider_transaction: String,
    /// Where the app sends the customer (a cashier page or a deep link).
    pub pay_url: String,
}

/// A notification that passed the provider's signature check, before our own checks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notification {
    pub notification_id: String,
    pub payment_id: Uuid,
    pub provider_transaction: String,
    /// Fen.
    pub amount: i64,
    pub currency: String,
    /// `success` or `failed`.
    pub status: String,
    pub occurred_at: DateTime<Utc>,
}

/// One line of a provider's statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementLine {
    /// `payment` or `refund`.
    pub kind: String,
    /// The provider's transaction or refund number.
    pub reference: String,
    /// Fen.
    pub amount: i64,
}

/// A notification's HTTP headers as plain text, names in lower case: the port knows no HTTP
/// library.
#[derive(Debug, Clone, Default)]
pub struct Headers(BTreeMap<String, String>);

impl Headers {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    pub fn insert(&mut self, name: &str, value: impl Into<String>) {
        self.0.insert(name.to_ascii_lowercase(), value.into());
    }
}

impl<N: AsRef<str>, V: Into<String>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(pairs: I) -> Self {
        let mut headers = Headers::default();
        for (name, value) in pairs {
            headers.insert(name.as_ref(), value);
        }
        headers
    }
}

/// The sandbox's own control: how it is to answer a payment about to be created. Real
/// providers have nothing like it; only the sandbox implements it.
#[async_trait::async_trait]
pub trait SandboxControl: Send + Sync {
    async fn script(&self, payment_id: Uuid, behaviour: SandboxBehaviour) -> anyhow::Result<()>;
}

/// A payment provider as the platform uses it.
#[async_trait::async_trait]
pub trait PaymentProvider: Send + Sync {
    fn name(&self) -> &'static str;

    /// Opens a payment with the provider.
    async fn create(
        &self,
        payment_id: Uuid,
        amount: Fen,
        method: PaymentMethod,
    ) -> anyhow::Result<Checkout>;

    /// Checks a notification's signature and reads it. `Err` carries why it was refused.
    fn verify(&self, headers: &Headers, body: &[u8]) -> Result<Notification, String>;

    /// The provider's statement of one local day: every payment it collected and refund it paid.
    /// `None` when statements are not fetched from this provider.
    async fn statement(&self, day: chrono::NaiveDate)
        -> anyhow::Result<Option<Vec<StatementLine>>>;

    /// The plain-text body a provider wants for an accepted notification (Alipay wants
    /// `success`); `None` answers with JSON.
    fn acknowledgement(&self) -> Option<&'static str> {
        None
    }

    /// Asks the provider what became of a payment whose notification never came. `None` while
    /// the customer has not paid.
    async fn query(&self, payment_id: Uuid) -> anyhow::Result<Option<Notification>>;

    /// Pays `amount` back to the customer through the original payment of `original`; returns
    /// the provider's refund number once the money is on its way back, `None` while the
    /// provider is still processing it (the money job asks again). Asking again with the same
    /// `refund_id` pays nothing more.
    async fn refund(
        &self,
        payment_id: Uuid,
        refund_id: Uuid,
        amount: Fen,
        original: Fen,
    ) -> anyhow::Result<Option<String>>;
}

/// The providers by name.
#[derive(Clone)]
pub struct Providers {
    /// The in-process sandbox, when it is on (development mode only).
    pub sandbox: Option<Arc<dyn PaymentProvider>>,
    /// Scripts the sandbox's next answers, when it is on.
    pub sandbox_control: Option<Arc<dyn SandboxControl>>,
    pub alipay: Option<Arc<dyn PaymentProvider>>,
    pub wechat_pay: Option<Arc<dyn PaymentProvider>>,
    pub unionpay: Option<Arc<dyn PaymentProvider>>,
}

impl Providers {
    /// Tells the sandbox how to answer `payment_id` when the sandbox is the one taking it; a
    /// payment a real provider takes is never scripted.
    pub async fn script(
        &self,
        taking: &dyn PaymentProvider,
        payment_id: Uuid,
        behaviour: SandboxBehaviour,
    ) -> anyhow::Result<()> {
        match (&self.sandbox, &self.sandbox_control) {
            (Some(sandbox), Some(control)) if sandbox.name() == taking.name() => {
                control.script(payment_id, behaviour).await
            }
            _ => Ok(()),
        }
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn PaymentProvider>> {
        self.all()
            .into_iter()
            .find(|provider| provider.name() == name)
    }

    /// Who takes a payment by `method`: Alipay, WeChat Pay and the bank-card acquirer
    /// (UnionPay's gateway) when configured, the sandbox otherwise when it is on (development
    /// mode only); `None` when nobody does.
    pub fn for_method(&self, method: PaymentMethod) -> Option<Arc<dyn PaymentProvider>> {
        let real = match method {
            PaymentMethod::Alipay => self.alipay.clone(),
            PaymentMethod::WechatPay => self.wechat_pay.clone(),
            PaymentMethod::BankCard => self.unionpay.clone(),
        };
        real.or_else(|| self.sandbox.clone())
    }

    pub fn all(&self) -> Vec<Arc<dyn PaymentProvider>> {
        self.sandbox
            .clone()
            .into_iter()
            .chain(self.alipay.clone())
            .chain(self.wechat_pay.clone())
            .chain(self.unionpay.clone())
            .collect()
    }
}

/// The bank's answer to a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub succeeded: bool,
    pub reference: String,
}

#[async_trait::async_trait]
pub trait BankTransfer: Send + Sync {
    /// Sends `amount` to the account. Asking again for the same withdrawal returns the first
    /// answer.
    async fn pay(
        &self,
        withdrawal_id: Uuid,
        account_number: &str,
        account_masked: &str,
        holder_name: &str,
        amount: Fen,
    ) -> anyhow::Result<Transfer>;
}
