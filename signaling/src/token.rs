//! Room tokens and TURN credentials.
//!
//! A room token is `base64url(claims).base64url(HMAC-SHA256(key, claims))`, the claims naming
//! one interview, one participant and their role, and an expiry a few minutes after the
//! interview's end. The signaling service admits a connection only with a valid token for its
//! room. TURN credentials follow coturn's shared-secret scheme (`use-auth-secret`): the user
//! name is `expiry:user id`, the password base64 of HMAC-SHA1 over the user name.

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

const URL_SAFE: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// What a room token grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomClaims {
    /// The interview.
    pub room: Uuid,
    /// The participant.
    pub sub: Uuid,
    /// `customer` or `worker`.
    pub role: String,
    /// Seconds since the epoch.
    pub exp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("入场凭证格式错误 / malformed room token")]
    Malformed,
    #[error("入场凭证签名无效 / the room token's signature is wrong")]
    BadSignature,
    #[error("入场凭证已过期 / the room token has expired")]
    Expired,
}

fn mac(key: &[u8], payload: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(b"anjia-room-token:");
    mac.update(payload);
    mac
}

pub fn room_token(key: &[u8], claims: &RoomClaims) -> String {
    let payload = serde_json::to_vec(claims).expect("claims serialise");
    let signature = mac(key, &payload).finalize().into_bytes();
    format!(
        "{}.{}",
        URL_SAFE.encode(&payload),
        URL_SAFE.encode(signature)
    )
}

/// Checks a token's signature (in constant time) and expiry.
pub fn verify_room_token(
    key: &[u8],
    token: &str,
    now: DateTime<Utc>,
) -> Result<RoomClaims, TokenError> {
    let (payload, signature) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let payload = URL_SAFE
        .decode(payload)
        .map_err(|_| TokenError::Malformed)?;
    let signature = URL_SAFE
        .decode(signature)
        .map_err(|_| TokenError::Malformed)?;
    mac(key, &payload)
        .verify_slice(&signature)
        .map_err(|_| TokenError::BadSignature)?;
    let claims: RoomClaims = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
    if claims.exp < now.timestamp() {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// TURN credentials for `user`, valid for `ttl`.
pub fn turn_credentials(
    secret: &[u8],
    user: Uuid,
    ttl: Duration,
    now: DateTime<Utc>,
) -> (String, String) {
    let username = format!("{}:{}", (now + ttl).timestamp(), user.simple());
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(username.as_bytes());
    let password = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (username, password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_passwords_are_coturns_hmac_sha1_of_the_user_name() {
        let user = Uuid::from_u128(0xa001);
        let now = DateTime::from_timestamp(1_764_000_000 - 3_600, 0).expect("time");
        let (username, password) =
            turn_credentials(b"coturn-shared-secret", user, Duration::hours(1), now);
        assert_eq!(username, "1764000000:0000000000000000000000000000a001");
        // Computed independently with Python's hmac module.
        assert_eq!(password, "YMGXnDd96BdkM1vB2faN2gDwkcc=");
    }

    #[test]
    fn a_room_token_is_refused_when_altered_signed_elsewhere_or_expired() {
        let now = Utc::now();
        let claims = RoomClaims {
            room: Uuid::from_u128(1),
            sub: Uuid::from_u128(2),
            role: "customer".into(),
            exp: (now + Duration::minutes(5)).timestamp(),
        };
        let token = room_token(b"key", &claims);
        assert_eq!(verify_room_token(b"key", &token, now), Ok(claims.clone()));
        assert_eq!(
            verify_room_token(b"another key", &token, now),
            Err(TokenError::BadSignature)
        );
        let (_, signature) = token.split_once('.').expect("two parts");
        let forged_claims = RoomClaims {
            room: Uuid::from_u128(9),
            ..claims.clone()
        };
        let forged = format!(
            "{}.{signature}",
            URL_SAFE.encode(serde_json::to_vec(&forged_claims).expect("json"))
        );
        assert_eq!(
            verify_room_token(b"key", &forged, now),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify_room_token(b"key", &token, now + Duration::minutes(6)),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify_room_token(b"key", "nonsense", now),
            Err(TokenError::Malformed)
        );
    }
}
