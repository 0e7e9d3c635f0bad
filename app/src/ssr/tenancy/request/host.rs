//! The `Host` header, normalised and classified: the base domain or one subdomain label.
use std::net::IpAddr;

use crate::domain::is_dns_label;

/// What a well-formed host names.
#[derive(Debug, PartialEq, Eq)]
pub enum HostKind<'a> {
    /// The base domain itself.
    Root,
    /// One DNS label under the base domain, lower-cased. It is a valid DNS
    /// label but not necessarily a valid company subdomain.
    Sub(&'a str),
}

/// Why a host is refused (all answer 400).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("the request has no Host header")]
    Missing,
    #[error("the Host header is not a valid host name")]
    Malformed,
    #[error("IP addresses are not served; use the domain name")]
    IpLiteral,
    #[error("this host is not under the served domain")]
    Foreign,
    #[error("only one level of subdomain is served")]
    TooDeep,
}

/// A normalised host: lower-cased, port and trailing dot removed.
#[derive(Debug, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub port: Option<u16>,
}

impl Host {
    pub fn parse(raw: &str) -> Result<Self, HostError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(HostError::Missing);
        }
        if raw.starts_with('[') {
            // Bracketed IPv6 literal, with or without a port.
            return Err(HostError::IpLiteral);
        }
        let (name, port) = match raw.rsplit_once(':') {
            Some((name, port)) => {
                let port = port.parse::<u16>().map_err(|_| HostError::Malformed)?;
                (name, Some(port))
            }
            None => (raw, None),
        };
        if name.contains(':') || name.parse::<IpAddr>().is_ok() {
            return Err(HostError::IpLiteral);
        }
        let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        if name.is_empty() || name.len() > 253 || !name.split('.').all(is_dns_label) {
            return Err(HostError::Malformed);
        }
        Ok(Host { name, port })
    }

    /// Classifies this host against `base` (already normalised).
    pub fn kind<'a>(&'a self, base: &str) -> Result<HostKind<'a>, HostError> {
        if self.name == base {
            return Ok(HostKind::Root);
        }
        let sub = self
            .name
            .strip_suffix(base)
            .and_then(|rest| rest.strip_suffix('.'))
            .ok_or(HostError::Foreign)?;
        if sub.contains('.') {
            return Err(HostError::TooDeep);
        }
        Ok(HostKind::Sub(sub))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(raw: &str, base: &str) -> Result<String, HostError> {
        let host = Host::parse(raw)?;
        Ok(match host.kind(base)? {
            HostKind::Root => "root".to_string(),
            HostKind::Sub(s) => format!("sub:{s}"),
        })
    }

    #[test]
    fn the_base_domain_is_root_with_or_without_port() {
        assert_eq!(classify("localhost:3000", "localhost").unwrap(), "root");
        assert_eq!(classify("example.com", "example.com").unwrap(), "root");
        assert_eq!(classify("EXAMPLE.com.", "example.com").unwrap(), "root");
    }

    #[test]
    fn one_label_under_the_base_is_a_subdomain() {
        assert_eq!(
            classify("acme.localhost:3000", "localhost").unwrap(),
            "sub:acme"
        );
        assert_eq!(
            classify("ACME.localhost:3000", "localhost").unwrap(),
            "sub:acme"
        );
        assert_eq!(
            classify("acme.localhost.", "localhost").unwrap(),
            "sub:acme"
        );
        assert_eq!(
            classify("acme.example.com", "example.com").unwrap(),
            "sub:acme"
        );
    }

    #[test]
    fn the_port_is_kept_apart() {
        let h = Host::parse("Acme.Example.com:8080").unwrap();
        assert_eq!(
            h,
            Host {
                name: "acme.example.com".into(),
                port: Some(8080)
            }
        );
        assert_eq!(Host::parse("acme.example.com").unwrap().port, None);
    }

    #[test]
    fn hosts_outside_the_base_domain_are_refused() {
        assert_eq!(classify("evil.com", "localhost"), Err(HostError::Foreign));
        assert_eq!(
            classify("notexample.com", "example.com"),
            Err(HostError::Foreign)
        );
        assert_eq!(
            classify("acme.example.com.evil.com", "example.com"),
            Err(HostError::Foreign)
        );
    }

    #[test]
    fn two_labels_deep_is_refused() {
        assert_eq!(
            classify("a.b.localhost", "localhost"),
            Err(HostError::TooDeep)
        );
        assert_eq!(
            classify("a.b.example.com:80", "example.com"),
            Err(HostError::TooDeep)
        );
    }

    #[test]
    fn ip_literals_are_refused() {
        assert_eq!(
            classify("127.0.0.1:3000", "localhost"),
            Err(HostError::IpLiteral)
        );
        assert_eq!(
            classify("127.0.0.1", "localhost"),
            Err(HostError::IpLiteral)
        );
        assert_eq!(
            classify("[::1]:3000", "localhost"),
            Err(HostError::IpLiteral)
        );
        assert_eq!(classify("::1", "localhost"), Err(HostError::IpLiteral));
    }

    #[test]
    fn empty_and_malformed_hosts_are_refused() {
        assert_eq!(classify("", "localhost"), Err(HostError::Missing));
        assert_eq!(classify("   ", "localhost"), Err(HostError::Missing));
        assert_eq!(
            classify("acme.localhost:port", "localhost"),
            Err(HostError::Malformed)
        );
        assert_eq!(
            classify("acme.localhost:99999", "localhost"),
            Err(HostError::Malformed)
        );
        assert_eq!(
            classify("ac_me.localhost", "localhost"),
            Err(HostError::Malformed)
        );
        assert_eq!(
            classify("-acme.localhost", "localhost"),
            Err(HostError::Malformed)
        );
        assert_eq!(
            classify("acme..localhost", "localhost"),
            Err(HostError::Malformed)
        );
        assert_eq!(
            classify(".localhost", "localhost"),
            Err(HostError::Malformed)
        );
        assert_eq!(
            classify("ácme.localhost", "localhost"),
            Err(HostError::Malformed)
        );
        let long = format!("{}.localhost", "a".repeat(300));
        assert_eq!(classify(&long, "localhost"), Err(HostError::Malformed));
        let long_label = format!("{}.localhost", "a".repeat(64));
        assert_eq!(
            classify(&long_label, "localhost"),
            Err(HostError::Malformed)
        );
    }
}
