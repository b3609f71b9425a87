//! The CARTO import error catalogue: every numeric code a client may see, its short title (kept exactly as
//! the reference has it, because clients match on codes and titles) and an explanation in our own words.
//!
//! This is the only place that knows the codes. The pipeline raises [`ImportError`], which carries a code
//! and a detail about this particular import; the status endpoint renders both.

use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// Who is to blame for an error, as the reference's `get_error_text.source` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorSource {
    User,
    Cartodb,
    External,
}

/// One entry of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct CatalogEntry {
    pub code: i32,
    pub title: &'static str,
    pub explanation: &'static str,
    pub source: ErrorSource,
}

use ErrorSource::{Cartodb, External, User};

macro_rules! catalog {
    ($($code:literal, $title:literal, $source:ident, $explanation:literal;)*) => {
        /// Every code of the reference's table, in its order.
        pub const CATALOG: &[CatalogEntry] = &[
            $(CatalogEntry { code: $code, title: $title, explanation: $explanation, source: $source },)*
        ];
    };
}

catalog! {
    1, "Install error", Cartodb,
        "The server is missing a component it needs to import files. An administrator has to fix the installation.";
    1000, "File I/O error", Cartodb,
        "The uploaded file could not be read back from the staging area. Check that it opens locally and send it again.";
    1001, "Download error", User,
        "The remote server answered the download with an error. Make sure the file is reachable at that address.";
    1002, "Unsupported/Unrecognized file type", User,
        "We could not recognise a format we import in this file. Check its extension and contents, or convert it to CSV, GeoJSON, Shapefile or GeoPackage.";
    1003, "Decompression error", User,
        "The archive could not be unpacked; it may be damaged or truncated. Build it again from the original files and upload the new copy.";
    1004, "XLS/XLSX Error", User,
        "The spreadsheet could not be opened or holds data we cannot load. Save the sheet as CSV and upload that instead.";
    1005, "Empty file", User,
        "The file has no data we can load: it is empty, or it has no header row. Check that you uploaded the right file.";
    1006, "Invalid SHP file", User,
        "The shapefile is incomplete. A shapefile needs its .shp, .shx and .dbf parts (and ideally .prj) together in one archive.";
    1007, "Too many nodes", User,
        "The map service refused the request because the area holds too many nodes. Ask for a smaller area or use a full extract.";
    1008, "GDrive access forbidden", User,
        "Google refused access to the file. Connect your Google Drive account again and retry.";
    1009, "Twitter Server Error", External,
        "The Twitter service answered with an error. Try again later.";
    1010, "Not a file", User,
        "The request did not contain a file to import. Send the data as a multipart field named 'file', or give a URL.";
    1011, "Error retrieving data from datasource", User,
        "The data source answered, but the data could not be fetched. Check that the file or table still exists.";
    1012, "Error connecting to datasource", External,
        "We could not connect to the data source. Check that it is online and that the credentials are still valid.";
    1013, "Invalid ArcGIS version", User,
        "The ArcGIS server is too old to be read. Only version 10.1 and later are supported.";
    1014, "Invalid name", User,
        "No valid table name could be made for this data, usually because too many tables already have similar names. Rename the file and try again.";
    1015, "No results", User,
        "The request worked but returned no rows to import.";
    1016, "Dropbox permission revoked", User,
        "Access to your Dropbox files was withdrawn. Import the file again to grant it.";
    1017, "GDrive file was deleted", User,
        "The Google Drive file behind this synchronization no longer exists. Import it again.";
    1018, "File is password protected", User,
        "The archive is protected by a password, which we cannot enter. Remove the protection and upload it again.";
    1019, "Too Many Layers", User,
        "The file has more layers than one import may create. Split it into several files.";
    1020, "Download timeout", User,
        "Downloading the file took longer than allowed. Check that the remote server is not slow, then try again.";
    1021, "Box permission revoked", User,
        "Access to your Box files was withdrawn. Import the file again to grant it.";
    1022, "All tables were skipped", User,
        "The 'skip' collision strategy was chosen and every table this import would make already exists, so nothing was imported.";
    1023, "ArcGIS server misconfiguration", User,
        "The ArcGIS server does not allow queries. Enable the 'execute queries' capability on it.";
    1100, "Download file not found", User,
        "The URL answered 'not found' (HTTP 404). Check the address.";
    1101, "Forbidden file URL", User,
        "The URL requires authentication or refused access (HTTP 401 or 403). Make the file public or use a link that carries its own access token.";
    1102, "Unknown server URL", User,
        "The URL's host could not be reached: its name does not resolve, it refused the connection, or it points to a private network we do not download from.";
    1103, "Partial file error", User,
        "The download ended before the announced size was reached. The remote server may have cut the transfer; try again.";
    1500, "Connector error", User,
        "The database connector could not read the requested data.";
    1501, "Connectors disabled", User,
        "This kind of connector is not enabled for your account.";
    1502, "Connector invalid parameters", User,
        "The connector parameters are not valid.";
    2001, "Unable to load data", User,
        "The data could not be written into the database.";
    2002, "Encoding detection error", User,
        "We could not make sense of the file's text in any character encoding. Save it as UTF-8 and try again.";
    2003, "Malformed CSV", User,
        "The CSV file is malformed beyond what we can repair, for example an unterminated quote that swallows the rest of the file.";
    2004, "Too many columns", User,
        "The data has more columns than a PostgreSQL table can hold (1600, including the three we add). Remove the columns you do not need or split the file.";
    2005, "Duplicated column", User,
        "Two or more columns have the same name. Make the column names unique and try again.";
    2006, "Encoding error", User,
        "The file's text could not be read in its encoding. Save it as UTF-8 and try again.";
    2007, "Encoding error", User,
        "Encoding problems left no rows to import. Save the file as UTF-8 and try again.";
    2008, "Malformed XLS", User,
        "The spreadsheet is damaged or in a format we do not read. Open it and save it as XLSX or CSV.";
    2009, "KML without style Id", User,
        "A style element of the KML file has no id attribute. Add one, or remove the style.";
    2010, "Incompatible CARTO table", User,
        "The loaded data could not be given the columns every table needs (cartodb_id, the_geom, the_geom_webmercator).";
    2011, "Invalid cartodb_id column", User,
        "The file's cartodb_id column does not hold unique, non-null integers. Rename that column and try again.";
    2012, "Incompatible schemas", User,
        "The 'overwrite' collision strategy was chosen, but the new data lacks columns of the existing table or gives them other types, so the table was left as it was.";
    2013, "Cannot overwrite table", User,
        "The destination table could not be replaced, usually because other database objects (such as views) depend on it.";
    2014, "Invalid geometries", User,
        "The file holds geometries that are invalid and could not be repaired.";
    3007, "JSON may not be valid GeoJSON", User,
        "The JSON file is not valid GeoJSON, nor an array of flat objects.";
    3008, "Unknown SRID", User,
        "The data's coordinate reference system is not one the database knows. Reproject it to EPSG:4326 and try again.";
    3009, "SHP Normalization error", User,
        "We could not work out the encoding or projection of the shapefile. Convert it to UTF-8 and EPSG:4326 and try again.";
    3101, "Missing projection (.prj) file", User,
        "The shapefile has no .prj file. (Unused: shapefiles without one are read as EPSG:4326.)";
    3201, "Geometry Collection not supported", User,
        "The data holds geometry collections that cannot be stored.";
    3202, "Empty KML", User,
        "This KML file holds no data of its own, only a link to another KML file. Download that file and import it instead.";
    8001, "Over account storage limit, please upgrade", User,
        "This import would take your account over its storage quota. Free some space or ask for a larger quota.";
    8002, "You have reached the limit of datasets for your plan. Upgrade your account to get unlimited datasets", User,
        "This import would take your account over its maximum number of tables. Delete some tables or ask for a larger limit.";
    8003, "Error creating table from SQL query", User,
        "The table could not be created from the query. Check that the query does not return duplicate column names.";
    8004, "Merge with unmatching column types", User,
        "The columns chosen for the merge have different types in the two tables.";
    8005, "Max layers per map reached", User,
        "The map cannot hold more layers.";
    8006, "Not enough Twitter credits", User,
        "There are not enough Twitter credits left for this import.";
    8007, "Over account maps limit, please upgrade", User,
        "Your account cannot hold more maps.";
    8008, "Over account datasets limit or publication is disabled in your account", User,
        "Your account cannot publish more datasets.";
    6666, "Dataset too big", User,
        "The data is larger than your account may import at once. Split it into smaller files, or ask for a larger limit.";
    6667, "Import timed out", Cartodb,
        "The import took longer than allowed and was stopped. Try again; if it keeps happening, split the data.";
    6668, "Too many table rows", User,
        "The data has more rows than your account allows in one table.";
    6669, "Too many concurrent imports", User,
        "You have as many imports running as your account allows. Wait for one to finish.";
    6670, "Too many named map templates", User,
        "The limit of named map templates has been reached.";
    6671, "Stuck import job", Cartodb,
        "The import was interrupted repeatedly (its worker stopped or lost contact) and was given up. Please try again.";
    // geoimport's own: the reference cannot cancel imports, so it has no code for one that was.
    6672, "Import cancelled", User,
        "The import was cancelled at its owner's request before it completed; no table was created.";
    // geoimport's own: an operator disabled or deleted the account while the import waited or ran.
    6673, "Account disabled", User,
        "The account was disabled or deleted by an operator before the import completed; no table was created.";
    99999, "Unknown", Cartodb,
        "Something unexpected went wrong while importing. Try again; if it happens again, report the import id to your administrator.";
}

/// Looks a code up in the catalogue.
pub fn lookup(code: i32) -> Option<&'static CatalogEntry> {
    CATALOG.iter().find(|e| e.code == code)
}

/// The failure of one import, as the pipeline reports it: a catalogue code plus what happened here.
#[derive(Debug, Clone, thiserror::Error)]
#[error("error {code}: {detail}")]
pub struct ImportError {
    pub code: i32,
    pub detail: String,
    /// The HTTP status a download answered with, shown as `http_response_code`.
    pub http_status: Option<u16>,
}

impl ImportError {
    pub fn new(code: i32, detail: impl Into<String>) -> Self {
        debug_assert!(lookup(code).is_some(), "code {code} is not in the catalogue");
        ImportError { code, detail: detail.into(), http_status: None }
    }

    pub fn with_http_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }

    /// Anything that fits no better code.
    pub fn unknown(detail: impl Into<String>) -> Self {
        Self::new(codes::UNKNOWN, detail)
    }

    /// The same error with the server's own paths under `data_dir` taken out of its text: a user learns
    /// which file inside their upload failed, never where the server keeps it.
    pub fn without_paths(mut self, data_dir: &std::path::Path) -> Self {
        let mut roots = vec![data_dir.to_string_lossy().into_owned()];
        if let Ok(real) = std::fs::canonicalize(data_dir) {
            roots.push(real.to_string_lossy().into_owned());
        }
        for root in roots.iter().filter(|r| !r.is_empty()) {
            while let Some(at) = self.detail.find(root.as_str()) {
                // The path goes up to the next blank or quote; only its last part (the file's name) stays.
                let end = self.detail[at..].find([' ', '\'', '"', ':', ',']).map_or(self.detail.len(), |e| at + e);
                let name = self.detail[at..end].rsplit('/').next().unwrap_or("").to_string();
                self.detail.replace_range(at..end, &name);
            }
        }
        self
    }
}

/// What a blocking pass returns when its job was stopped (nobody reads it: the job has already ended).
pub fn stopped() -> ImportError {
    ImportError::new(codes::CANCELLED, "the import was stopped while reading its files")
}

/// [`stopped`] if `stop` is cancelled.
pub fn check_stop(stop: &CancellationToken) -> Result<(), ImportError> {
    if stop.is_cancelled() { Err(stopped()) } else { Ok(()) }
}

#[cfg(test)]
mod path_tests {
    use super::*;

    #[test]
    fn server_paths_leave_error_texts_and_file_names_stay() {
        let e = ImportError::new(codes::FILE_IO, "cannot create /srv/geo/data/work/1234/unpacked/roads.shp: denied");
        let e = e.without_paths(std::path::Path::new("/srv/geo/data"));
        assert_eq!(e.detail, "cannot create roads.shp: denied");
        let e = ImportError::unknown("GDAL said '/srv/geo/data/staging/9/x.gpx' is odd")
            .without_paths("/srv/geo/data".as_ref());
        assert_eq!(e.detail, "GDAL said 'x.gpx' is odd");
    }
}

/// Names for the codes the pipeline raises, so that call sites read as words.
pub mod codes {
    pub const FILE_IO: i32 = 1000;
    pub const DOWNLOAD_ERROR: i32 = 1001;
    pub const UNSUPPORTED_FORMAT: i32 = 1002;
    pub const DECOMPRESSION: i32 = 1003;
    pub const EMPTY_FILE: i32 = 1005;
    pub const INVALID_SHP: i32 = 1006;
    pub const NOT_A_FILE: i32 = 1010;
    pub const PASSWORD_PROTECTED: i32 = 1018;
    pub const TOO_MANY_LAYERS: i32 = 1019;
    pub const DOWNLOAD_TIMEOUT: i32 = 1020;
    pub const ALL_TABLES_SKIPPED: i32 = 1022;
    pub const DOWNLOAD_NOT_FOUND: i32 = 1100;
    pub const DOWNLOAD_FORBIDDEN: i32 = 1101;
    pub const UNKNOWN_SERVER: i32 = 1102;
    pub const PARTIAL_FILE: i32 = 1103;
    pub const CONNECTOR_ERROR: i32 = 1500;
    pub const CONNECTOR_INVALID_PARAMETERS: i32 = 1502;
    pub const UNABLE_TO_LOAD: i32 = 2001;
    pub const ENCODING_DETECTION: i32 = 2002;
    pub const MALFORMED_CSV: i32 = 2003;
    pub const TOO_MANY_COLUMNS: i32 = 2004;
    pub const MALFORMED_XLS: i32 = 2008;
    pub const INCOMPATIBLE_SCHEMAS: i32 = 2012;
    pub const CANNOT_OVERWRITE: i32 = 2013;
    pub const INVALID_GEOMETRIES: i32 = 2014;
    pub const INVALID_GEOJSON: i32 = 3007;
    pub const UNKNOWN_SRID: i32 = 3008;
    pub const EMPTY_KML: i32 = 3202;
    pub const STORAGE_QUOTA: i32 = 8001;
    pub const TABLE_QUOTA: i32 = 8002;
    pub const DATASET_TOO_BIG: i32 = 6666;
    pub const TIMED_OUT: i32 = 6667;
    pub const TOO_MANY_ROWS: i32 = 6668;
    pub const STUCK: i32 = 6671;
    /// Not the reference's: `POST /api/v1/imports/{id}/cancel` is ours.
    pub const CANCELLED: i32 = 6672;
    /// Not the reference's: operators disable and delete accounts with `geoimport user`.
    pub const ACCOUNT_DISABLED: i32 = 6673;
    pub const UNKNOWN: i32 = 99999;
}

/// `get_error_text` of the status JSON.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorText {
    pub title: String,
    pub what_about: String,
    pub source: String,
}

/// Renders the status's `get_error_text` for a code, folding this import's detail into the explanation
/// so that clients which only show `what_about` still tell the user what happened.
pub fn error_text(code: i32, detail: Option<&str>) -> ErrorText {
    let entry = lookup(code).or_else(|| lookup(codes::UNKNOWN)).expect("99999 is in the catalogue");
    let what_about = match detail.filter(|d| !d.is_empty()) {
        Some(d) => format!("{} Details: {d}", entry.explanation),
        None => entry.explanation.to_string(),
    };
    let source = serde_json::to_value(entry.source)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "cartodb".into());
    ErrorText { title: entry.title.to_string(), what_about, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_every_named_code_is_catalogued() {
        let mut seen = std::collections::HashSet::new();
        for e in CATALOG {
            assert!(seen.insert(e.code), "duplicate code {}", e.code);
        }
        for code in [
            codes::FILE_IO,
            codes::UNSUPPORTED_FORMAT,
            codes::DECOMPRESSION,
            codes::INVALID_SHP,
            codes::PASSWORD_PROTECTED,
            codes::TOO_MANY_LAYERS,
            codes::MALFORMED_XLS,
            codes::INVALID_GEOJSON,
            codes::UNKNOWN_SRID,
            codes::EMPTY_KML,
            codes::EMPTY_FILE,
            codes::NOT_A_FILE,
            codes::ALL_TABLES_SKIPPED,
            codes::DOWNLOAD_ERROR,
            codes::DOWNLOAD_TIMEOUT,
            codes::DOWNLOAD_NOT_FOUND,
            codes::DOWNLOAD_FORBIDDEN,
            codes::UNKNOWN_SERVER,
            codes::PARTIAL_FILE,
            codes::UNABLE_TO_LOAD,
            codes::ENCODING_DETECTION,
            codes::MALFORMED_CSV,
            codes::TOO_MANY_COLUMNS,
            codes::INCOMPATIBLE_SCHEMAS,
            codes::CANNOT_OVERWRITE,
            codes::INVALID_GEOMETRIES,
            codes::STORAGE_QUOTA,
            codes::TABLE_QUOTA,
            codes::DATASET_TOO_BIG,
            codes::TIMED_OUT,
            codes::TOO_MANY_ROWS,
            codes::STUCK,
            codes::CANCELLED,
            codes::ACCOUNT_DISABLED,
            codes::UNKNOWN,
        ] {
            assert!(lookup(code).is_some(), "{code}");
        }
        // The reference's 67, 6672 (cancelled) and 6673 (account disabled).
        assert_eq!(CATALOG.len(), 69);
    }

    #[test]
    fn error_text_keeps_title_and_adds_detail() {
        let t = error_text(1005, Some("the file is 0 bytes long"));
        assert_eq!(t.title, "Empty file");
        assert_eq!(t.source, "user");
        assert!(t.what_about.ends_with("Details: the file is 0 bytes long"));
        assert_eq!(error_text(123456, None).title, "Unknown");
    }
}
