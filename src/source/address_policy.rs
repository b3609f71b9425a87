//! Which addresses a URL import may reach. By default only public ones: a URL whose host is, or resolves
//! to, a loopback, private, link-local, multicast or otherwise reserved address is refused, so that the
//! server cannot be used to read the network it sits in. `GEOIMPORT_URL_ALLOW` opens chosen ranges.
//!
//! The check runs inside the HTTP client's resolver: the addresses checked are the addresses connected to,
//! so a DNS answer that changes between check and connection cannot slip through. IP literals never reach
//! a resolver, so URLs (the first and every redirect) are checked too.
//!
//! Database connectors use the same policy with ports: an allowed range may be limited to one port
//! (`127.0.0.1/32:3306`), and the server's own database is always refused, whatever is allowed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

use crate::config::AllowEntry;

/// Ranges that are not the public Internet.
const BLOCKED: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/96",
    "::1/128",
    "::ffff:0:0/96",
    "64:ff9b::/96",
    "64:ff9b:1::/48",
    "2002::/16",
    "fec0::/10",
    "100::/64",
    "2001:db8::/32",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
];

#[derive(Debug, Clone)]
pub struct AddressPolicy {
    blocked: Arc<Vec<IpNet>>,
    allowed: Arc<Vec<AllowEntry>>,
    /// Ranges and ports never reached whatever is allowed: this server's own database.
    refused: Arc<Vec<(IpNet, u16)>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("only http, https, ftp and ftps URLs can be imported")]
    Scheme,
    #[error("the URL has no host")]
    NoHost,
    #[error("{0} is a private or reserved address, which imports may not reach")]
    Blocked(IpAddr),
    #[error("{0} is this server's own database, which imports never reach")]
    OwnDatabase(SocketAddr),
}

impl AddressPolicy {
    /// The default policy plus the allowed ranges.
    pub fn new(allowed: impl IntoIterator<Item = impl Into<AllowEntry>>) -> Self {
        let blocked = BLOCKED.iter().map(|n| n.parse().expect("valid built-in range")).collect();
        let allowed = allowed.into_iter().map(Into::into).collect();
        AddressPolicy { blocked: Arc::new(blocked), allowed: Arc::new(allowed), refused: Arc::new(Vec::new()) }
    }

    /// The same policy, also refusing these ranges on these ports whatever is allowed.
    pub fn refusing(mut self, refused: Vec<(IpNet, u16)>) -> Self {
        self.refused = Arc::new(refused);
        self
    }

    fn is_refused(&self, ip: IpAddr, port: u16) -> bool {
        self.refused.iter().any(|(net, p)| *p == port && net.contains(&ip))
    }

    /// Whether `ip` may be reached on any port (what URL imports ask: their resolver knows no port).
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.permits_at(ip, None)
    }

    /// Whether `ip` may be reached on `port` (None: on a port not known yet, which only entries without a
    /// port admit).
    pub fn permits_at(&self, ip: IpAddr, port: Option<u16>) -> bool {
        let ip = canonical(ip);
        if port.is_some_and(|p| self.is_refused(ip, p)) {
            return false;
        }
        if self.allowed.iter().any(|e| e.admits(ip, port)) {
            return true;
        }
        !self.blocked.iter().any(|n| n.contains(&ip))
    }

    /// Checks what can be checked without DNS: the scheme, and the host if it is an IP literal.
    pub fn check_url(&self, url: &url::Url) -> Result<(), PolicyError> {
        if !matches!(url.scheme(), "http" | "https" | "ftp" | "ftps") {
            return Err(PolicyError::Scheme);
        }
        match url.host() {
            None => Err(PolicyError::NoHost),
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)),
            // ftps is no scheme the URL standard knows, so its hosts stay text, IP literals included.
            Some(url::Host::Domain(host)) => match host.trim_matches(['[', ']']).parse::<IpAddr>() {
                Ok(ip) => self.check_ip(ip),
                Err(_) => Ok(()),
            },
        }
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), PolicyError> {
        if self.permits(ip) { Ok(()) } else { Err(PolicyError::Blocked(ip)) }
    }

    /// Resolves `host` and keeps the permitted addresses. Err(Blocked) when it resolves only to blocked
    /// ones; Err(io) when it does not resolve. Port 0 means "no port yet" (the URL resolver's case).
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, ResolveError> {
        let all: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await.map_err(ResolveError::Lookup)?.collect();
        let port_known = (port != 0).then_some(port);
        let permitted: Vec<SocketAddr> = all.iter().copied().filter(|a| self.permits_at(a.ip(), port_known)).collect();
        match (permitted.is_empty(), all.first()) {
            (false, _) => Ok(permitted),
            (true, Some(first)) => {
                let own = all.iter().find(|a| self.is_refused(canonical(a.ip()), a.port()));
                Err(ResolveError::Policy(match own {
                    Some(a) => PolicyError::OwnDatabase(*a),
                    None => PolicyError::Blocked(first.ip()),
                }))
            }
            (true, None) => Err(ResolveError::Lookup(std::io::Error::other("no addresses"))),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("the host name did not resolve: {0}")]
    Lookup(std::io::Error),
    #[error(transparent)]
    Policy(PolicyError),
}

/// IPv4 written as IPv6 (::ffff:a.b.c.d) is judged as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The HTTP client's resolver: resolves, then drops what the policy forbids.
pub struct PolicyResolver(pub AddressPolicy);

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let addrs = policy
                .resolve(name.as_str(), 0)
                .await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_allow;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn private_and_reserved_addresses_are_refused() {
        let p = AddressPolicy::new(Vec::<IpNet>::new());
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fc00::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
            "100.64.0.1",
            "::127.0.0.1",
            "2002:a00:1::",
            "fec0::1",
            "64:ff9b:1::a00:1",
        ] {
            assert!(!p.permits(ip(bad)), "{bad}");
        }
        for good in ["8.8.8.8", "151.101.1.1", "2a00:1450:4001::1"] {
            assert!(p.permits(ip(good)), "{good}");
        }
    }

    #[test]
    fn allow_entries_may_name_a_port() {
        let entry = |s: &str| s.parse::<AllowEntry>();
        assert_eq!(entry("127.0.0.1/32:3306").unwrap().port, Some(3306));
        assert_eq!(entry("10.0.0.5:5432").unwrap().net, parse_allow("10.0.0.5").unwrap());
        assert_eq!(entry("[::1]:5432").unwrap().port, Some(5432));
        assert_eq!(entry("::1").unwrap().port, None);
        assert_eq!(entry("10.0.0.0/8").unwrap().port, None);
        for bad in ["10.0.0.0/8:", "10.0.0.0/8:99999", "nonsense:1", "[::1]:x"] {
            assert!(entry(bad).is_err(), "{bad}");
        }
        let p = AddressPolicy::new([entry("127.0.0.1/32:3306").unwrap()]);
        assert!(p.permits_at(ip("127.0.0.1"), Some(3306)));
        assert!(!p.permits_at(ip("127.0.0.1"), Some(5432)), "the local PostgreSQL stays closed");
        assert!(!p.permits(ip("127.0.0.1")), "a port-bound entry opens nothing when the port is unknown");
    }

    #[test]
    fn the_own_database_is_refused_whatever_is_allowed() {
        let p = AddressPolicy::new([parse_allow("127.0.0.0/8").unwrap()])
            .refusing(vec![(parse_allow("127.0.0.0/8").unwrap(), 5432)]);
        assert!(!p.permits_at(ip("127.0.0.1"), Some(5432)));
        assert!(!p.permits_at(ip("::ffff:127.0.0.1"), Some(5432)));
        assert!(p.permits_at(ip("127.0.0.1"), Some(3306)));
    }

    #[test]
    fn the_allow_list_opens_chosen_ranges_only() {
        let p = AddressPolicy::new(vec![parse_allow("127.0.0.1/32").unwrap(), parse_allow("10.0.0.5").unwrap()]);
        assert!(p.permits(ip("127.0.0.1")));
        assert!(p.permits(ip("10.0.0.5")));
        assert!(!p.permits(ip("127.0.0.2")));
        assert!(!p.permits(ip("10.0.0.6")));
        assert!(parse_allow("nonsense").is_err());
    }

    #[test]
    fn urls_are_checked_for_scheme_and_literal_hosts() {
        let p = AddressPolicy::new(Vec::<IpNet>::new());
        let check = |u: &str| p.check_url(&url::Url::parse(u).unwrap());
        assert_eq!(check("ftp://example.com/a.csv"), Ok(()));
        assert!(matches!(check("ftps://10.0.0.1/a.csv"), Err(PolicyError::Blocked(_))));
        assert_eq!(check("gopher://example.com/a.csv"), Err(PolicyError::Scheme));
        assert_eq!(check("file:///etc/passwd"), Err(PolicyError::Scheme));
        assert!(matches!(check("http://127.0.0.1:8080/x"), Err(PolicyError::Blocked(_))));
        assert!(matches!(check("http://[::1]/x"), Err(PolicyError::Blocked(_))));
        assert!(matches!(check("http://[::ffff:10.0.0.1]/x"), Err(PolicyError::Blocked(_))));
        assert_eq!(check("https://example.com/a.csv"), Ok(()));
    }
}
