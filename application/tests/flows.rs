//! The application's flows without HTTP: each against a real PostgreSQL (started by the test),
//! with in-memory stand-ins for the ports that leave the platform (a payment provider, e-mail,
//! SMS, the bank, background checks).

use std::sync::{Arc, Mutex, OnceLock};

use application::background::BackgroundCheck;
use application::commands::CommandContext;
use application::notify::{EmailSender, Notifier, SmsSender};
use application::payments::Handled;
use application::ports::{
    BankTransfer, Checkout, Headers, Notification, PaymentProvider, Providers, StatementLine,
    Transfer,
};
use application::services::{Ports, Services};
use chrono::{Duration, Utc};
use domain::customer::Customer;
use domain::onboarding::{BackgroundCheckOutcome, IdCardNumber};
use domain::order::{Booking, Order, OrderStatus};
use domain::payment::{Payment, PaymentCommand, PaymentMethod, PaymentStatus, CURRENCY};
use domain::values::Address;
use domain::{Actor, Fen, Role, ServiceCode};
use sqlx::PgPool;
use uuid::Uuid;

/// Messages the e-mail and SMS ports were asked to send: (to, text). When told the
/// database, it also notes, as each message goes out, how many of the database's
/// transactions hold a transaction id: a gateway is slow, and one held through it holds back
/// every projector.
#[derive(Default)]
struct Outbox {
    sent: Mutex<Vec<(String, String)>>,
    watched: OnceLock<PgPool>,
    open_while_sending: Mutex<Vec<i64>>,
    /// A statement the watched database runs while the first message goes out: what other
    /// runs or requests do meanwhile.
    during_first_send: Mutex<Option<String>>,
}

impl Outbox {
    fn sent(&self) -> Vec<(String, String)> {
        self.sent.lock().expect("outbox lock").clone()
    }

    async fn take(&self, to: &str, text: &str) {
        if let Some(pool) = self.watched.get() {
            let meanwhile = self.during_first_send.lock().expect("outbox lock").take();
            if let Some(statement) = meanwhile {
                sqlx::query(&statement)
                    .execute(pool)
                    .await
                    .expect("what happens meanwhile");
            }
            let open: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity
                  WHERE datname = current_database() AND backend_xid IS NOT NULL
                    AND pid <> pg_backend_pid()",
            )
            .fetch_one(pool)
            .await
            .expect("the transactions in progress");
            self.open_while_sending
                .lock()
                .expect("outbox lock")
                .push(open);
        }
        self.sent
            .lock()
            .expect("outbox lock")
            .push((to.to_owned(), text.to_owned()));
    }
}

#[async_trait::async_trait]
impl EmailSender for Outbox {
    async fn send(&self, to: &str, subject: &str, _body: &str) -> anyhow::Result<()> {
        self.take(to, subject).await;
        Ok(())
    }
}

#[async_trait::async_trait]
impl SmsSender for Outbox {
    async fn send(&self, phone: &str, text: &str) -> anyhow::Result<()> {
        self.take(phone, text).await;
        Ok(())
    }
}

struct NobodyListed;

#[async_trait::async_trait]
impl BackgroundCheck for NobodyListed {
    async fn check(
        &self,
        _name: &str,
        _id_number: &IdCardNumber,
    ) -> anyhow::Result<BackgroundCheckOutcome> {
        Ok(BackgroundCheckOutcome {
            source: "memory".to_owned(),
            hits: Vec::new(),
        })
    }
}

struct RefusingBank;

#[async_trait::async_trait]
impl BankTransfer for RefusingBank {
    async fn pay(
        &self,
        withdrawal_id: Uuid,
        _number: &str,
        _masked: &str,
        _holder: &str,
        _amount: Fen,
    ) -> anyhow::Result<Transfer> {
        Ok(Transfer {
            succeeded: false,
            reference: format!("REFUSED{}", withdrawal_id.simple()),
        })
    }
}

/// A payment provider that signs by a header saying `good`.
struct MemoryProvider;

const SIGNATURE: &str = "x-memory-signature";

#[async_trait::async_trait]
impl PaymentProvider for MemoryProvider {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn create(
        &self,
        payment_id: Uuid,
        _amount: Fen,
        _method: PaymentMethod,
    ) -> anyhow::Result<Checkout> {
        Ok(Checkout {
            provider: "memory".to_owned(),
            provider_transaction: format!("MEM{}", payment_id.simple()),
            pay_url: "https://memory.invalid/pay".to_owned(),
        })
    }

    fn verify(&self, headers: &Headers, body: &[u8]) -> Result<Notification, String> {
        if headers.get(SIGNATURE) != Some("good") {
            return Err("bad signature".to_owned());
        }
        serde_json::from_slice(body).map_err(|error| format!("unreadable body: {error}"))
    }

    async fn statement(
        &self,
        _day: chrono::NaiveDate,
    ) -> anyhow::Result<Option<Vec<StatementLine>>> {
        Ok(None)
    }

    async fn query(&self, _payment_id: Uuid) -> anyhow::Result<Option<Notification>> {
        Ok(None)
    }

    async fn refund(
        &self,
        _payment_id: Uuid,
        refund_id: Uuid,
        _amount: Fen,
        _original: Fen,
    ) -> anyhow::Result<Option<String>> {
        Ok(Some(format!("MEMR{}", refund_id.simple())))
    }
}

fn cluster() -> &'static localpg::EphemeralCluster {
    static CLUSTER: OnceLock<localpg::EphemeralCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| localpg::start_ephemeral().expect("starting the test PostgreSQL"))
}

/// A fresh, migrated database with its views, and the services over it.
async fn services(outbox: Arc<Outbox>) -> Services {
    let cluster = cluster();
    let name = format!("flows_{}", Uuid::new_v4().simple());
    let admin = PgPool::connect(&cluster.url("postgres"))
        .await
        .expect("connecting to the test cluster");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .expect("creating a database");
    admin.close().await;
    let pool = PgPool::connect(&cluster.url(&name))
        .await
        .expect("connecting");
    migrations::run(&pool).await.expect("migrating");
    let vault = vault::Vault::load(pool.clone(), None)
        .await
        .expect("the vault");
    projections::ensure_all(&pool, &projections::all_projections(&vault))
        .await
        .expect("the views");
    let provider: Arc<dyn PaymentProvider> = Arc::new(MemoryProvider);
    Services::new(
        pool,
        Ports {
            vault,
            notifier: Notifier {
                email: outbox.clone(),
                sms: outbox,
            },
            background: Arc::new(NobodyListed),
            bank: Arc::new(RefusingBank),
            payment_providers: Providers {
                sandbox: None,
                sandbox_control: None,
                alipay: Some(provider),
                wechat_pay: None,
                unionpay: None,
            },
            dispatch: Default::default(),
            money: Default::default(),
            reviews: Default::default(),
            writers: application::services::default_writers(),
        },
    )
}

fn customer() -> Actor {
    Actor {
        id: Uuid::now_v7(),
        role: Role::Customer,
    }
}

fn as_actor(actor: Actor) -> CommandContext {
    CommandContext {
        actor: Some(actor),
        ..CommandContext::system()
    }
}

/// Two hours of daily cleaning tomorrow, at an address sealed under the customer's key.
async fn booking(services: &Services, customer_id: Uuid) -> Booking {
    let sealed = services
        .vault
        .seal_all(customer_id, &["人民广场 1 号", "王女士", "13800138000"])
        .await
        .expect("sealing");
    Booking {
        customer_id,
        service: ServiceCode::DailyCleaning,
        unit_price: Fen::new(5_000).expect("fen"),
        quantity: 2,
        scheduled_start: Utc::now() + Duration::days(1),
        duration_minutes: 120,
        address: Address {
            city: "上海".to_owned(),
            district: "黄浦区".to_owned(),
            detail: sealed[0].clone(),
            contact_name: sealed[1].clone(),
            contact_phone: sealed[2].clone(),
            location: None,
        },
        note: None,
        preferred_worker: None,
    }
}

#[tokio::test]
async fn a_verified_notification_captures_once_and_opens_the_paid_order_for_dispatch_and_a_forged_one_changes_nothing(
) {
    let services = services(Arc::default()).await;
    let customer = customer();
    let context = as_actor(customer);
    let order_id = Uuid::now_v7();
    let placed = application::orders::place(
        &services,
        &Customer::default(),
        order_id,
        booking(&services, customer.id).await,
        None,
        &context,
    )
    .await
    .expect("placed");
    assert_eq!(placed.state.status, OrderStatus::AwaitingPayment);
    let payment_id = Uuid::now_v7();
    let amount = placed.state.total.expect("a total");
    services
        .payments
        .execute(
            payment_id,
            PaymentCommand::Create {
                payment_id,
                order_id,
                customer_id: customer.id,
                amount,
                method: PaymentMethod::Alipay,
                provider: "memory".to_owned(),
                now: Utc::now(),
            },
            &context,
        )
        .await
        .expect("a payment");
    let body = serde_json::to_vec(&Notification {
        notification_id: "n-1".to_owned(),
        payment_id,
        provider_transaction: format!("MEM{}", payment_id.simple()),
        amount: amount.get(),
        currency: CURRENCY.to_owned(),
        status: "success".to_owned(),
        occurred_at: Utc::now(),
    })
    .expect("json");
    let system = CommandContext::system();
    let forged: Headers = [(SIGNATURE, "forged")].into_iter().collect();
    let signed: Headers = [(SIGNATURE, "good")].into_iter().collect();

    let outcome =
        application::payments::handle_notification(&services, "memory", &forged, &body, &system)
            .await
            .expect("handled");
    assert_eq!(outcome, Handled::Rejected("bad signature".to_owned()));
    let (payment, _): (Payment, usize) = services.payments.load(payment_id).await.expect("load");
    assert_eq!(payment.status, PaymentStatus::Pending);

    for expected in [Handled::Accepted, Handled::Duplicate] {
        let outcome = application::payments::handle_notification(
            &services, "memory", &signed, &body, &system,
        )
        .await
        .expect("handled");
        assert_eq!(outcome, expected);
    }
    let (payment, _): (Payment, usize) = services.payments.load(payment_id).await.expect("load");
    assert_eq!(payment.status, PaymentStatus::Captured);
    assert_eq!(payment.in_escrow, amount.get());
    let (order, _): (Order, usize) = services.orders.load(order_id).await.expect("load");
    // Paid, and opened for dispatch at once (daily cleaning goes to the grab hall).
    assert_eq!(order.status, OrderStatus::Dispatching);
    let logged: Vec<String> = sqlx::query_scalar(
        "SELECT outcome FROM payment_notifications WHERE provider = 'memory' ORDER BY received_at, log_id",
    )
    .fetch_all(&services.pool)
    .await
    .expect("the notification log");
    assert_eq!(logged, ["rejected", "accepted", "duplicate"]);
}

#[tokio::test]
async fn a_suspended_customer_places_nothing_and_a_cancelled_unpaid_order_refunds_nothing() {
    let services = services(Arc::default()).await;
    let customer = customer();
    let context = as_actor(customer);
    let suspended = Customer {
        suspended: true,
        ..Customer::default()
    };
    let order_id = Uuid::now_v7();
    let refused = application::orders::place(
        &services,
        &suspended,
        order_id,
        booking(&services, customer.id).await,
        None,
        &context,
    )
    .await;
    assert!(matches!(
        refused,
        Err(application::Error::Refused {
            kind: application::error::Refusal::Forbidden,
            ..
        })
    ));
    let (order, version): (Order, usize) = services.orders.load(order_id).await.expect("load");
    assert_eq!((order.status, version), (OrderStatus::New, 0));

    application::orders::place(
        &services,
        &Customer::default(),
        order_id,
        booking(&services, customer.id).await,
        None,
        &context,
    )
    .await
    .expect("placed");
    let cancelled = application::orders::cancel(
        &services,
        customer,
        order_id,
        "计划有变 / plans changed".to_owned(),
        false,
        &context,
    )
    .await
    .expect("cancelled");
    assert_eq!(cancelled.state.status, OrderStatus::Cancelled);
    let again = application::orders::cancel(
        &services,
        customer,
        order_id,
        "再次取消 / again".to_owned(),
        false,
        &context,
    )
    .await;
    assert!(matches!(
        again,
        Err(application::Error::Refused {
            kind: application::error::Refusal::IllegalState,
            ..
        })
    ));
}

/// A customer who signs in with `login`.
async fn customer_with_login(services: &Services, login: &str) -> Uuid {
    let user_id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO credentials (user_id, login, role, password_hash) VALUES ($1, $2, 'customer', 'x')",
    )
    .bind(user_id)
    .bind(login)
    .execute(&services.pool)
    .await
    .expect("a login");
    user_id
}

/// A "service soon" reminder to `recipient`, due at `due`.
async fn reminder(services: &Services, key: &str, recipient: Uuid, due: chrono::DateTime<Utc>) {
    sqlx::query(
        "INSERT INTO reminders (reminder_key, order_id, kind, recipient_id, recipient_role, due_at, title, body)
         VALUES ($1, $2, 'service_soon', $3, 'customer', $4, '服务即将开始 / Service soon', '明天 9:00 / tomorrow 9:00')",
    )
    .bind(key)
    .bind(Uuid::now_v7())
    .bind(recipient)
    .bind(due)
    .execute(&services.pool)
    .await
    .expect("a reminder");
}

#[tokio::test]
async fn due_reminders_reach_the_inbox_and_each_login_once_by_sms_or_mail() {
    let outbox = Arc::new(Outbox::default());
    let services = services(outbox.clone()).await;
    let _ = outbox.watched.set(services.pool.clone());
    let by_phone = customer_with_login(&services, "13800138000").await;
    let by_mail = customer_with_login(&services, "wang@example.com").await;
    for (key, recipient, due) in [
        ("due-phone", by_phone, Utc::now() - Duration::minutes(1)),
        ("due-mail", by_mail, Utc::now() - Duration::minutes(1)),
        ("later", by_phone, Utc::now() + Duration::hours(1)),
    ] {
        reminder(&services, key, recipient, due).await;
    }
    let delivered = application::reminders::deliver_due(&services, 100)
        .await
        .expect("delivered");
    assert_eq!(
        (delivered.reminders, delivered.sms, delivered.email),
        (2, 1, 1)
    );
    let again = application::reminders::deliver_due(&services, 100)
        .await
        .expect("delivered");
    assert_eq!(again.reminders, 0);
    let mut recipients: Vec<String> = outbox.sent().into_iter().map(|(to, _)| to).collect();
    recipients.sort();
    assert_eq!(recipients, ["13800138000", "wang@example.com"]);
    // Both went out after the inbox's transaction committed, with none held open.
    assert_eq!(
        *outbox.open_while_sending.lock().expect("outbox lock"),
        [0, 0]
    );
    let inbox: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications")
        .fetch_one(&services.pool)
        .await
        .expect("the inbox");
    assert_eq!(inbox, 2);
}

#[tokio::test]
async fn a_reminder_whose_run_stopped_after_the_inbox_is_sent_again_once_its_claim_runs_out_and_not_put_in_the_inbox_twice(
) {
    let outbox = Arc::new(Outbox::default());
    let services = services(outbox.clone()).await;
    let recipient = customer_with_login(&services, "li@example.com").await;
    // A run that put it in the inbox and stopped before sending: its claim still holds, then
    // runs out.
    reminder(
        &services,
        "stopped",
        recipient,
        Utc::now() - Duration::minutes(5),
    )
    .await;
    sqlx::query(
        "UPDATE reminders SET claimed_until = now() + interval '1 minute',
                              in_inbox_at = now() - interval '4 minutes'",
    )
    .execute(&services.pool)
    .await
    .expect("the stopped run's claim");
    let held = application::reminders::deliver_due(&services, 100)
        .await
        .expect("a run");
    assert_eq!(held.reminders, 0, "another run's claim is left alone");
    sqlx::query("UPDATE reminders SET claimed_until = now() - interval '1 second'")
        .execute(&services.pool)
        .await
        .expect("the claim runs out");
    let delivered = application::reminders::deliver_due(&services, 100)
        .await
        .expect("a run");
    assert_eq!((delivered.reminders, delivered.email), (1, 1));
    assert_eq!(outbox.sent().len(), 1);
    let inbox: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications")
        .fetch_one(&services.pool)
        .await
        .expect("the inbox");
    assert_eq!(
        inbox, 0,
        "the stopped run's inbox message was its; none is added"
    );
    let (delivered_at, claimed_until): (
        Option<chrono::DateTime<Utc>>,
        Option<chrono::DateTime<Utc>>,
    ) = sqlx::query_as("SELECT delivered_at, claimed_until FROM reminders")
        .fetch_one(&services.pool)
        .await
        .expect("the reminder");
    assert!(delivered_at.is_some() && claimed_until.is_none());
}

#[tokio::test]
async fn a_run_sends_no_reminder_another_run_took_over_or_that_was_cancelled_while_it_sent() {
    let outbox = Arc::new(Outbox::default());
    let services = services(outbox.clone()).await;
    let _ = outbox.watched.set(services.pool.clone());
    let recipient = customer_with_login(&services, "zhao@example.com").await;
    for (key, minutes_ago) in [("first", 3), ("taken-over", 2), ("cancelled", 1)] {
        reminder(
            &services,
            key,
            recipient,
            Utc::now() - Duration::minutes(minutes_ago),
        )
        .await;
    }
    // While the first goes out (slowly), another run claims the second, whose claim had run
    // out, and the third is cancelled.
    *outbox.during_first_send.lock().expect("outbox lock") = Some(
        "UPDATE reminders SET claim_id = CASE reminder_key WHEN 'taken-over' THEN gen_random_uuid() ELSE claim_id END,
                cancelled_at = CASE reminder_key WHEN 'cancelled' THEN now() END
          WHERE reminder_key IN ('taken-over', 'cancelled')"
            .to_owned(),
    );
    let delivered = application::reminders::deliver_due(&services, 100)
        .await
        .expect("a run");
    assert_eq!((delivered.reminders, delivered.email), (1, 1));
    assert_eq!(outbox.sent().len(), 1);
    let states: Vec<(String, bool)> = sqlx::query_as(
        "SELECT reminder_key, delivered_at IS NOT NULL FROM reminders ORDER BY due_at",
    )
    .fetch_all(&services.pool)
    .await
    .expect("the reminders");
    assert_eq!(
        states,
        [
            ("first".to_owned(), true),
            ("taken-over".to_owned(), false),
            ("cancelled".to_owned(), false)
        ]
    );
}
