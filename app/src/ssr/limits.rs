//! Rate limits on what anyone may do without signing in (creating companies, asking for their workspaces), per client address or per key.
use std::{
    net::{IpAddr, Ipv6Addr},
    num::NonZeroU32,
    sync::Arc,
};

use governor::{clock::Clock, DefaultKeyedRateLimiter, Quota, RateLimiter};

/// A quota per client address, kept in this process. IPv6 clients count
/// per /64, the block one subscriber usually holds. Cheap to clone.
#[derive(Clone)]
pub struct ClientRateLimit {
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

impl ClientRateLimit {
    /// `n` a client may do in an hour, in a burst or spread out.
    pub fn per_hour(n: u32) -> Self {
        let n = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: Arc::new(RateLimiter::keyed(Quota::per_hour(n))),
        }
    }

    /// Takes one from `client`'s quota, or says in how many seconds it may
    /// try again. Clients of unknown address share one quota.
    pub fn check(&self, client: Option<IpAddr>) -> Result<(), u64> {
        let key = match client {
            Some(IpAddr::V6(v6)) => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                IpAddr::V6(Ipv6Addr::from(octets))
            }
            Some(v4) => v4,
            None => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        self.limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            wait.as_secs().max(1)
        })
    }

    /// Forgets clients whose quota is whole again, so the table stays as
    /// small as the clients of the last hour. Housekeeping calls it.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// A quota per key (a digest of an email, say), kept in this process.
#[derive(Clone)]
pub struct KeyRateLimit {
    limiter: Arc<DefaultKeyedRateLimiter<String>>,
}

impl KeyRateLimit {
    pub fn per_hour(n: u32) -> Self {
        let n = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: Arc::new(RateLimiter::keyed(Quota::per_hour(n))),
        }
    }

    /// Takes one from `key`'s quota, or says in how many seconds it may
    /// try again.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        self.limiter
            .check_key(&key.to_owned())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
                wait.as_secs().max(1)
            })
    }

    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_has_its_own_quota_and_ipv6_counts_per_64() {
        let limit = ClientRateLimit::per_hour(2);
        let a: IpAddr = "203.0.113.1".parse().unwrap();
        let b: IpAddr = "203.0.113.2".parse().unwrap();
        assert!(limit.check(Some(a)).is_ok());
        assert!(limit.check(Some(a)).is_ok());
        let wait = limit.check(Some(a)).unwrap_err();
        assert!(wait > 60 && wait <= 3600, "{wait}");
        assert!(limit.check(Some(b)).is_ok());
        let v6a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert!(limit.check(Some(v6a)).is_ok());
        assert!(limit.check(Some(v6b)).is_ok());
        assert!(limit.check(Some(v6a)).is_err(), "same /64");
    }
}
