//! The application's ports made real, each built from its settings: the payment providers
//! (Alipay, WeChat Pay, UnionPay, the sandbox) and their RSA keys, e-mail over SMTP, SMS through
//! an HTTP gateway, the development outbox that stands in for both, the background-check
//! provider over HTTP, the sandbox bank, and WeChat sign-in.

pub mod background;
pub mod bank;
pub mod notify;
pub mod payments;
pub mod wechat_sign_in;
