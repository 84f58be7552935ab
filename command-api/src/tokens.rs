//! Signed bearer tokens. Access tokens are short-lived and signed with HMAC-SHA256 under a key
//! every server process reads from the database, so any process can check any token and no
//! session store is hit.

use std::time::Duration;

use application::secrets::server_secret;
use base64::Engine;
use chrono::{DateTime, Utc};
use domain::{Actor, Role};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

/// How long an access token is valid. Short, because refresh tokens renew it.
pub const ACCESS_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);

/// The signing key for access tokens.
#[derive(Clone)]
pub struct TokenKey(Vec<u8>);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("TokenKey(<secret>)")
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    role: Role,
    /// The session the token belongs to; revoking the session revokes the token.
    sid: Uuid,
    exp: i64,
}

/// What a valid signature vouches for; the session must still be checked for revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub actor: Actor,
    pub session_id: Uuid,
    /// When the access token stops being valid.
    pub expires_at: DateTime<Utc>,
}

impl TokenKey {
    /// Reads the shared key, creating it on first start. Concurrent first starts agree on one.
    pub async fn load_or_create(pool: &sqlx::PgPool) -> anyhow::Result<Self> {
        Ok(TokenKey(server_secret(pool, "access_token_key").await?))
    }

    /// A keyed hash for one-time codes, separated from token signatures by its label.
    pub fn code_mac(&self, parts: &[&str]) -> Hmac<Sha256> {
        let mut mac = self.mac();
        mac.update(b"one-time-code");
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length")
    }

    pub fn issue(
        &self,
        actor: Actor,
        session_id: Uuid,
        now: DateTime<Utc>,
    ) -> (String, DateTime<Utc>) {
        let expires_at = now + ACCESS_TOKEN_TTL;
        let claims = Claims {
            sub: actor.id,
            role: actor.role,
            sid: session_id,
            exp: expires_at.timestamp(),
        };
        let encoder = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = encoder.encode(serde_json::to_vec(&claims).expect("claims serialise"));
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        let signature = encoder.encode(mac.finalize().into_bytes());
        (format!("{payload}.{signature}"), expires_at)
    }

    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Option<Verified> {
        let decoder = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (payload, signature) = token.split_once('.')?;
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        mac.verify_slice(&decoder.decode(signature).ok()?).ok()?;
        let claims: Claims = serde_json::from_slice(&decoder.decode(payload).ok()?).ok()?;
        if claims.exp <= now.timestamp() || claims.role == Role::System {
            return None;
        }
        Some(Verified {
            actor: Actor {
                id: claims.sub,
                role: claims.role,
            },
            session_id: claims.sid,
            expires_at: DateTime::from_timestamp(claims.exp, 0)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TokenKey {
        TokenKey(vec![7; 32])
    }

    #[test]
    fn a_token_round_trips_until_it_expires() {
        let actor = Actor {
            id: Uuid::new_v4(),
            role: Role::Worker,
        };
        let now = Utc::now();
        let session_id = Uuid::new_v4();
        let (token, expires_at) = key().issue(actor, session_id, now);
        let verified = key().verify(&token, now).expect("verified");
        assert_eq!((verified.actor, verified.session_id), (actor, session_id));
        assert_eq!(verified.expires_at.timestamp(), expires_at.timestamp());
        assert_eq!(key().verify(&token, expires_at), None);
    }

    #[test]
    fn a_tampered_or_foreign_token_is_refused() {
        let actor = Actor {
            id: Uuid::new_v4(),
            role: Role::Customer,
        };
        let now = Utc::now();
        let session_id = Uuid::new_v4();
        let (token, _) = key().issue(actor, session_id, now);
        let (payload, signature) = token.split_once('.').expect("two parts");
        let admin_claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
            r#"{{"sub":"{}","role":"admin","sid":"{session_id}","exp":{}}}"#,
            actor.id,
            now.timestamp() + 60
        ));
        assert_eq!(
            key().verify(&format!("{admin_claims}.{signature}"), now),
            None
        );
        assert_eq!(TokenKey(vec![8; 32]).verify(&token, now), None);
        assert_eq!(key().verify(payload, now), None);
    }
}
