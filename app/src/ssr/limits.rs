//! Rate limits on what anyone may do without signing in (creating companies, asking for their workspaces), per client address or per key.
use std::{
    hash::Hash,
    net::{IpAddr, Ipv6Addr},
    num::NonZeroU32,
    sync::Arc,
};

use governor::{clock::Clock, DefaultKeyedRateLimiter, Quota, RateLimiter};

/// A quota per key, kept in this process. Cheap to clone.
#[derive(Clone)]
pub struct KeyRateLimit<K: Clone + Eq + Hash = String> {
    limiter: Arc<DefaultKeyedRateLimiter<K>>,
}

impl<K: Clone + Eq + Hash> KeyRateLimit<K> {
    /// `n` a key may do in an hour, in a burst or spread out.
    pub fn per_hour(n: u32) -> Self {
        let n = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: Arc::new(RateLimiter::keyed(Quota::per_hour(n))),
        }
    }

    /// `n` a key may do in a second, in a burst of up to `n`.
    pub fn per_second(n: u32) -> Self {
        let n = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: Arc::new(RateLimiter::keyed(Quota::per_second(n))),
        }
    }

    /// Takes one from `key`'s quota, or says in how many seconds it may
    /// try again.
    pub fn check(&self, key: &K) -> Result<(), u64> {
        self.limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            wait.as_secs().max(1)
        })
    }

    /// Forgets keys whose quota is whole again, so the table stays as
    /// small as the keys of the last hour. Housekeeping calls it.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// What one client is, for quotas and throttles: an IPv4 address (an
/// IPv4-mapped IPv6 one included) as it is, an IPv6 address by its /64, the
/// block one subscriber usually holds (and can change addresses within).
pub fn client_block(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        v4 => v4,
    }
}

/// A quota per client address. IPv6 clients count per /64, the block one
/// subscriber usually holds; clients of unknown address share one quota.
#[derive(Clone)]
pub struct ClientRateLimit(KeyRateLimit<IpAddr>);

impl ClientRateLimit {
    pub fn per_hour(n: u32) -> Self {
        Self(KeyRateLimit::per_hour(n))
    }

    pub fn check(&self, client: Option<IpAddr>) -> Result<(), u64> {
        let key = client.map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), client_block);
        self.0.check(&key)
    }

    pub fn forget_idle(&self) {
        self.0.forget_idle();
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
