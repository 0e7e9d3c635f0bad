//! Encryption of stored credentials (company database URLs) with ChaCha20-Poly1305, token digests and random secrets.
use base64::{engine::general_purpose::STANDARD, Engine};
use chacha20poly1305::{
    aead::{Aead, Generate, KeyInit},
    ChaCha20Poly1305, Key, Nonce,
};
use secrecy::{ExposeSecret, SecretString};

const PREFIX: &str = "v1:";
const NONCE_LEN: usize = 12;

/// Encrypts and decrypts stored credentials with the platform's secret key.
#[derive(Clone)]
pub struct Cipher(ChaCha20Poly1305);

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher([redacted])")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CipherError {
    #[error("the secret key must be 64 hexadecimal characters (32 bytes)")]
    BadKey,
    #[error("a stored credential cannot be decrypted (wrong key or corrupted)")]
    Undecryptable,
}

impl Cipher {
    /// From 64 hex characters (`openssl rand -hex 32` makes one).
    pub fn from_hex_key(key: &SecretString) -> Result<Self, CipherError> {
        let hex = key.expose_secret().trim();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(CipherError::BadKey);
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte =
                u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| CipherError::BadKey)?;
        }
        Ok(Self(ChaCha20Poly1305::new(&Key::from(bytes))))
    }

    /// A new random key, as `from_hex_key` takes it.
    pub fn generate_hex_key() -> SecretString {
        SecretString::from(random_hex(32))
    }

    /// `v1:` + base64(nonce ‖ ciphertext). A fresh nonce each time, so equal
    /// inputs give different outputs.
    pub fn encrypt(&self, plaintext: &SecretString) -> String {
        let nonce = Nonce::generate();
        let sealed = self
            .0
            .encrypt(&nonce, plaintext.expose_secret().as_bytes())
            .expect("ChaCha20-Poly1305 encryption cannot fail for in-memory input");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{}", STANDARD.encode(out))
    }

    pub fn decrypt(&self, stored: &str) -> Result<SecretString, CipherError> {
        let raw = stored
            .strip_prefix(PREFIX)
            .and_then(|b| STANDARD.decode(b).ok())
            .filter(|raw| raw.len() > NONCE_LEN)
            .ok_or(CipherError::Undecryptable)?;
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce).map_err(|_| CipherError::Undecryptable)?;
        let plain = self
            .0
            .decrypt(&nonce, sealed)
            .map_err(|_| CipherError::Undecryptable)?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| CipherError::Undecryptable)
    }
}

/// BLAKE2b-512 of a bearer token, hex: what is stored instead of it.
pub fn token_digest(token: &str) -> String {
    use blake2::{Blake2b512, Digest};
    Blake2b512::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `n` random bytes from the OS, hex-encoded.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).expect("the OS random source is available");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_trip_gives_back_the_plaintext_and_stores_none_of_it() {
        let cipher = Cipher::from_hex_key(&Cipher::generate_hex_key()).unwrap();
        let url = SecretString::from("postgres://tenant_x:s3cret@db:5432/tenant_x");
        let stored = cipher.encrypt(&url);
        assert!(
            !stored.contains("s3cret") && !stored.contains("postgres"),
            "{stored}"
        );
        assert_ne!(stored, cipher.encrypt(&url), "nonces differ");
        assert_eq!(
            cipher.decrypt(&stored).unwrap().expose_secret(),
            url.expose_secret()
        );
    }

    #[test]
    fn another_key_or_a_changed_byte_cannot_decrypt() {
        let a = Cipher::from_hex_key(&Cipher::generate_hex_key()).unwrap();
        let b = Cipher::from_hex_key(&Cipher::generate_hex_key()).unwrap();
        let stored = a.encrypt(&SecretString::from("x"));
        assert!(b.decrypt(&stored).is_err());
        let mut tampered = stored.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(a.decrypt(std::str::from_utf8(&tampered).unwrap()).is_err());
        assert!(a.decrypt("plaintext").is_err());
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
