//! Encryption of stored credentials (company database URLs) with ChaCha20-Poly1305, token digests and random secrets.
//!
//! A credential is sealed for its owner (the company's id, as associated
//! data): copied into another company's row it does not open. During a key
//! rotation the previous key still opens what it sealed, until
//! `secret rotate` has sealed everything again under the current one.
use base64::{engine::general_purpose::STANDARD, Engine};
use chacha20poly1305::{
    aead::{Aead, Generate, KeyInit, Payload},
    ChaCha20Poly1305, Key, Nonce,
};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

/// Sealed without associated data (before owners were bound in): still
/// opened, and sealed again as [`BOUND`] by `secret rotate`.
const LEGACY: &str = "v1:";
/// Sealed with the owner's id as associated data.
const BOUND: &str = "v2:";
const NONCE_LEN: usize = 12;

/// Encrypts and decrypts stored credentials with the platform's secret key
/// (and, during a rotation, the previous one).
#[derive(Clone)]
pub struct Cipher {
    current: ChaCha20Poly1305,
    previous: Option<ChaCha20Poly1305>,
    /// Whether `v1:` values (no owner bound in) are opened: until a
    /// `secret rotate` has sealed them all again ([`legacy_refused`]).
    legacy: bool,
    /// Derived from the current key, for keyed digests ([`Cipher::keyed_digest`]).
    digest_key: [u8; 32],
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher([redacted])")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CipherError {
    #[error("the secret key must be 64 hexadecimal characters (32 bytes)")]
    BadKey,
    #[error("a stored credential cannot be decrypted (wrong key, another owner's, or corrupted)")]
    Undecryptable,
}

fn key_bytes(key: &SecretString) -> Result<[u8; 32], CipherError> {
    let hex = key.expose_secret().trim();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CipherError::BadKey);
    }
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| CipherError::BadKey)?;
    }
    Ok(bytes)
}

fn key_from_hex(key: &SecretString) -> Result<ChaCha20Poly1305, CipherError> {
    Ok(ChaCha20Poly1305::new(&Key::from(key_bytes(key)?)))
}

/// BLAKE2b-512 of the parts, each preceded by its length.
fn blake2b(parts: &[&[u8]]) -> [u8; 64] {
    use blake2::{Blake2b512, Digest};
    let mut h = Blake2b512::new();
    for part in parts {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.finalize().into()
}

/// Where a stored credential stands under this cipher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sealing {
    /// Sealed for its owner under the current key.
    Current,
    /// Opens, but only with the previous key or without its owner bound
    /// in: `secret rotate` seals it again.
    Stale,
}

impl Cipher {
    /// From 64 hex characters (`openssl rand -hex 32` makes one).
    pub fn from_hex_key(key: &SecretString) -> Result<Self, CipherError> {
        let bytes = key_bytes(key)?;
        let derived = blake2b(&[b"enclave keyed digests", &bytes]);
        let mut digest_key = [0u8; 32];
        digest_key.copy_from_slice(&derived[..32]);
        Ok(Self {
            current: key_from_hex(key)?,
            previous: None,
            legacy: true,
            digest_key,
        })
    }

    /// The same cipher, refusing `v1:` values (after `secret rotate`).
    pub fn refusing_legacy(mut self) -> Self {
        self.legacy = false;
        self
    }

    /// Whether `v1:` values are still opened.
    pub fn opens_legacy(&self) -> bool {
        self.legacy
    }

    /// A digest of `data` for `purpose` that only the holder of the key can
    /// compute (keyed BLAKE2b), 64 hex characters: lets the registry look
    /// something up (an email) without storing it.
    pub fn keyed_digest(&self, purpose: &str, data: &str) -> String {
        hex::encode(&blake2b(&[&self.digest_key, purpose.as_bytes(), data.as_bytes()])[..32])
    }

    /// Names the current key without revealing it (16 hex characters):
    /// what keyed digests were made with.
    pub fn key_id(&self) -> String {
        self.keyed_digest("key id", "")[..16].to_owned()
    }

    /// Also opens what `previous` sealed (during a rotation).
    pub fn with_previous(mut self, previous: &SecretString) -> Result<Self, CipherError> {
        self.previous = Some(key_from_hex(previous)?);
        Ok(self)
    }

    /// A new random key, as `from_hex_key` takes it.
    pub fn generate_hex_key() -> SecretString {
        SecretString::from(random_hex(32))
    }

    /// `v2:` + base64(nonce ‖ ciphertext), sealed for `owner` under the
    /// current key. A fresh nonce each time, so equal inputs differ.
    pub fn encrypt(&self, owner: Uuid, plaintext: &SecretString) -> String {
        let nonce = Nonce::generate();
        let sealed = self
            .current
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.expose_secret().as_bytes(),
                    aad: owner.as_bytes(),
                },
            )
            .expect("ChaCha20-Poly1305 encryption cannot fail for in-memory input");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        format!("{BOUND}{}", STANDARD.encode(out))
    }

    pub fn decrypt(&self, owner: Uuid, stored: &str) -> Result<SecretString, CipherError> {
        self.open(owner, stored).map(|(plain, _)| plain)
    }

    /// What `secret rotate` stores instead of `stored`: `None` when it is
    /// sealed for `owner` under the current key already, else the same
    /// secret sealed so.
    pub fn reseal(&self, owner: Uuid, stored: &str) -> Result<Option<String>, CipherError> {
        match self.open(owner, stored)? {
            (_, Sealing::Current) => Ok(None),
            (plain, Sealing::Stale) => Ok(Some(self.encrypt(owner, &plain))),
        }
    }

    /// Whether `stored` is sealed for `owner` under the current key.
    pub fn sealing(&self, owner: Uuid, stored: &str) -> Result<Sealing, CipherError> {
        self.open(owner, stored).map(|(_, sealing)| sealing)
    }

    fn open(&self, owner: Uuid, stored: &str) -> Result<(SecretString, Sealing), CipherError> {
        let (raw, aad): (_, &[u8]) = if let Some(b) = stored.strip_prefix(BOUND) {
            (b, owner.as_bytes())
        } else if let Some(b) = stored.strip_prefix(LEGACY).filter(|_| self.legacy) {
            (b, &[])
        } else {
            return Err(CipherError::Undecryptable);
        };
        let raw = STANDARD
            .decode(raw)
            .ok()
            .filter(|raw| raw.len() > NONCE_LEN)
            .ok_or(CipherError::Undecryptable)?;
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce).map_err(|_| CipherError::Undecryptable)?;
        let payload = || Payload { msg: sealed, aad };
        let bound = stored.starts_with(BOUND);
        let (plain, sealing) = match self.current.decrypt(&nonce, payload()) {
            Ok(p) if bound => (p, Sealing::Current),
            Ok(p) => (p, Sealing::Stale),
            Err(_) => match &self.previous {
                Some(previous) => (
                    previous
                        .decrypt(&nonce, payload())
                        .map_err(|_| CipherError::Undecryptable)?,
                    Sealing::Stale,
                ),
                None => return Err(CipherError::Undecryptable),
            },
        };
        String::from_utf8(plain)
            .map(|p| (SecretString::from(p), sealing))
            .map_err(|_| CipherError::Undecryptable)
    }
}

/// Whether `secret rotate` has retired `v1:` values (the registry's
/// `sealing` row): a cipher made for this registry then refuses them.
pub async fn legacy_refused(
    registry: &impl sea_orm::ConnectionTrait,
) -> Result<bool, sea_orm::DbErr> {
    let row = registry
        .query_one_raw(sea_orm::Statement::from_string(
            registry.get_database_backend(),
            "SELECT legacy_refused FROM sealing WHERE id = 1",
        ))
        .await?;
    Ok(row
        .map(|r| r.try_get::<bool>("", "legacy_refused"))
        .transpose()?
        .unwrap_or(false))
}

/// Records that every credential is sealed for its owner (`secret rotate`
/// calls it once all were resealed): `v1:` values are refused from then on.
pub async fn refuse_legacy(registry: &impl sea_orm::ConnectionTrait) -> Result<(), sea_orm::DbErr> {
    registry
        .execute_unprepared("UPDATE sealing SET legacy_refused = true WHERE id = 1")
        .await?;
    Ok(())
}

/// BLAKE2b-512 of a bearer token, hex: what is stored instead of it.
pub fn token_digest(token: &str) -> String {
    use blake2::{Blake2b512, Digest};
    hex::encode(Blake2b512::digest(token.as_bytes()))
}

/// Whether `token` has the shape of one [`random_hex`]`(32)` makes (64 hex
/// digits): anything else is refused before a digest is even taken.
pub fn is_token(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `n` random bytes from the OS.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).expect("the OS random source is available");
    buf
}

/// `n` random bytes from the OS, hex-encoded.
pub fn random_hex(n: usize) -> String {
    hex::encode(random_bytes(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value as sealed before owners were bound in.
    fn legacy(cipher: &Cipher, plain: &str) -> String {
        let nonce = Nonce::generate();
        let sealed = cipher.current.encrypt(&nonce, plain.as_bytes()).unwrap();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{LEGACY}{}", STANDARD.encode(out))
    }

    #[test]
    fn unbound_values_open_until_a_rotation_retires_them() {
        let key = Cipher::generate_hex_key();
        let cipher = Cipher::from_hex_key(&key).unwrap();
        let old = legacy(&cipher, "postgres://tenant:pw@db/x");
        // Any owner opens it: what binding owners in was made to stop.
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert!(cipher.decrypt(a, &old).is_ok());
        assert!(cipher.decrypt(b, &old).is_ok());
        assert!(
            cipher.reseal(a, &old).unwrap().is_some(),
            "rotate seals it again"
        );
        let after = cipher.clone().refusing_legacy();
        assert!(!after.opens_legacy());
        assert!(matches!(
            after.decrypt(a, &old),
            Err(CipherError::Undecryptable)
        ));
        // What rotate made still opens, for its owner only.
        let bound = after.encrypt(
            a,
            &SecretString::from("postgres://tenant:pw@db/x".to_owned()),
        );
        assert!(after.decrypt(a, &bound).is_ok());
        assert!(after.decrypt(b, &bound).is_err());
    }

    #[test]
    fn a_round_trip_gives_back_the_plaintext_and_stores_none_of_it() {
        let cipher = Cipher::from_hex_key(&Cipher::generate_hex_key()).unwrap();
        let url = SecretString::from("postgres://tenant_x:s3cret@db:5432/tenant_x");
        let owner = Uuid::new_v4();
        let stored = cipher.encrypt(owner, &url);
        assert!(
            !stored.contains("s3cret") && !stored.contains("postgres"),
            "{stored}"
        );
        assert_ne!(stored, cipher.encrypt(owner, &url), "nonces differ");
        assert_eq!(
            cipher.decrypt(owner, &stored).unwrap().expose_secret(),
            url.expose_secret()
        );
        assert_eq!(cipher.sealing(owner, &stored).unwrap(), Sealing::Current);
    }

    #[test]
    fn another_key_or_a_changed_byte_cannot_decrypt() {
        let a = Cipher::from_hex_key(&Cipher::generate_hex_key()).unwrap();
        let b = Cipher::from_hex_key(&Cipher::generate_hex_key()).unwrap();
        let owner = Uuid::new_v4();
        let stored = a.encrypt(owner, &SecretString::from("x"));
        assert!(b.decrypt(owner, &stored).is_err());
        let mut tampered = stored.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(a
            .decrypt(owner, std::str::from_utf8(&tampered).unwrap())
            .is_err());
        assert!(a.decrypt(owner, "plaintext").is_err());
    }

    #[test]
    fn a_credential_opens_only_for_its_owner() {
        let cipher = Cipher::from_hex_key(&Cipher::generate_hex_key()).unwrap();
        let (acme, globex) = (Uuid::new_v4(), Uuid::new_v4());
        let stored = cipher.encrypt(acme, &SecretString::from("postgres://acme"));
        assert!(cipher.decrypt(globex, &stored).is_err());
        assert!(cipher.decrypt(acme, &stored).is_ok());
    }

    #[test]
    fn the_previous_key_opens_during_a_rotation_and_marks_it_stale() {
        let (old, new) = (Cipher::generate_hex_key(), Cipher::generate_hex_key());
        let owner = Uuid::new_v4();
        let before = Cipher::from_hex_key(&old).unwrap();
        let stored = before.encrypt(owner, &SecretString::from("u"));
        let rotating = Cipher::from_hex_key(&new)
            .unwrap()
            .with_previous(&old)
            .unwrap();
        assert_eq!(rotating.sealing(owner, &stored).unwrap(), Sealing::Stale);
        let again = rotating.encrypt(owner, &SecretString::from("u"));
        assert_eq!(rotating.sealing(owner, &again).unwrap(), Sealing::Current);
        let after = Cipher::from_hex_key(&new).unwrap();
        assert!(after.decrypt(owner, &stored).is_err());
        assert_eq!(after.decrypt(owner, &again).unwrap().expose_secret(), "u");
    }

    #[test]
    fn keys_must_be_32_hex_bytes() {
        assert!(Cipher::from_hex_key(&SecretString::from("abc")).is_err());
        assert!(Cipher::from_hex_key(&SecretString::from("z".repeat(64))).is_err());
        assert_eq!(random_hex(16).len(), 32);
        assert!(format!(
            "{:?}",
            Cipher::from_hex_key(&Cipher::generate_hex_key()).unwrap()
        )
        .contains("redacted"));
    }
}
