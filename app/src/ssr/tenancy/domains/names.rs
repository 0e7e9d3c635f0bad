//! A custom domain as typed, normalised: lower case, no trailing dot, IDNA to ASCII; and what may not be one.
use std::net::IpAddr;

use crate::domain::is_dns_label;

/// Why a name cannot be a company's domain (each a message for the form).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("enter a domain name, such as app.example.com")]
    Empty,
    #[error("IP addresses cannot be a company's address; use a domain name")]
    IpLiteral,
    #[error("{0} is not a valid domain name")]
    Invalid(String),
    #[error("a domain needs at least two labels, such as example.com")]
    OneLabel,
    #[error("{0} is part of this platform's own domain")]
    Platform(String),
}

/// `input` as a domain name a company may add, or why not. A scheme, a
/// path and a port typed with it are dropped (people paste addresses).
/// `base` is the platform's base domain, already normalised.
pub fn normalise(input: &str, base: &str) -> Result<String, NameError> {
    let mut name = input.trim();
    for scheme in ["https://", "http://"] {
        if name.len() >= scheme.len() && name[..scheme.len()].eq_ignore_ascii_case(scheme) {
            name = &name[scheme.len()..];
        }
    }
    let name = name.split(['/', '?', '#']).next().unwrap_or("");
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.starts_with('[') || name.parse::<IpAddr>().is_ok() {
        return Err(NameError::IpLiteral);
    }
    let name = match name.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => host,
        _ => name,
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.parse::<IpAddr>().is_ok() {
        return Err(NameError::IpLiteral);
    }
    let invalid = || NameError::Invalid(name.chars().take(80).collect());
    let ascii = idna::domain_to_ascii(name).map_err(|_| invalid())?;
    if ascii.is_empty() || ascii.len() > 253 || !ascii.split('.').all(is_dns_label) {
        return Err(invalid());
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 {
        return Err(NameError::OneLabel);
    }
    // A top-level label is never all digits (that is an address).
    if labels
        .last()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(NameError::IpLiteral);
    }
    if ascii == base || ascii.ends_with(&format!(".{base}")) {
        return Err(NameError::Platform(ascii));
    }
    Ok(ascii)
}

/// Where the proof is looked up: `_enclave-challenge.<domain>`.
pub fn challenge_name(domain: &str) -> String {
    format!("_enclave-challenge.{domain}")
}

/// Whether `domain` is a zone's apex (two labels; `example.co.uk` is
/// taken for a subdomain, which only means the page shows a CNAME first).
/// An apex cannot carry a CNAME, so the page asks for an A record there.
pub fn is_apex(domain: &str) -> bool {
    domain.split('.').count() == 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Result<String, NameError> {
        normalise(s, "enclave.test")
    }

    #[test]
    fn names_are_lower_case_without_trailing_dot() {
        assert_eq!(n("App.Acme.COM.").unwrap(), "app.acme.com");
        assert_eq!(n("  acme.com ").unwrap(), "acme.com");
        assert_eq!(n("www.acme.com").unwrap(), "www.acme.com");
    }

    #[test]
    fn pasted_addresses_lose_scheme_path_and_port() {
        assert_eq!(n("https://app.acme.com/login?x=1").unwrap(), "app.acme.com");
        assert_eq!(n("HTTP://acme.com:8443").unwrap(), "acme.com");
    }

    #[test]
    fn unicode_names_become_idna_ascii() {
        assert_eq!(n("bücher.de").unwrap(), "xn--bcher-kva.de");
        assert_eq!(n("Bücher.DE.").unwrap(), "xn--bcher-kva.de");
    }

    #[test]
    fn ip_literals_are_refused() {
        assert_eq!(n("127.0.0.1"), Err(NameError::IpLiteral));
        assert_eq!(n("http://10.0.0.1:80/"), Err(NameError::IpLiteral));
        assert_eq!(n("[::1]"), Err(NameError::IpLiteral));
        assert_eq!(n("::1"), Err(NameError::IpLiteral));
        assert_eq!(n("1.2.3.4."), Err(NameError::IpLiteral));
    }

    #[test]
    fn the_platform_and_its_subdomains_are_refused() {
        assert!(matches!(n("enclave.test"), Err(NameError::Platform(_))));
        assert!(matches!(
            n("ACME.enclave.test."),
            Err(NameError::Platform(_))
        ));
        assert!(matches!(n("a.b.enclave.test"), Err(NameError::Platform(_))));
        assert_eq!(n("notenclave.test").unwrap(), "notenclave.test");
    }

    #[test]
    fn malformed_names_are_refused() {
        assert_eq!(n(""), Err(NameError::Empty));
        assert_eq!(n("https://"), Err(NameError::Empty));
        assert_eq!(n("localhost"), Err(NameError::OneLabel));
        assert!(matches!(n("ac_me.com"), Err(NameError::Invalid(_))));
        assert!(matches!(n("-acme.com"), Err(NameError::Invalid(_))));
        assert!(matches!(n("acme..com"), Err(NameError::Invalid(_))));
        assert!(matches!(
            n(&format!("{}.com", "a".repeat(64))),
            Err(NameError::Invalid(_))
        ));
        assert!(matches!(n("a b.com"), Err(NameError::Invalid(_))));
    }

    #[test]
    fn apexes_are_told_apart() {
        assert!(is_apex("acme.com"));
        assert!(!is_apex("www.acme.com"));
        assert_eq!(challenge_name("acme.com"), "_enclave-challenge.acme.com");
    }
}
