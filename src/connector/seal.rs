//! Sealing connector credentials. A connection (server, user, password...) is stored in the job row only
//! as XChaCha20-Poly1305 ciphertext under a server key, so that a database dump, a backup or a curious
//! administrator reading `geoimport.imports` never sees a password in clear.
//!
//! The key comes from `GEOIMPORT_SECRET_KEY` (base64 of 32 bytes). Without it, the first process to need
//! one generates it and keeps it in `<data dir>/secret.key` (mode 0600); every process sharing that data
//! directory then uses the same key. Processes on several machines must be given the same key.
//!
//! XChaCha20 (rather than AES-GCM or the 96-bit-nonce ChaCha20) because its 192-bit nonces can be drawn at
//! random for every seal without any risk of reuse, and it is constant-time in software.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::RngCore;

pub use crate::config::SecretKey;

/// First byte of every sealed value: lets a future key or cipher change tell old values apart. Version 2
/// binds each value to its user and its import or synchronization; version 1 values (bound to their use
/// only) are still opened.
const VERSION: u8 = 2;
const LEGACY_VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
/// Binds every ciphertext to its use: a sealed connection cannot be passed off as anything else.
const CONTEXT: &[u8] = b"geoimport connector connection v1";
const CONTEXT_V2: &[u8] = b"geoimport connector connection v2";

/// What a sealed value belongs to: its user, and the import (or the synchronization, whose runs share its
/// connection) that stores it. Whoever can write the tables cannot move a sealed connection to another
/// tenant's row: it opens only where it was sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    pub user: uuid::Uuid,
    pub owner: uuid::Uuid,
}

impl Binding {
    fn aad(&self) -> Vec<u8> {
        let mut aad = CONTEXT_V2.to_vec();
        aad.extend_from_slice(self.user.as_bytes());
        aad.extend_from_slice(self.owner.as_bytes());
        aad
    }
}
/// Name of the generated key file under the data directory.
pub const KEY_FILE: &str = "secret.key";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error(
        "the sealed connection is damaged, or was sealed with another key (is GEOIMPORT_SECRET_KEY the same on every process?)"
    )]
    CannotOpen,
    #[error("cannot read or create the key file {path}: {source}")]
    KeyFile { path: PathBuf, source: std::io::Error },
    #[error("the key file {0} does not hold a valid key: {1}")]
    BadKeyFile(PathBuf, String),
}

/// Seals and opens connector connections with the server's key.
#[derive(Clone)]
pub struct Sealer {
    cipher: Arc<XChaCha20Poly1305>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    pub fn new(key: &SecretKey) -> Sealer {
        Sealer { cipher: Arc::new(XChaCha20Poly1305::new(&Key::from(*key.bytes()))) }
    }

    /// The configured key, else the key file (created on first use): `key_file`, or `secret.key` in the
    /// data directory.
    pub fn configured(key: Option<&SecretKey>, key_file: Option<&Path>, data_dir: &Path) -> Result<Sealer, SealError> {
        match key {
            Some(k) => Ok(Sealer::new(k)),
            None => {
                Ok(Sealer::new(&read_or_create(&key_file.map_or_else(|| data_dir.join(KEY_FILE), Path::to_path_buf))?))
            }
        }
    }

    /// `version || nonce || ciphertext+tag`, bound to `binding`.
    pub fn seal(&self, plaintext: &[u8], binding: Binding) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(&XNonce::from(nonce), Payload { msg: plaintext, aad: &binding.aad() })
            .expect("XChaCha20-Poly1305 seals any message shorter than 256 GiB");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    /// Opens a value sealed for `binding` (or, from before bindings, for connectors at all).
    pub fn open(&self, sealed: &[u8], binding: Binding) -> Result<Vec<u8>, SealError> {
        let (&version, rest) = sealed.split_first().ok_or(SealError::CannotOpen)?;
        let aad = match version {
            VERSION => binding.aad(),
            LEGACY_VERSION => CONTEXT.to_vec(),
            _ => return Err(SealError::CannotOpen),
        };
        if rest.len() < NONCE_LEN {
            return Err(SealError::CannotOpen);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SealError::CannotOpen)?;
        self.cipher
            .decrypt(&XNonce::from(nonce), Payload { msg: ciphertext, aad: &aad })
            .map_err(|_| SealError::CannotOpen)
    }
}

/// Reads the key file, creating it (readable by its owner only) if there is none yet. Two processes
/// starting together cannot end with different keys: the file is created exclusively, and the loser of
/// that race reads the winner's key. A key file that others can read, or that belongs to someone else, is
/// refused: whoever can read it can open every sealed password.
fn read_or_create(path: &Path) -> Result<SecretKey, SealError> {
    let path = path.to_path_buf();
    let io = |source| SealError::KeyFile { path: path.clone(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let fresh = SecretKey::generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut file) => {
            // Written to a file nobody else reads yet; a crash before the write leaves an empty file,
            // which the read below reports rather than silently replacing (sealed rows may depend on it).
            file.write_all(fresh.to_base64().as_bytes()).and_then(|_| file.sync_all()).map_err(io)?;
            tracing::warn!(
                path = %path.display(),
                "GEOIMPORT_SECRET_KEY is not set: connector credentials are sealed with a key generated and kept \
                 in this file. Deployments with processes on several machines must set the same \
                 GEOIMPORT_SECRET_KEY on all of them"
            );
            Ok(fresh)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            use std::os::unix::fs::MetadataExt;
            let meta = std::fs::symlink_metadata(&path).map_err(io)?;
            if !meta.is_file() || meta.mode() & 0o077 != 0 || meta.uid() != nix::unistd::geteuid().as_raw() {
                return Err(SealError::BadKeyFile(
                    path.clone(),
                    "it must be a regular file of this user's that nobody else may read (chmod 600)".into(),
                ));
            }
            let text = std::fs::read_to_string(&path).map_err(io)?;
            text.parse().map_err(|e| SealError::BadKeyFile(path.clone(), e))
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding() -> Binding {
        Binding { user: uuid::Uuid::new_v4(), owner: uuid::Uuid::new_v4() }
    }

    #[test]
    fn sealed_values_open_only_with_their_key() {
        let sealer = Sealer::new(&SecretKey::generate());
        let b = binding();
        let sealed = sealer.seal(b"{\"password\":\"hunter2\"}", b);
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(sealer.open(&sealed, b).unwrap(), b"{\"password\":\"hunter2\"}");
        // two seals of the same text differ (fresh nonces)
        assert_ne!(sealer.seal(b"x", b), sealer.seal(b"x", b));
        let other = Sealer::new(&SecretKey::generate());
        assert!(other.open(&sealed, b).is_err());
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(sealer.open(&tampered, b).is_err());
        assert!(sealer.open(&[], b).is_err());
    }

    #[test]
    fn a_sealed_value_opens_only_for_its_user_and_row() {
        let sealer = Sealer::new(&SecretKey::generate());
        let b = binding();
        let sealed = sealer.seal(b"secret", b);
        assert!(sealer.open(&sealed, Binding { user: uuid::Uuid::new_v4(), ..b }).is_err(), "another user");
        assert!(sealer.open(&sealed, Binding { owner: uuid::Uuid::new_v4(), ..b }).is_err(), "another row");
    }

    #[test]
    fn values_sealed_before_bindings_still_open() {
        let key = SecretKey::generate();
        let sealer = Sealer::new(&key);
        let nonce = [7u8; NONCE_LEN];
        let cipher = XChaCha20Poly1305::new(&Key::from(*key.bytes()));
        let body = cipher.encrypt(&XNonce::from(nonce), Payload { msg: b"old", aad: CONTEXT }).unwrap();
        let mut legacy = vec![LEGACY_VERSION];
        legacy.extend_from_slice(&nonce);
        legacy.extend_from_slice(&body);
        assert_eq!(sealer.open(&legacy, binding()).unwrap(), b"old");
    }

    #[test]
    fn keys_parse_from_base64_of_32_bytes() {
        let key = SecretKey::generate();
        assert_eq!(key.to_base64().parse::<SecretKey>().unwrap(), key);
        assert!("not base64!".parse::<SecretKey>().is_err());
        assert!("c2hvcnQ=".parse::<SecretKey>().is_err());
        assert_eq!(format!("{key:?}"), "SecretKey(..)");
    }

    #[test]
    fn the_generated_key_file_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        let a = read_or_create(&path).unwrap();
        let b = read_or_create(&path).unwrap();
        assert_eq!(a, b);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // A key others can read is refused rather than used.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(read_or_create(&path), Err(SealError::BadKeyFile(..))));
    }
}
