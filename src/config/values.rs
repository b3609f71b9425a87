//! Values of settings that are more than a number or a path, parsed where the settings are read: address
//! ranges an administrator opens, and the key that seals connector credentials. They are plain data: the
//! subsystems that act on them (the address policy, the sealer) import them from here.

use std::net::IpAddr;

use base64::Engine;
use ipnet::IpNet;
use rand::RngCore;

/// A range the administrator opened, optionally on one port only (`10.0.0.0/8:5432`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllowEntry {
    pub net: IpNet,
    pub port: Option<u16>,
}

impl AllowEntry {
    /// Whether this entry opens `ip` (on `port`, when the entry names one).
    pub fn admits(&self, ip: IpAddr, port: Option<u16>) -> bool {
        self.net.contains(&ip) && (self.port.is_none() || self.port == port)
    }
}

impl From<IpNet> for AllowEntry {
    fn from(net: IpNet) -> Self {
        AllowEntry { net, port: None }
    }
}

impl std::str::FromStr for AllowEntry {
    type Err = String;

    /// `CIDR`, `address`, `CIDR:port`, `address:port` or `[IPv6]:port`.
    fn from_str(entry: &str) -> Result<Self, String> {
        let entry = entry.trim();
        if let Ok(net) = parse_allow(entry) {
            return Ok(net.into());
        }
        let bad = || format!("'{entry}' is not an address or CIDR range, optionally followed by :port");
        let (range, port) = entry.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let range = range.trim_start_matches('[').trim_end_matches(']');
        Ok(AllowEntry { net: parse_allow(range).map_err(|_| bad())?, port: Some(port) })
    }
}

/// Parses `GEOIMPORT_CONNECTOR_ALLOW` entries: CIDRs or addresses, each optionally with `:port`.
pub fn parse_allow_entry(entry: &str) -> Result<AllowEntry, String> {
    entry.parse()
}

/// Parses `GEOIMPORT_URL_ALLOW` entries: CIDRs, or single addresses.
pub fn parse_allow(entry: &str) -> Result<IpNet, String> {
    let entry = entry.trim();
    entry
        .parse::<IpNet>()
        .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("'{entry}' is not an address or CIDR range"))
}

/// A 32-byte key, parsed from base64. Its Debug form never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl std::str::FromStr for SecretKey {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map_err(|_| "the secret key must be base64 (e.g. the output of `openssl rand -base64 32`)".to_string())?;
        let key: [u8; 32] =
            bytes.try_into().map_err(|_| "the secret key must be exactly 32 bytes once base64-decoded".to_string())?;
        Ok(SecretKey(key))
    }
}

impl SecretKey {
    pub fn generate() -> SecretKey {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        SecretKey(key)
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }
}
