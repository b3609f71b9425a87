//! Stream-compressed files (gzip, bzip2) and tar archives, possibly one inside the other.
//!
//! Tar archives are read entry by entry in the tar crate's raw mode, and the entries that only describe the
//! next one (GNU long names and long links, PAX extended headers) are read here: the crate would read each
//! whole into memory, whatever size its header declares, before any limit applied. Here a description larger
//! than [`MAX_METADATA_BYTES`] fails the import before a byte of it is read.

use std::cell::Cell;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::budget::{Budget, bomb, corrupt, safe_join};
use crate::errors::{ImportError, codes};

/// Largest GNU long name or long link, or PAX header, we read. Real ones hold a path (at most 4 KiB on
/// Linux) and a few numbers.
pub const MAX_METADATA_BYTES: u64 = 64 << 10;

/// A decompressed stream, and the count of compressed bytes read so far to produce it.
pub struct Decompressed {
    pub reader: Box<dyn Read>,
    pub packed_read: Rc<Cell<u64>>,
}

pub fn gunzip(path: &Path, budget: &Budget) -> Result<Decompressed, ImportError> {
    let (file, packed_read) = open(path, budget)?;
    Ok(Decompressed { reader: Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file))), packed_read })
}

pub fn bunzip(path: &Path, budget: &Budget) -> Result<Decompressed, ImportError> {
    let (file, packed_read) = open(path, budget)?;
    Ok(Decompressed { reader: Box::new(bzip2::read::MultiBzDecoder::new(BufReader::new(file))), packed_read })
}

/// The compressed file, counted and stoppable.
fn open(path: &Path, budget: &Budget) -> Result<(impl Read + 'static, Rc<Cell<u64>>), ImportError> {
    let file =
        File::open(path).map_err(|e| ImportError::new(codes::FILE_IO, format!("cannot open the archive: {e}")))?;
    let read = Rc::new(Cell::new(0));
    Ok((budget.meter(file, read.clone()), read))
}

/// Writes a decompressed stream to `target`; its expansion ratio is checked as bytes come out.
pub fn extract_single(source: Decompressed, target: &Path, budget: &mut Budget) -> Result<(), ImportError> {
    budget.entry()?;
    let written = Rc::new(Cell::new(0));
    let mut reader = budget.meter(source.reader, written.clone());
    let packed = Some(source.packed_read);
    copy_counted(&mut reader, target, budget, &|b: &Budget| stream_ratio(b, &written, packed.as_ref()))
}

/// The expansion ratio of a compressed stream: what came out against what was read.
fn stream_ratio(budget: &Budget, unpacked: &Cell<u64>, packed: Option<&Rc<Cell<u64>>>) -> Result<(), ImportError> {
    match packed {
        Some(p) => budget.check_ratio(unpacked.get(), p.get(), "the archive"),
        None => Ok(()),
    }
}

/// Unpacks a tar stream. With `packed` (the compressed bytes read, for a compressed tar), the whole stream's
/// expansion ratio is checked: every byte the tar holds counts, including headers and skipped entries.
pub fn extract_tar(
    source: impl Read,
    packed: Option<Rc<Cell<u64>>>,
    dest: &Path,
    budget: &mut Budget,
) -> Result<(), ImportError> {
    let unpacked = Rc::new(Cell::new(0));
    let ratio = |b: &Budget| stream_ratio(b, &unpacked, packed.as_ref());
    // Why a read failed: the ratio (checked as bytes come out, skipped ones too), the stop, or damage.
    let failed = |b: &Budget, e: ImportError| ratio(b).err().unwrap_or_else(|| b.or_stopped(e));
    let metered = match &packed {
        Some(p) => budget.meter_expansion(source, unpacked.clone(), p.clone()),
        None => budget.meter(source, unpacked.clone()),
    };
    let mut archive = tar::Archive::new(metered);
    let mut next = Described::default();
    for entry in archive.entries().map_err(corrupt)?.raw(true) {
        let mut entry = entry.map_err(|e| failed(budget, corrupt(e)))?;
        let kind = entry.header().entry_type();
        if next.absorb(&mut entry, kind).map_err(|e| failed(budget, e))? {
            continue;
        }
        let described = std::mem::take(&mut next);
        budget.entry()?;
        let name = described.path.unwrap_or_else(|| entry.path_bytes().into_owned());
        let name = bytes_to_path(name);
        if let Some(size) = described.size
            && size != entry.size()
        {
            return Err(corrupt(format!(
                "a PAX header gives '{}' a size its own header does not, which we do not read",
                name.display()
            )));
        }
        let target = safe_join(dest, &name)?;
        match kind {
            tar::EntryType::Directory => std::fs::create_dir_all(&target).map_err(write_error)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(write_error)?;
                }
                copy_counted(&mut entry, &target, budget, &ratio).map_err(|e| failed(budget, e))?;
            }
            // A sparse file's map continues in extra blocks that only the crate's processed mode reads;
            // skipping them in raw mode would take them for the next header.
            tar::EntryType::GNUSparse if entry.header().as_gnu().is_some_and(|g| g.is_extended()) => {
                return Err(corrupt(format!("'{}' is a sparse file, which we do not unpack", name.display())));
            }
            other => tracing::info!(entry = %name.display(), kind = ?other, "skipping a non-file archive entry"),
        }
    }
    if !next.is_empty() {
        return Err(corrupt("the archive ends with a header that describes an entry that is not there"));
    }
    Ok(())
}

/// What metadata entries said about the entry that follows them.
#[derive(Default)]
struct Described {
    /// A GNU long name, or else a PAX `path`.
    path: Option<Vec<u8>>,
    long_name: bool,
    long_link: bool,
    pax: bool,
    /// A PAX `size`, which must agree with the entry's header (raw mode reads the header's).
    size: Option<u64>,
}

impl Described {
    fn is_empty(&self) -> bool {
        !(self.long_name || self.long_link || self.pax)
    }

    /// Reads `entry` if it is a metadata entry (returns true) after checking its declared size.
    fn absorb<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, kind: tar::EntryType) -> Result<bool, ImportError> {
        let seen = match kind {
            tar::EntryType::GNULongName => &mut self.long_name,
            tar::EntryType::GNULongLink => &mut self.long_link,
            tar::EntryType::XHeader => &mut self.pax,
            // Global PAX headers apply to every later entry; nothing they can say matters to us.
            tar::EntryType::XGlobalHeader => &mut false,
            _ => return Ok(false),
        };
        if std::mem::replace(seen, true) {
            return Err(corrupt("two headers of the same kind describe one entry"));
        }
        let size = entry.size();
        if size > MAX_METADATA_BYTES {
            return Err(bomb(format!(
                "a header entry declares {size} bytes of metadata (a long name or PAX header); more than {} KiB \
                 is only ever an archive bomb",
                MAX_METADATA_BYTES >> 10
            )));
        }
        let mut data = Vec::with_capacity(size as usize);
        entry.take(size).read_to_end(&mut data).map_err(corrupt)?;
        match kind {
            tar::EntryType::GNULongName => {
                // A long name ends with a NUL.
                let end = data.iter().position(|b| *b == 0).unwrap_or(data.len());
                data.truncate(end);
                self.path = Some(data);
            }
            tar::EntryType::XHeader => {
                for record in tar::PaxExtensions::new(&data) {
                    let record = record.map_err(|e| corrupt(format!("a PAX header is malformed: {e}")))?;
                    match record.key_bytes() {
                        b"path" if self.path.is_none() || !self.long_name => {
                            self.path = Some(record.value_bytes().to_vec())
                        }
                        b"size" => {
                            let size = std::str::from_utf8(record.value_bytes()).ok().and_then(|s| s.parse().ok());
                            self.size = Some(size.ok_or_else(|| corrupt("a PAX header has an invalid size"))?);
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        Ok(true)
    }
}

fn bytes_to_path(bytes: Vec<u8>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(bytes))
}

/// Copies with every byte counted, checking `ratio` (the expansion of what the data comes from) as it goes.
fn copy_counted(
    source: &mut impl Read,
    target: &Path,
    budget: &mut Budget,
    ratio: &dyn Fn(&Budget) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    let mut out = File::create(target).map_err(write_error)?;
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = source.read(&mut buf).map_err(|e| budget.read_error(e))?;
        if n == 0 {
            return Ok(());
        }
        budget.bytes(n as u64)?;
        ratio(budget)?;
        out.write_all(&buf[..n]).map_err(write_error)?;
    }
}

fn write_error(e: std::io::Error) -> ImportError {
    ImportError::new(codes::FILE_IO, format!("cannot write an unpacked file: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unpack::Limits;

    /// A header block of entry type `kind` declaring `size` bytes.
    fn header(name: &str, size: u64, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_entry_type(kind);
        h.set_cksum();
        h
    }

    /// `data` as the body of an entry: padded to whole blocks.
    fn padded(data: &[u8]) -> Vec<u8> {
        let mut out = data.to_vec();
        out.resize(data.len().div_ceil(512) * 512, 0);
        out
    }

    fn pax_record(key: &str, value: &str) -> Vec<u8> {
        // The length counts itself: "<len> <key>=<value>\n".
        let rest = format!(" {key}={value}\n");
        let mut len = rest.len() + 1;
        while format!("{len}").len() + rest.len() != len {
            len += 1;
        }
        format!("{len}{rest}").into_bytes()
    }

    #[test]
    fn data_skipped_inside_a_compressed_tar_counts_as_it_comes_out() {
        // A FIFO entry "holding" 1 GiB of zeros, which the tar reader skips without handing it to us.
        let zeros = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(&vec![0u8; 1 << 20]).unwrap();
            e.finish().unwrap()
        };
        let mut gz = Vec::new();
        let mut gzip = |bytes: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(bytes).unwrap();
            gz.extend(e.finish().unwrap());
        };
        gzip(header("pipe", 1 << 30, tar::EntryType::Fifo).as_bytes());
        (0..1024).for_each(|_| gz.extend_from_slice(&zeros));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar.gz");
        std::fs::write(&path, gz).unwrap();
        let mut budget = Budget::new(Limits::default(), tokio_util::sync::CancellationToken::new());
        let source = gunzip(&path, &budget).unwrap();
        let packed = source.packed_read.clone();
        let e = extract_tar(source.reader, Some(source.packed_read), &dir.path().join("out"), &mut budget).unwrap_err();
        assert!(e.code == codes::DATASET_TOO_BIG && e.detail.contains("the archive expands"), "{e}");
        assert!(packed.get() < 200 << 10, "read {} compressed bytes", packed.get());
    }

    fn unpack(tar: Vec<u8>) -> (tempfile::TempDir, Result<(), ImportError>) {
        let dir = tempfile::tempdir().unwrap();
        let mut budget = Budget::new(Limits::default(), tokio_util::sync::CancellationToken::new());
        let result = extract_tar(std::io::Cursor::new(tar), None, dir.path(), &mut budget);
        (dir, result)
    }

    #[test]
    fn a_long_name_claiming_gigabytes_is_refused_before_it_is_read() {
        for kind in [tar::EntryType::GNULongName, tar::EntryType::GNULongLink, tar::EntryType::XHeader] {
            // Only the header: the 4 GiB it announces are never there, and never asked for.
            let tar = header("././@LongLink", 4 << 30, kind).as_bytes().to_vec();
            let (_dir, result) = unpack(tar);
            let e = result.unwrap_err();
            assert_eq!(e.code, codes::DATASET_TOO_BIG, "{kind:?}: {e}");
            assert!(e.detail.contains("64 KiB"), "{}", e.detail);
        }
    }

    #[test]
    fn legitimate_long_names_and_pax_paths_still_name_their_files() {
        let long = format!("{}/roads.csv", "a_folder_with_a_long_name_".repeat(8));
        let mut b = tar::Builder::new(Vec::new());
        // The builder writes a GNU long-name entry for a path of more than 100 bytes.
        let mut h = tar::Header::new_gnu();
        h.set_size(4);
        h.set_mode(0o644);
        b.append_data(&mut h, &long, &b"a\n1\n"[..]).unwrap();
        let mut tar = b.into_inner().unwrap();
        tar.truncate(tar.len() - 1024); // the end-of-archive blocks go after the PAX entry
        let pax = pax_record("path", "from_pax/places.csv");
        tar.extend_from_slice(header("././@PaxHeader", pax.len() as u64, tar::EntryType::XHeader).as_bytes());
        tar.extend(padded(&pax));
        tar.extend_from_slice(header("short_name_ignored.csv", 4, tar::EntryType::Regular).as_bytes());
        tar.extend(padded(b"b\n2\n"));
        tar.extend([0u8; 1024]);
        let (dir, result) = unpack(tar);
        result.unwrap();
        assert_eq!(std::fs::read(dir.path().join(&long)).unwrap(), b"a\n1\n");
        assert_eq!(std::fs::read(dir.path().join("from_pax/places.csv")).unwrap(), b"b\n2\n");
        assert!(!dir.path().join("short_name_ignored.csv").exists());
    }

    #[test]
    fn a_long_name_cannot_escape_and_links_are_not_made() {
        let name = format!("../{}", "x".repeat(120));
        let mut tar = header("././@LongLink", name.len() as u64 + 1, tar::EntryType::GNULongName).as_bytes().to_vec();
        tar.extend(padded(format!("{name}\0").as_bytes()));
        tar.extend_from_slice(header("innocent.csv", 0, tar::EntryType::Regular).as_bytes());
        tar.extend([0u8; 1024]);
        assert_eq!(unpack(tar).1.unwrap_err().code, codes::DECOMPRESSION);

        let mut link = header("passwd.csv", 0, tar::EntryType::Symlink);
        link.set_link_name("/etc/passwd").unwrap();
        link.set_cksum();
        let mut tar = link.as_bytes().to_vec();
        tar.extend([0u8; 1024]);
        let (dir, result) = unpack(tar);
        result.unwrap();
        assert!(std::fs::symlink_metadata(dir.path().join("passwd.csv")).is_err());
    }

    #[test]
    fn headers_that_disagree_or_describe_nothing_are_refused() {
        // A PAX size the entry's own header does not give: two readers would see two archives.
        let pax = pax_record("size", "10");
        let mut tar = header("././@PaxHeader", pax.len() as u64, tar::EntryType::XHeader).as_bytes().to_vec();
        tar.extend(padded(&pax));
        tar.extend_from_slice(header("a.csv", 4, tar::EntryType::Regular).as_bytes());
        tar.extend(padded(b"a\n1\n"));
        tar.extend([0u8; 1024]);
        assert_eq!(unpack(tar).1.unwrap_err().code, codes::DECOMPRESSION);
        // Two long names for one entry, and a long name at the very end.
        let name = padded(b"a.csv\0");
        let mut tar = Vec::new();
        for _ in 0..2 {
            tar.extend_from_slice(header("././@LongLink", 6, tar::EntryType::GNULongName).as_bytes());
            tar.extend(name.clone());
        }
        assert_eq!(unpack(tar.clone()).1.unwrap_err().code, codes::DECOMPRESSION);
        tar.truncate(1024);
        tar.extend([0u8; 1024]);
        assert_eq!(unpack(tar).1.unwrap_err().code, codes::DECOMPRESSION);
    }
}
