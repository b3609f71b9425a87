//! The objects built from the settings once, at start, and shared by the API and the workers: the staging
//! area, the downloader and its address policy, and what connector imports need (the sealer, the policy
//! for database addresses); and the limits a new user gets. Building them in one place means a bad key
//! stops the process at start, and no job rebuilds them.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use sqlx::PgPool;

use crate::config::{Settings, UserDefaults};
use crate::connector::ConnectorEnv;
use crate::connector::seal::{SealError, Sealer};
use crate::formats::ogr::process::GdalOptions;
use crate::source::address_policy::AddressPolicy;
use crate::source::download::{DownloadOptions, Downloader};
use crate::source::staging::{StagingArea, StagingError};
use crate::users::{ExtraLimits, Limits};

#[derive(Debug, thiserror::Error)]
pub enum ServicesError {
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error("GEOIMPORT_URL_CA_FILE {0}: {1}")]
    CaFile(std::path::PathBuf, String),
    #[error("the downloader could not be built: {0}")]
    Downloads(String),
    #[error(transparent)]
    Staging(#[from] StagingError),
}

/// The certificates of a PEM file (at least one).
fn read_certificates(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, ServicesError> {
    let failed = |e: String| ServicesError::CaFile(path.to_path_buf(), e);
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| failed(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| failed(e.to_string()))?;
    if certs.is_empty() {
        return Err(failed("no certificate in the file".into()));
    }
    Ok(certs)
}

pub struct Services {
    /// Where uploaded files (and downloads between attempts) wait for their job: shared by every process.
    pub staging: StagingArea,
    /// Which addresses URL imports may reach.
    pub url_policy: AddressPolicy,
    /// The HTTP client for URL imports, under `url_policy`.
    pub downloader: Downloader,
    pub connectors: ConnectorEnv,
    /// How GDAL readers are started.
    pub gdal: GdalOptions,
}

impl Services {
    /// Builds the services `settings` describe; reads (or makes) the sealing key, and the CA file.
    pub async fn build(settings: &Settings, pool: &PgPool) -> Result<Arc<Services>, ServicesError> {
        let runtime = &settings.runtime;
        let sealer =
            Sealer::configured(runtime.secret_key.as_ref(), runtime.secret_key_file.as_deref(), &settings.data_dir)?;
        let url_policy = AddressPolicy::new(runtime.url_allow.clone());
        let extra_roots = match &runtime.url_ca_file {
            Some(path) => read_certificates(path)?,
            None => Vec::new(),
        };
        let downloader = Downloader::new(DownloadOptions {
            policy: url_policy.clone(),
            connect_timeout: runtime.connect_timeout(),
            timeout: Duration::from_secs(runtime.download_timeout_secs.max(1)),
            extra_roots,
        })
        .map_err(ServicesError::Downloads)?;
        // This server's own database is refused whatever the allow-list says.
        let connector_policy =
            AddressPolicy::new(runtime.connector_allow.clone()).refusing(crate::db::own_addresses(pool).await);
        Ok(Arc::new(Services {
            staging: StagingArea::open(&settings.data_dir, settings.staging_url.as_deref())?,
            url_policy,
            downloader,
            connectors: ConnectorEnv { sealer, policy: connector_policy, connect_timeout: runtime.connect_timeout() },
            gdal: gdal_options(settings),
        }))
    }
}

fn gdal_options(settings: &Settings) -> GdalOptions {
    let runtime = &settings.runtime;
    GdalOptions {
        exe: runtime.gdal_reader.clone().unwrap_or_else(crate::formats::ogr::process::default_reader),
        root: std::fs::canonicalize(&settings.data_dir).unwrap_or_else(|_| settings.data_dir.clone()),
        hide: runtime.secret_key_file.iter().cloned().collect(),
        memory_mb: runtime.gdal_memory_mb,
        cpu_secs: runtime.hooks.gdal_cpu_secs.unwrap_or(runtime.job_timeout_secs).max(1),
        fault: runtime.hooks.gdal_fault.clone(),
    }
}

/// A new user's limits: the server's defaults, and those given for this user alone.
pub fn user_limits(defaults: &UserDefaults, extra: ExtraLimits) -> Limits {
    Limits {
        max_file_size: defaults.max_file_size,
        max_concurrent_imports: defaults.max_concurrent_imports,
        max_staged_bytes: defaults.max_staged_bytes,
        max_pending_imports: defaults.max_pending_imports,
        extra,
    }
}
