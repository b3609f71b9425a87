//! Share links people paste turned into links that return the file itself, as the reference does for
//! GitHub and Google Sheets, plus Google Drive and Dropbox, whose share pages are HTML; and, as the reference
//! does, an OpenStreetMap map link turned into the OSM API's extract of the area the map shows.

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
        "www.openstreetmap.org" | "openstreetmap.org" => osm_extract(&url),
        _ => None,
    };
    rewritten.unwrap_or(url)
}

/// The largest area, in square degrees, the OSM API's `map` call serves.
const OSM_MAX_AREA: f64 = 0.25;
/// The map is taken as a desktop window shows it, in pixels of 256-pixel tiles.
const VIEW_PIXELS: (f64, f64) = (1024.0, 768.0);

/// `openstreetmap.org/#map=Z/LAT/LON` (also `export#map=…`, `?mlat=LAT&mlon=LON`, the older `?lat=&lon=&zoom=`)
/// as `api.openstreetmap.org/api/0.6/map?bbox=…` of the area such a window shows at that zoom, cut around its
/// centre to what the API serves. The fragment names the file (`openstreetmap.osm`): fragments are never sent.
fn osm_extract(url: &Url) -> Option<Url> {
    let query = |key: &str| url.query_pairs().find(|(k, _)| k == key).and_then(|(_, v)| v.parse::<f64>().ok());
    let from_fragment = url.fragment().and_then(|f| {
        let map = f.split('&').find_map(|p| p.strip_prefix("map="))?;
        let mut parts = map.split('/').map(|p| p.parse::<f64>().ok());
        Some((parts.next()??, parts.next()??, parts.next()??))
    });
    let (zoom, lat, lon) = match from_fragment {
        Some(found) => found,
        None => {
            let lat = query("mlat").or_else(|| query("lat"))?;
            let lon = query("mlon").or_else(|| query("lon"))?;
            (query("zoom").unwrap_or(15.0), lat, lon)
        }
    };
    if !(-85.0..=85.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) || !(0.0..=22.0).contains(&zoom) {
        return None;
    }
    // Degrees per pixel at this zoom: 360 over the world's width in pixels; latitude shrinks with cos(lat).
    let per_pixel = 360.0 / (256.0 * 2f64.powf(zoom));
    let (mut half_w, mut half_h) =
        (VIEW_PIXELS.0 / 2.0 * per_pixel, VIEW_PIXELS.1 / 2.0 * per_pixel * lat.to_radians().cos());
    let area = 4.0 * half_w * half_h;
    if area > OSM_MAX_AREA {
        let shrink = (OSM_MAX_AREA / area).sqrt();
        half_w *= shrink;
        half_h *= shrink;
    }
    let (west, east) = ((lon - half_w).max(-180.0), (lon + half_w).min(180.0));
    let (south, north) = ((lat - half_h).max(-90.0), (lat + half_h).min(90.0));
    Url::parse(&format!(
        "https://api.openstreetmap.org/api/0.6/map?bbox={west:.6},{south:.6},{east:.6},{north:.6}#openstreetmap.osm"
    ))
    .ok()
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

    /// The bbox of a rewritten map link: (west, south, east, north).
    fn bbox(link_text: &str) -> [f64; 4] {
        let url = direct_link(Url::parse(link_text).unwrap());
        assert_eq!((url.host_str(), url.path()), (Some("api.openstreetmap.org"), "/api/0.6/map"), "{url}");
        assert_eq!(url.fragment(), Some("openstreetmap.osm"));
        let (_, b) = url.query_pairs().find(|(k, _)| k == "bbox").unwrap();
        let v: Vec<f64> = b.split(',').map(|n| n.parse().unwrap()).collect();
        [v[0], v[1], v[2], v[3]]
    }

    #[test]
    fn openstreetmap_map_links_become_an_extract_of_the_area_shown() {
        // At zoom 16 a 1024x768 window spans 1024 * 360 / 2^24 degrees of longitude.
        let [w, s, e, n] = bbox("https://www.openstreetmap.org/#map=16/40.41680/-3.70380");
        assert!((e - w - 1024.0 * 360.0 / 2f64.powi(24)).abs() < 1e-5, "{w} {e}");
        assert!(((w + e) / 2.0 + 3.7038).abs() < 1e-6 && ((s + n) / 2.0 - 40.4168).abs() < 1e-6);
        assert!(n - s < e - w, "latitude shrinks with the latitude's cosine");
        // The same view by every form of link.
        for other in [
            "https://www.openstreetmap.org/export#map=16/40.41680/-3.70380",
            "https://openstreetmap.org/?mlat=40.41680&mlon=-3.70380#map=16/40.41680/-3.70380&layers=H",
            "https://www.openstreetmap.org/?mlat=40.41680&mlon=-3.70380&zoom=16",
            "https://www.openstreetmap.org/?lat=40.41680&lon=-3.70380&zoom=16",
        ] {
            assert_eq!(bbox(other), [w, s, e, n], "{other}");
        }
        // A wide view is cut around its centre to the 0.25 square degrees the API serves.
        let [w, s, e, n] = bbox("https://www.openstreetmap.org/#map=6/40.4/-3.7");
        assert!(((e - w) * (n - s) - 0.25).abs() < 1e-6, "{}", (e - w) * (n - s));
        // Other pages of the site, and views that are no place, stay as they are.
        assert_eq!(link("https://www.openstreetmap.org/about"), "https://www.openstreetmap.org/about");
        assert_eq!(link("https://www.openstreetmap.org/#map=16/95/0"), "https://www.openstreetmap.org/#map=16/95/0");
    }
}
