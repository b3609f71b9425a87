//! Share links people paste turned into links that return the file itself, as the reference does for
//! GitHub and Google Sheets, plus Google Drive and Dropbox, whose share pages are HTML.

use url::Url;

/// The download URL behind a share link; any other URL unchanged.
pub fn direct_link(url: Url) -> Url {
    let host = url.host_str().unwrap_or("").to_ascii_lowercase();
    let segments: Vec<String> = url.path_segments().map(|s| s.map(str::to_owned).collect()).unwrap_or_default();
    let rewritten = match host.as_str() {
        // github.com/<owner>/<repo>/blob/<ref>/<path> -> raw.githubusercontent.com/<owner>/<repo>/<ref>/<path>
        "github.com" | "www.github.com" if segments.len() > 4 && segments[2] == "blob" => {
            let path = [&segments[..2], &segments[3..]].concat().join("/");
            Url::parse(&format!("https://raw.githubusercontent.com/{path}")).ok()
        }
        // docs.google.com/spreadsheets/d/<id>/edit#gid=<gid> -> .../export?format=csv&gid=<gid>
        "docs.google.com" if segments.len() >= 3 && segments[0] == "spreadsheets" && segments[1] == "d" => {
            let gid = url
                .fragment()
                .and_then(|f| f.strip_prefix("gid="))
                .map(str::to_owned)
                .or_else(|| url.query_pairs().find(|(k, _)| k == "gid").map(|(_, v)| v.into_owned()));
            let mut link = format!("https://docs.google.com/spreadsheets/d/{}/export?format=csv", segments[2]);
            if let Some(gid) = gid {
                link.push_str(&format!("&gid={gid}"));
            }
            Url::parse(&link).ok()
        }
        // drive.google.com/file/d/<id>/view -> drive.google.com/uc?export=download&id=<id>
        "drive.google.com" if segments.len() >= 3 && segments[0] == "file" && segments[1] == "d" => {
            Url::parse(&format!("https://drive.google.com/uc?export=download&id={}", segments[2])).ok()
        }
        // dropbox.com/...?dl=0 -> ?dl=1
        "www.dropbox.com" | "dropbox.com" => {
            let mut u = url.clone();
            let pairs: Vec<(String, String)> =
                url.query_pairs().filter(|(k, _)| k != "dl").map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
            u.query_pairs_mut().clear().extend_pairs(pairs).append_pair("dl", "1");
            Some(u)
        }
        _ => None,
    };
    rewritten.unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(s: &str) -> String {
        direct_link(Url::parse(s).unwrap()).to_string()
    }

    #[test]
    fn share_links_become_download_links() {
        assert_eq!(
            link("https://github.com/owner/repo/blob/main/data/places.csv"),
            "https://raw.githubusercontent.com/owner/repo/main/data/places.csv"
        );
        assert_eq!(
            link("https://docs.google.com/spreadsheets/d/abc123/edit#gid=42"),
            "https://docs.google.com/spreadsheets/d/abc123/export?format=csv&gid=42"
        );
        assert_eq!(
            link("https://docs.google.com/spreadsheets/d/abc123/edit"),
            "https://docs.google.com/spreadsheets/d/abc123/export?format=csv"
        );
        assert_eq!(
            link("https://drive.google.com/file/d/XYZ/view?usp=sharing"),
            "https://drive.google.com/uc?export=download&id=XYZ"
        );
        assert_eq!(link("https://www.dropbox.com/s/k/data.csv?dl=0"), "https://www.dropbox.com/s/k/data.csv?dl=1");
        assert_eq!(link("https://example.com/a.csv?x=1"), "https://example.com/a.csv?x=1");
        assert_eq!(link("https://github.com/owner/repo"), "https://github.com/owner/repo");
    }
}
