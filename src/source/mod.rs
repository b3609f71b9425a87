//! Where an import's bytes come from: uploads staged by the API, and URLs downloaded by the workers (with
//! the address policy that keeps them off private networks).

pub mod address_policy;
pub mod disk;
pub mod download;
pub mod encoding;
pub mod fetched;
pub mod ftp;
pub mod input;
pub mod meter;
pub mod naming;
pub mod share_links;
pub mod staging;

/// What the status shows as `display_name` for a URL import: the last path segment, decoded (the
/// reference's choice), or the host when the path is empty.
pub fn display_name_of_url(url: &url::Url) -> String {
    let last = url.path_segments().and_then(|mut s| s.next_back()).unwrap_or("");
    let decoded = percent_encoding::percent_decode_str(last).decode_utf8_lossy().into_owned();
    if decoded.is_empty() { url.host_str().unwrap_or("download").to_string() } else { decoded }
}

/// A URL as the status, the synchronization and the logs show it: without its password (an FTP URL may
/// carry one), the user kept.
pub fn shown_url(raw: &str) -> String {
    match url::Url::parse(raw.trim()) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(None);
            url.to_string()
        }
        _ => raw.trim().to_string(),
    }
}

/// Checks a URL given for import, as the API does before accepting it: it must parse, be http(s), and
/// not point at an address the policy refuses (share links are first turned into download links). A name
/// that does not resolve now is accepted; the download will report it (1102).
pub async fn accept_url(policy: &address_policy::AddressPolicy, raw: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(raw.trim()).map_err(|e| format!("{raw} is not a valid URL ({e})"))?;
    let url = share_links::direct_link(url);
    policy.check_url(&url).map_err(|e| e.to_string())?;
    if let Some(url::Host::Domain(host)) = url.host() {
        let port = url.port_or_known_default().unwrap_or(80);
        if let Err(address_policy::ResolveError::Policy(address_policy::PolicyError::Blocked(ip))) =
            policy.resolve(host, port).await
        {
            return Err(format!("{host} resolves to {ip}, a private or reserved address that imports may not reach"));
        }
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_password_is_never_shown() {
        assert_eq!(super::shown_url("ftp://ana:s3cret@example.com/a.csv"), "ftp://ana@example.com/a.csv");
        assert_eq!(super::shown_url(" https://example.com/a.csv "), "https://example.com/a.csv");
    }
}
