//! The deletion receipt: what a purge removed, where and when, signed so the operator can show it was issued by this installation.
//!
//! Signed with HMAC-SHA256 under a key derived from `ENCLAVE_SECRET_KEY`
//! (keyed BLAKE2b, purpose "deletion receipts"), over the receipt's JSON
//! without its `signature`, as this module writes it. `server receipt
//! verify` checks it with the installation's key; a receipt signed before
//! a key rotation verifies only with the old key.
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use crate::ssr::secrets::Cipher;

pub const FORMAT: &str = "enclave-deletion-receipt/1";
pub const ALGORITHM: &str = "HMAC-SHA256";

/// What the receipt says, in the order it is signed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    pub format: String,
    pub company: ReceiptCompany,
    pub deletion_asked_at: DateTime<Utc>,
    pub purged_at: DateTime<Utc>,
    pub removed: Vec<Removed>,
    /// After this moment no backup holds the company's data: backups taken
    /// before the purge have all expired under the retention then.
    pub backups_hold_it_until: DateTime<Utc>,
    /// How `backups_hold_it_until` follows from the retention.
    pub backups: String,
    /// Until when no one else may take the subdomain.
    pub subdomain_reserved_until: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptCompany {
    pub id: Uuid,
    pub name: String,
    pub subdomain: String,
    pub created_at: DateTime<Utc>,
}

/// One thing removed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Removed {
    pub what: String,
    #[serde(rename = "where")]
    pub place: String,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    pub algorithm: String,
    /// Names the key without revealing it (see `Cipher::key_id`).
    pub key_id: String,
    pub value: String,
}

/// A receipt with its signature, as it is written to a file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signed {
    pub receipt: Receipt,
    pub signature: Signature,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("this is not a deletion receipt: {0}")]
    Malformed(String),
    #[error("the receipt was signed with another key ({0}) than this installation's")]
    OtherKey(String),
    #[error("the signature does not match: the receipt was changed after it was signed")]
    Mismatch,
}

fn mac(cipher: &Cipher, receipt: &Receipt) -> Hmac<Sha256> {
    let key = cipher.keyed_digest("deletion receipts", "");
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(&serde_json::to_vec(receipt).expect("a receipt serializes"));
    mac
}

/// Signs `receipt`.
pub fn sign(cipher: &Cipher, receipt: Receipt) -> Signed {
    let value = hex::encode(mac(cipher, &receipt).finalize().into_bytes());
    Signed {
        receipt,
        signature: Signature {
            algorithm: ALGORITHM.into(),
            key_id: cipher.key_id(),
            value,
        },
    }
}

/// Checks a receipt file's text against this installation's key.
pub fn verify(cipher: &Cipher, text: &str) -> Result<Receipt, VerifyError> {
    let signed: Signed =
        serde_json::from_str(text).map_err(|e| VerifyError::Malformed(e.to_string()))?;
    if signed.receipt.format != FORMAT || signed.signature.algorithm != ALGORITHM {
        return Err(VerifyError::Malformed(format!(
            "format '{}', algorithm '{}'",
            signed.receipt.format, signed.signature.algorithm
        )));
    }
    if signed.signature.key_id != cipher.key_id() {
        return Err(VerifyError::OtherKey(signed.signature.key_id));
    }
    let given = hex::decode(&signed.signature.value).map_err(|_| VerifyError::Mismatch)?;
    mac(cipher, &signed.receipt)
        .verify_slice(&given)
        .map_err(|_| VerifyError::Mismatch)?;
    Ok(signed.receipt)
}
