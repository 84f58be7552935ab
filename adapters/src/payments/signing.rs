//! RSA keys for the payment providers' signatures (SHA256withRSA, PKCS#1 v1.5).
//!
//! `ring` does every signature and check: its RSA is constant-time, which matters for the
//! merchant's long-lived private keys. The `rsa` crate only reads the key formats providers hand
//! out (PKCS#8 or PKCS#1, PEM or bare base64 as the Alipay console shows them) and never
//! touches a private exponent in arithmetic.

use anyhow::Context;
use base64::Engine;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey};
use rsa::traits::PublicKeyParts;

/// A merchant's private key, for signing requests.
pub struct SigningKey {
    pair: ring::rsa::KeyPair,
    random: ring::rand::SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("SigningKey(…)")
    }
}

impl SigningKey {
    /// Reads a PKCS#8 or PKCS#1 private key, as PEM or as bare base64 DER.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let text = text.trim();
        let key = if text.starts_with("-----BEGIN") {
            rsa::RsaPrivateKey::from_pkcs8_pem(text)
                .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(text))
                .map_err(|_| anyhow::anyhow!("not an RSA private key in PEM"))?
        } else {
            let der = bare_base64(text)?;
            rsa::RsaPrivateKey::from_pkcs8_der(&der)
                .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_der(&der))
                .map_err(|_| anyhow::anyhow!("not an RSA private key in base64 DER"))?
        };
        let pkcs8 = key
            .to_pkcs8_der()
            .map_err(|error| anyhow::anyhow!("re-encoding the private key: {error}"))?;
        let pair = ring::rsa::KeyPair::from_pkcs8(pkcs8.as_bytes())
            .map_err(|error| anyhow::anyhow!("the private key was refused: {error}"))?;
        Ok(SigningKey {
            pair,
            random: ring::rand::SystemRandom::new(),
        })
    }

    /// SHA256withRSA over `message`, base64.
    pub fn sign(&self, message: &[u8]) -> String {
        let mut signature = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &self.random,
                message,
                &mut signature,
            )
            .expect("signing with a checked key into a buffer of the modulus length");
        base64::engine::general_purpose::STANDARD.encode(signature)
    }
}

/// A provider's public key, for checking what it signed.
#[derive(Debug, Clone)]
pub struct VerifyingKey {
    components: ring::signature::RsaPublicKeyComponents<Vec<u8>>,
}

impl VerifyingKey {
    /// Reads an X.509 SubjectPublicKeyInfo or PKCS#1 public key, as PEM or bare base64 DER.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let text = text.trim();
        let key = if text.starts_with("-----BEGIN") {
            rsa::RsaPublicKey::from_public_key_pem(text)
                .or_else(|_| rsa::RsaPublicKey::from_pkcs1_pem(text))
                .map_err(|_| anyhow::anyhow!("not an RSA public key in PEM"))?
        } else {
            let der = bare_base64(text)?;
            rsa::RsaPublicKey::from_public_key_der(&der)
                .or_else(|_| rsa::RsaPublicKey::from_pkcs1_der(&der))
                .map_err(|_| anyhow::anyhow!("not an RSA public key in base64 DER"))?
        };
        Ok(VerifyingKey {
            components: ring::signature::RsaPublicKeyComponents {
                n: key.n().to_bytes_be(),
                e: key.e().to_bytes_be(),
            },
        })
    }

    /// Whether `signature` (base64) is SHA256withRSA over `message` by this key's owner.
    pub fn verify(&self, message: &[u8], signature: &str) -> bool {
        let Ok(signature) =
            base64::engine::general_purpose::STANDARD.decode(signature.trim().as_bytes())
        else {
            return false;
        };
        self.components
            .verify(
                &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                message,
                &signature,
            )
            .is_ok()
    }
}

fn bare_base64(text: &str) -> anyhow::Result<Vec<u8>> {
    let compact: String = text.split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .context("a key is neither PEM nor base64")
}

/// A key setting's text: the key itself (PEM or base64), or the path of a file holding it.
pub fn key_text(setting: &str) -> anyhow::Result<String> {
    let setting = setting.trim();
    if setting.starts_with("-----BEGIN") || !std::path::Path::new(setting).is_file() {
        return Ok(setting.to_owned());
    }
    std::fs::read_to_string(setting).with_context(|| format!("reading the key file {setting}"))
}
