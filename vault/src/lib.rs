//! Personal data at rest: each person's data key, wrapped under the platform's key-encryption
//! key, sealing and opening values with AES-256-GCM, and erasure by destroying the key.
//!
//! A sealed value reads `v1.<owner id>.<base64(nonce ‖ ciphertext)>`; the owner id is bound
//! into the authenticated data, so a value cannot be moved to another person unnoticed.
//! Only this crate ever holds a data key; unwrapped keys stay in memory for a bounded time
//! (`keys`) and are overwritten when they leave.

use std::collections::HashMap;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use domain::Sealed;
use sqlx::PgPool;
use uuid::Uuid;
use zeroize::Zeroizing;

// Only for its `zeroize` feature: the cipher's round keys are overwritten when dropped.
use aes as _;

pub mod cache;

use cache::Cache;

/// How long an unwrapped data key stays in memory at most.
pub const KEY_TTL: std::time::Duration = std::time::Duration::from_secs(60);
/// How many unwrapped data keys are held at most.
pub const KEY_CAPACITY: usize = 10_000;

/// A data key's bytes, overwritten when dropped.
type KeyBytes = Zeroizing<[u8; 32]>;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The person's key was destroyed: nothing more can be sealed for them.
    #[error("这个人的数据已被删除 / this person's data has been erased")]
    Erased(Uuid),
    #[error("the key-encryption key must be 32 bytes, base64-encoded")]
    BadMasterKey,
    #[error("a stored key or value is corrupt")]
    Corrupt,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

const KEY_ENCRYPTION_KEY_NAME: &str = "data_key_encryption_key";

/// The vault. Cheap to clone.
#[derive(Clone)]
pub struct Vault {
    pool: PgPool,
    key_encryption_key: Key<Aes256Gcm>,
    keys: Arc<Cache<Uuid, KeyBytes>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Vault(<keys>)")
    }
}

fn sealed_aad(owner: Uuid) -> Vec<u8> {
    format!("anjia-sealed-v1:{owner}").into_bytes()
}

fn wrapped_aad(owner: Uuid) -> Vec<u8> {
    format!("anjia-data-key-v1:{owner}").into_bytes()
}

fn encrypt(key: &Key<Aes256Gcm>, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let nonce_bytes: [u8; 12] = rand::random();
    let ciphertext = Aes256Gcm::new(key)
        .encrypt(
            Nonce::from_slice(&nonce_bytes),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("AES-GCM encryption of an in-memory buffer does not fail");
    let mut sealed = nonce_bytes.to_vec();
    sealed.extend(ciphertext);
    sealed
}

fn decrypt(key: &Key<Aes256Gcm>, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
    if sealed.len() < 12 {
        return Err(VaultError::Corrupt);
    }
    let (nonce, ciphertext) = sealed.split_at(12);
    Aes256Gcm::new(key)
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| VaultError::Corrupt)
}

impl Vault {
    /// Opens the vault. The key-encryption key comes from `master_key` (base64 of 32 bytes, for
    /// production: keep it outside the database) or, when absent, from the database, where the
    /// first process creates it.
    pub async fn load(pool: PgPool, master_key: Option<&str>) -> Result<Vault, VaultError> {
        let key_bytes = match master_key {
            Some(encoded) => base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| VaultError::BadMasterKey)?,
            None => {
                let fresh: [u8; 32] = rand::random();
                sqlx::query("INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(KEY_ENCRYPTION_KEY_NAME)
                    .bind(fresh.as_slice())
                    .execute(&pool)
                    .await?;
                sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
                    .bind(KEY_ENCRYPTION_KEY_NAME)
                    .fetch_one(&pool)
                    .await?
            }
        };
        if key_bytes.len() != 32 {
            return Err(VaultError::BadMasterKey);
        }
        let keys = Arc::new(Cache::new(KEY_TTL, KEY_CAPACITY));
        // Keys past their time are dropped (and overwritten) within a second, used or not.
        let weak = Arc::downgrade(&keys);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tick.tick().await;
                let Some(keys) = weak.upgrade() else { return };
                keys.sweep();
            }
        });
        Ok(Vault {
            pool,
            key_encryption_key: *Key::<Aes256Gcm>::from_slice(&key_bytes),
            keys,
        })
    }

    /// Whether keys may be kept in memory and served from it: only while this process hears
    /// every change to `person_keys` (see `application::fresh`). Off until told otherwise;
    /// turning it either way forgets every key held.
    pub fn trust_cache(&self, trusted: bool) {
        self.keys.trust(trusted);
    }

    /// Forgets a person's key (it changed elsewhere: it was erased).
    pub fn forget(&self, owner: Uuid) {
        self.keys.forget(owner);
    }

    /// Forgets every key held.
    pub fn forget_all(&self) {
        self.keys.forget_all();
    }

    /// The person's data key, created on first use. The common case, a key held in memory,
    /// reads nothing; a key that exists is one read; only a person's first sealing writes.
    async fn data_key(&self, owner: Uuid) -> Result<KeyBytes, VaultError> {
        if let Some(key) = self.keys.get(owner) {
            return Ok(key);
        }
        let ticket = self.keys.ticket();
        let existing: Option<Option<Vec<u8>>> =
            sqlx::query_scalar("SELECT wrapped_key FROM person_keys WHERE person_id = $1")
                .bind(owner)
                .fetch_optional(&self.pool)
                .await?;
        let wrapped = match existing {
            Some(wrapped) => wrapped,
            None => {
                let fresh: [u8; 32] = rand::random();
                let wrapped = encrypt(&self.key_encryption_key, &wrapped_aad(owner), &fresh);
                sqlx::query(
                    "INSERT INTO person_keys (person_id, wrapped_key) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                )
                .bind(owner)
                .bind(&wrapped)
                .execute(&self.pool)
                .await?;
                // Another process may have created it first: use whichever was stored.
                sqlx::query_scalar("SELECT wrapped_key FROM person_keys WHERE person_id = $1")
                    .bind(owner)
                    .fetch_one(&self.pool)
                    .await?
            }
        };
        let wrapped = wrapped.ok_or(VaultError::Erased(owner))?;
        let key = self.unwrap_key(owner, &wrapped)?;
        self.keys.put(ticket, owner, &key);
        Ok(key)
    }

    fn unwrap_key(&self, owner: Uuid, wrapped: &[u8]) -> Result<KeyBytes, VaultError> {
        let key = Zeroizing::new(decrypt(
            &self.key_encryption_key,
            &wrapped_aad(owner),
            wrapped,
        )?);
        let key: [u8; 32] = key.as_slice().try_into().map_err(|_| VaultError::Corrupt)?;
        Ok(Zeroizing::new(key))
    }

    /// Seals a value under its owner's key.
    pub async fn seal(&self, owner: Uuid, plaintext: &str) -> Result<Sealed, VaultError> {
        let key = self.data_key(owner).await?;
        Ok(seal_with(&key, owner, plaintext))
    }

    /// Seals several values for one owner with one key lookup.
    pub async fn seal_all(
        &self,
        owner: Uuid,
        plaintexts: &[&str],
    ) -> Result<Vec<Sealed>, VaultError> {
        let key = self.data_key(owner).await?;
        Ok(plaintexts
            .iter()
            .map(|plaintext| seal_with(&key, owner, plaintext))
            .collect())
    }

    /// Opens values, fetching each owner's key once. An erased (or unknown) owner's values
    /// open to `None`.
    pub async fn open_all(&self, sealed: &[&Sealed]) -> Result<Vec<Option<String>>, VaultError> {
        let mut owners: Vec<Uuid> = sealed.iter().filter_map(|value| value.owner()).collect();
        owners.sort();
        owners.dedup();
        let mut keys: HashMap<Uuid, KeyBytes> = HashMap::new();
        owners.retain(|owner| match self.keys.get(*owner) {
            Some(key) => {
                keys.insert(*owner, key);
                false
            }
            None => true,
        });
        if !owners.is_empty() {
            let ticket = self.keys.ticket();
            let rows: Vec<(Uuid, Option<Vec<u8>>)> = sqlx::query_as(
                "SELECT person_id, wrapped_key FROM person_keys WHERE person_id = ANY($1)",
            )
            .bind(&owners)
            .fetch_all(&self.pool)
            .await?;
            for (owner, wrapped) in rows {
                if let Some(wrapped) = wrapped {
                    let key = self.unwrap_key(owner, &wrapped)?;
                    self.keys.put(ticket, owner, &key);
                    keys.insert(owner, key);
                }
            }
        }
        sealed
            .iter()
            .map(|value| {
                // Written in clear before its field was sealed (see `domain::upcast`).
                if let Some(text) = value.legacy_text() {
                    return Ok(Some(text));
                }
                let Some(owner) = value.owner() else {
                    return Err(VaultError::Corrupt);
                };
                match keys.get(&owner) {
                    Some(key) => open_with(key, owner, value).map(Some),
                    None => Ok(None),
                }
            })
            .collect()
    }

    pub async fn open(&self, sealed: &Sealed) -> Result<Option<String>, VaultError> {
        Ok(self.open_all(&[sealed]).await?.pop().flatten())
    }

    /// Destroys the person's key. Returns whether there was one to destroy.
    pub async fn erase(&self, owner: Uuid) -> Result<bool, VaultError> {
        let erased = sqlx::query(
            "INSERT INTO person_keys (person_id, wrapped_key, erased_at) VALUES ($1, NULL, now())
             ON CONFLICT (person_id) DO UPDATE SET wrapped_key = NULL, erased_at = COALESCE(person_keys.erased_at, now())
             RETURNING (xmax <> 0) AS existed",
        )
        .bind(owner)
        .fetch_one(&self.pool)
        .await?;
        // Every process forgets it when told (a trigger); this one does not wait to be told.
        self.forget(owner);
        Ok(sqlx::Row::try_get(&erased, "existed")?)
    }
}

fn seal_with(key: &[u8; 32], owner: Uuid, plaintext: &str) -> Sealed {
    let sealed = encrypt(
        Key::<Aes256Gcm>::from_slice(key),
        &sealed_aad(owner),
        plaintext.as_bytes(),
    );
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed);
    Sealed::from_ciphertext(format!("v1.{owner}.{encoded}"))
}

fn open_with(key: &[u8; 32], owner: Uuid, sealed: &Sealed) -> Result<String, VaultError> {
    let encoded = sealed
        .as_str()
        .rsplit('.')
        .next()
        .ok_or(VaultError::Corrupt)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| VaultError::Corrupt)?;
    let plaintext = decrypt(
        Key::<Aes256Gcm>::from_slice(key),
        &sealed_aad(owner),
        &bytes,
    )?;
    String::from_utf8(plaintext).map_err(|_| VaultError::Corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> [u8; 32] {
        [byte; 32]
    }

    #[test]
    fn a_sealed_value_opens_only_with_its_owners_key_and_owner() {
        let owner = Uuid::new_v4();
        let sealed = seal_with(&key(1), owner, "13800135678");
        assert_eq!(sealed.owner(), Some(owner));
        assert!(!sealed.as_str().contains("13800135678"));
        assert_eq!(
            open_with(&key(1), owner, &sealed).expect("opens"),
            "13800135678"
        );
        assert!(open_with(&key(2), owner, &sealed).is_err());
        // Claiming another owner changes the authenticated data: it no longer opens.
        assert!(open_with(&key(1), Uuid::new_v4(), &sealed).is_err());
    }

    #[test]
    fn sealing_twice_gives_different_ciphertexts() {
        let owner = Uuid::new_v4();
        assert_ne!(
            seal_with(&key(1), owner, "same"),
            seal_with(&key(1), owner, "same")
        );
    }
}
