//! What a reader reads: a file on this machine, or an object of the staging store read where it lies. The
//! readers of delimited text and JSON only ever read from the start (to sample, to detect the encoding, to
//! scan, to load), so they take an [`Input`] and open it once per pass; a staged object is then fetched
//! again for each pass instead of being copied to the worker's disk. Readers that seek (archives, GDAL's
//! formats, spreadsheets, rasters) ask for its [`Input::path`], which only a local file has.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::staging::StagedObject;
use crate::errors::{ImportError, codes};

/// A file to read, by its name as the user knows it.
#[derive(Debug, Clone)]
pub struct Input {
    name: String,
    place: Place,
}

#[derive(Debug, Clone)]
enum Place {
    File(PathBuf),
    Object(StagedObject),
}

impl Input {
    /// The local file at `path`, known as `name`.
    pub fn file(path: impl Into<PathBuf>, name: impl Into<String>) -> Input {
        Input { name: name.into(), place: Place::File(path.into()) }
    }

    /// A staged object, known as `name`, read from the store.
    pub fn object(object: StagedObject, name: impl Into<String>) -> Input {
        Input { name: name.into(), place: Place::Object(object) }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The lowercase extension of its name ("" without one).
    pub fn extension(&self) -> String {
        Path::new(&self.name).extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).unwrap_or_default()
    }

    /// The local file, if it is one (None for an object read from the store).
    pub fn path(&self) -> Option<&Path> {
        match &self.place {
            Place::File(path) => Some(path),
            Place::Object(_) => None,
        }
    }

    /// Its size in bytes.
    pub fn size(&self) -> Result<u64, ImportError> {
        match &self.place {
            Place::File(path) => std::fs::metadata(path).map(|m| m.len()).map_err(cannot_open),
            Place::Object(object) => Ok(object.size()),
        }
    }

    /// Opens it from its start. Blocking: call from a blocking thread.
    pub fn open(&self) -> Result<Box<dyn Read + Send>, ImportError> {
        match &self.place {
            Place::File(path) => Ok(Box::new(std::fs::File::open(path).map_err(cannot_open)?)),
            Place::Object(object) => Ok(Box::new(object.open())),
        }
    }

    /// Its first `n` bytes, or all of it if shorter (an object's with one ranged GET). Blocking.
    pub fn head(&self, n: usize) -> Result<Vec<u8>, ImportError> {
        match &self.place {
            Place::File(path) => {
                let mut head = Vec::with_capacity(n.min(1 << 20));
                std::fs::File::open(path)
                    .map_err(cannot_open)?
                    .take(n as u64)
                    .read_to_end(&mut head)
                    .map_err(|e| ImportError::new(codes::FILE_IO, format!("cannot read the file: {e}")))?;
                Ok(head)
            }
            Place::Object(object) => Ok(object.head(n as u64)?.to_vec()),
        }
    }
}

fn cannot_open(e: std::io::Error) -> ImportError {
    ImportError::new(codes::FILE_IO, format!("cannot open the staged file: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_file_opens_again_and_again_and_has_a_head() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x1");
        std::fs::write(&path, b"a,b\n1,2\n").unwrap();
        let input = Input::file(&path, "Places.CSV");
        assert_eq!((input.name(), input.extension().as_str(), input.size().unwrap()), ("Places.CSV", "csv", 8));
        for _ in 0..2 {
            let mut all = String::new();
            input.open().unwrap().read_to_string(&mut all).unwrap();
            assert_eq!(all, "a,b\n1,2\n");
        }
        assert_eq!(input.head(3).unwrap(), b"a,b");
        assert_eq!(input.head(100).unwrap().len(), 8);
        assert_eq!(Input::file(dir.path().join("gone"), "gone.csv").open().err().unwrap().code, codes::FILE_IO);
    }
}
