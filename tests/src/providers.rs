//! Stand-ins for Alipay's gateway and WeChat Pay's API v3, for the adapters' tests.
//!
//! They are written from the providers' documentation independently of the platform's
//! adapters: their own canonical strings, and the `rsa` crate's signing where the platform uses
//! `ring`. Each checks the platform's request signatures with the merchant's public key and
//! refuses what fails (the test then fails), answers signed with the provider's key, and sends
//! signed (for WeChat Pay also encrypted) notifications to the platform's callback, keeping
//! what it sent so a test can replay or tamper with it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use serde_json::{json, Value};
use sha2::Sha256;
use uuid::Uuid;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// An RSA key pair made for one test process.
pub struct TestKey {
    private: rsa::RsaPrivateKey,
}

impl TestKey {
    fn generate() -> Self {
        TestKey {
            private: rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("an RSA key"),
        }
    }

    /// The private key as PKCS#8 PEM.
    pub fn private_pem(&self) -> String {
        self.private
            .to_pkcs8_pem(LineEnding::LF)
            .expect("PEM")
            .to_string()
    }

    /// The public key as bare base64 SubjectPublicKeyInfo, as the Alipay console shows it.
    pub fn public_base64(&self) -> String {
        B64.encode(
            self.private
                .to_public_key()
                .to_public_key_der()
                .expect("DER")
                .as_bytes(),
        )
    }

    pub fn public_pem(&self) -> String {
        self.private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("PEM")
    }

    /// SHA256withRSA, base64.
    pub fn sign(&self, message: &[u8]) -> String {
        let key = rsa::pkcs1v15::SigningKey::<Sha256>::new(self.private.clone());
        B64.encode(key.sign(message).to_vec())
    }

    pub fn verifies(&self, message: &[u8], signature: &str) -> bool {
        let Ok(bytes) = B64.decode(signature) else {
            return false;
        };
        let Ok(signature) = rsa::pkcs1v15::Signature::try_from(bytes.as_slice()) else {
            return false;
        };
        rsa::pkcs1v15::VerifyingKey::<Sha256>::new(self.private.to_public_key())
            .verify(message, &signature)
            .is_ok()
    }
}

/// The keys of one test process, made once.
pub struct TestKeys {
    pub alipay_app: TestKey,
    pub alipay: TestKey,
    pub wechat_merchant: TestKey,
    pub wechat_platform: TestKey,
    pub unionpay_merchant: TestKey,
    pub unionpay: TestKey,
    /// Nobody's: for forgeries.
    pub stranger: TestKey,
}

pub fn keys() -> &'static TestKeys {
    static KEYS: OnceLock<TestKeys> = OnceLock::new();
    KEYS.get_or_init(|| TestKeys {
        alipay_app: TestKey::generate(),
        alipay: TestKey::generate(),
        wechat_merchant: TestKey::generate(),
        wechat_platform: TestKey::generate(),
        unionpay_merchant: TestKey::generate(),
        unionpay: TestKey::generate(),
        stranger: TestKey::generate(),
    })
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{address}")
}

/// What a stand-in got back from the platform for one notification.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub status: u16,
    pub body: String,
}

/// Posts a notification form to the platform, as the form-posting providers do.
async fn post_form(url: &str, form: &str) -> Delivery {
    let response = reqwest::Client::new()
        .post(url)
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body(form.to_owned())
        .send()
        .await
        .expect("delivering");
    Delivery {
        status: response.status().as_u16(),
        body: response.text().await.unwrap_or_default(),
    }
}

mod alipay;
mod unionpay;
mod wechat_pay;

/// What a stand-in has delivered, once it holds at least `count` deliveries (or after ten
/// seconds, whatever it holds then). A stand-in records a delivery when the platform's answer
/// reaches it, which can be after the platform's views already show what the delivery did.
pub async fn delivered<T>(read: impl Fn() -> Vec<T>, count: usize) -> Vec<T> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let sent = read();
        if sent.len() >= count || std::time::Instant::now() > deadline {
            return sent;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

pub use self::alipay::*;
pub use self::unionpay::*;
pub use self::wechat_pay::*;
