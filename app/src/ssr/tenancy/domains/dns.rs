//! TXT records looked up with hickory-resolver: the system's resolver, or the server `ENCLAVE_DNS_SERVER` names (tests point it at their own dnsmasq).
use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;

/// Looks TXT records up, never from a cache of its own: a record just
/// published is seen at the next look (a resolver upstream may still
/// cache it for its TTL).
#[derive(Clone)]
pub struct TxtLookup {
    resolver: std::sync::Arc<TokioResolver>,
}

#[derive(Debug, thiserror::Error)]
#[error("the DNS lookup failed: {0}")]
pub struct DnsError(String);

impl TxtLookup {
    /// The system's resolver (`/etc/resolv.conf`), or `server` alone.
    pub fn new(server: Option<SocketAddr>) -> Result<Self, DnsError> {
        let mut builder = match server {
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let ns = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                TokioResolver::builder_with_config(
                    ResolverConfig::from_parts(None, vec![], vec![ns]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => TokioResolver::builder_tokio().map_err(|e| DnsError(e.to_string()))?,
        };
        let options = builder.options_mut();
        options.cache_size = 0;
        options.timeout = Duration::from_secs(3);
        options.attempts = 2;
        let resolver = builder.build().map_err(|e| DnsError(e.to_string()))?;
        Ok(Self {
            resolver: std::sync::Arc::new(resolver),
        })
    }

    /// The TXT strings at `name` (each record's strings joined, as RFC 7208
    /// reads them); none when the name or its records do not exist.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let fqdn = format!("{name}.");
        match self.resolver.txt_lookup(fqdn.as_str()).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::TXT(txt) => Some(
                        txt.txt_data
                            .iter()
                            .map(|s| String::from_utf8_lossy(s).into_owned())
                            .collect::<String>(),
                    ),
                    _ => None,
                })
                .collect()),
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(Vec::new()),
            Err(e) => Err(DnsError(e.to_string())),
        }
    }
}
