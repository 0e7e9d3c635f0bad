//! `Subdomain`: the name a company is reached under, and the DNS-label rule hosts share.
use std::fmt;

use serde::{Deserialize, Serialize};

/// Subdomains no company can take: they name parts of the platform or are
/// routinely used for other services.
pub const RESERVED: &[&str] = &[
    "www",
    "admin",
    "api",
    "app",
    "mail",
    "smtp",
    "imap",
    "pop",
    "pop3",
    "ftp",
    "ns1",
    "ns2",
    "dns",
    "mx",
    "webmail",
    "static",
    "assets",
    "cdn",
    "media",
    "status",
    "support",
    "help",
    "docs",
    "blog",
    "dev",
    "staging",
    "test",
    "localhost",
    "root",
    "enclave",
    "signup",
    "login",
    "logout",
    "auth",
    "account",
    "accounts",
    "billing",
    "dashboard",
    "metrics",
    "health",
    "system",
    "internal",
];

/// Whether `label` is one DNS label: 1–63 ASCII letters, digits and
/// hyphens, not starting or ending with a hyphen. Hosts and the base domain
/// are checked with it; company subdomains have stricter rules on top.
pub fn is_dns_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// A company's subdomain: 3–63 characters of `a-z`, `0-9` and `-`, not
/// starting or ending with a hyphen, not reserved. Input is trimmed and
/// lower-cased first.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Subdomain(String);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum SubdomainError {
    #[error("Choose a subdomain.")]
    Empty,
    #[error("A subdomain needs at least 3 characters.")]
    TooShort,
    #[error("A subdomain can have at most 63 characters.")]
    TooLong,
    #[error("Use only letters a–z, digits and hyphens ('{0}' is not allowed).")]
    BadCharacter(char),
    #[error("A subdomain cannot start or end with a hyphen.")]
    EdgeHyphen,
    #[error("A subdomain cannot have two hyphens in the third and fourth places (those are for encoded international names).")]
    EncodedName,
    #[error("'{0}' is reserved; choose another subdomain.")]
    Reserved(String),
}

impl Subdomain {
    pub const MIN_LEN: usize = 3;
    pub const MAX_LEN: usize = 63;

    pub fn parse(input: &str) -> Result<Self, SubdomainError> {
        let s = input.trim().to_lowercase();
        if s.is_empty() {
            return Err(SubdomainError::Empty);
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(SubdomainError::BadCharacter(c));
        }
        // Only ASCII from here on, so byte length is character count.
        if s.len() < Self::MIN_LEN {
            return Err(SubdomainError::TooShort);
        }
        if s.len() > Self::MAX_LEN {
            return Err(SubdomainError::TooLong);
        }
        if s.starts_with('-') || s.ends_with('-') {
            return Err(SubdomainError::EdgeHyphen);
        }
        if s.get(2..4) == Some("--") {
            return Err(SubdomainError::EncodedName);
        }
        if RESERVED.contains(&s.as_str()) {
            return Err(SubdomainError::Reserved(s));
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Subdomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Subdomain {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_name_is_accepted_and_case_folded() {
        assert_eq!(Subdomain::parse(" Acme-2 ").unwrap().as_str(), "acme-2");
        assert_eq!(Subdomain::parse("abc").unwrap().as_str(), "abc");
        assert_eq!(
            Subdomain::parse(&"a".repeat(63)).unwrap().as_str().len(),
            63
        );
    }

    #[test]
    fn each_rule_has_its_own_error() {
        use SubdomainError::*;
        assert_eq!(Subdomain::parse("   "), Err(Empty));
        assert_eq!(Subdomain::parse("ab"), Err(TooShort));
        assert_eq!(Subdomain::parse(&"a".repeat(64)), Err(TooLong));
        assert_eq!(Subdomain::parse("-acme"), Err(EdgeHyphen));
        assert_eq!(Subdomain::parse("acme-"), Err(EdgeHyphen));
        assert_eq!(Subdomain::parse("ac_me"), Err(BadCharacter('_')));
        assert_eq!(Subdomain::parse("ácme"), Err(BadCharacter('á')));
        assert_eq!(
            Subdomain::parse("acme; DROP DATABASE x"),
            Err(BadCharacter(';'))
        );
        assert_eq!(Subdomain::parse("a.b"), Err(BadCharacter('.')));
        assert_eq!(Subdomain::parse("xn--cme-0na"), Err(EncodedName));
        assert_eq!(Subdomain::parse("www"), Err(Reserved("www".into())));
        assert_eq!(Subdomain::parse("ADMIN"), Err(Reserved("admin".into())));
    }

    #[test]
    fn messages_read_as_sentences() {
        let msg = Subdomain::parse("ab").unwrap_err().to_string();
        assert_eq!(msg, "A subdomain needs at least 3 characters.");
        let msg = Subdomain::parse("api").unwrap_err().to_string();
        assert!(msg.contains("reserved"), "{msg}");
    }
}
