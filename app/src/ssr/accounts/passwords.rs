//! Password hashing and checking with argon2id, on the blocking pool.
//!
//! The crate's defaults are OWASP's recommended minimum (19 MiB, 2
//! iterations, 1 lane). Both operations are CPU-bound for tens of
//! milliseconds, so async code calls the `_blocking` forms.
use argon2::{
    password_hash::{phc::PasswordHash, PasswordHasher, PasswordVerifier},
    Argon2,
};

use crate::domain::Password;

pub fn hash(password: &Password) -> String {
    Argon2::default()
        .hash_password(password.expose().as_bytes())
        .expect("argon2 with default parameters and an OS salt cannot fail")
        .to_string()
}

pub fn verify(password: &str, stored_hash: &str) -> bool {
    PasswordHash::new(stored_hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Hashes on the blocking pool, off the async workers.
pub async fn hash_blocking(password: Password) -> String {
    tokio::task::spawn_blocking(move || hash(&password))
        .await
        .expect("hashing does not panic")
}

/// Verifies on the blocking pool, off the async workers.
pub async fn verify_blocking(password: String, stored_hash: String) -> bool {
    tokio::task::spawn_blocking(move || verify(&password, &stored_hash))
        .await
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_is_argon2id_and_verifies_only_its_password() {
        let p = Password::parse("correct horse battery").unwrap();
        let h = hash(&p);
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse battery!", &h));
        assert!(!verify("x", "not a hash"));
    }
}
