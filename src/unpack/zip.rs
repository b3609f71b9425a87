//! Zip archives (also `.kmz` and `.carto`).
//!
//! The zip crate loads the whole central directory when it opens an archive, trusting the counts and sizes
//! the archive declares. So before it does, [`check_directory`] reads the end records and walks the
//! directory's headers with bounded reads: an archive whose directory is larger than
//! [`MAX_DIRECTORY_BYTES`], declares more entries than the budget allows, or whose headers do not fit in
//! the size it declares is refused without being loaded.
//!
//! Expansion ratios are computed from the compressed bytes actually read from the file (a counting reader
//! under the archive), never from the sizes the directory declares, per entry and for the whole archive.

use std::cell::Cell;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::rc::Rc;

use super::budget::{Budget, bomb, corrupt, safe_join};
use crate::errors::{ImportError, codes};

/// Entries past which a zip is not even opened to learn what it holds.
const MAX_DIRECTORY_ENTRIES: u64 = 100_000;

/// Largest central directory we load. A directory of 10,000 entries (the most an import may unpack) with
/// names of 300 bytes takes about 3.5 MiB; the zip reader holds about three times its size in memory.
pub const MAX_DIRECTORY_BYTES: u64 = 8 << 20;

/// Largest name, extra field and comment of one entry: a path longer than Linux's PATH_MAX cannot be
/// unpacked anyway, and real extra fields and comments are a few dozen bytes.
pub const MAX_ENTRY_FIELD_BYTES: u64 = 4 << 10;

const EOCD: &[u8; 4] = b"PK\x05\x06";
const EOCD_LEN: usize = 22;
const ZIP64_LOCATOR: &[u8; 4] = b"PK\x06\x07";
const ZIP64_LOCATOR_LEN: u64 = 20;
const ZIP64_EOCD: &[u8; 4] = b"PK\x06\x06";
const CENTRAL_HEADER: &[u8; 4] = b"PK\x01\x02";
const CENTRAL_HEADER_LEN: u64 = 46;

/// What a zip holds, from its entry names: `xlsx` (or xlsm), `xlsb`, `ods`, `kmz` (a KML document), or `zip`.
pub fn zip_flavour(path: &Path) -> &'static str {
    if check_directory(path, MAX_DIRECTORY_ENTRIES).is_err() {
        return "zip";
    }
    let Ok(file) = File::open(path) else { return "zip" };
    let Ok(archive) = ::zip::ZipArchive::new(file) else { return "zip" };
    let names = || archive.file_names().filter_map(|n| n.ok()).map(|n| n.to_ascii_lowercase());
    let has = |wanted: &str| names().any(|n| n == wanted);
    if has("xl/workbook.xml") {
        "xlsx"
    } else if has("xl/workbook.bin") {
        "xlsb"
    } else if has("content.xml") && has("mimetype") {
        "ods"
    } else if has("doc.kml") || (archive.len() <= 3 && names().any(|n| n.ends_with(".kml"))) {
        "kmz"
    } else {
        "zip"
    }
}

/// The central directory as the end records declare it.
#[derive(Debug)]
struct Declared {
    entries: u64,
    size: u64,
    offset: u64,
    /// Where the end record (the zip64 one, if any) starts: the directory should end there.
    end: u64,
    zip64: bool,
}

fn le16(b: &[u8], at: usize) -> u64 {
    u64::from(u16::from_le_bytes([b[at], b[at + 1]]))
}

fn le32(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]))
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or_default())
}

fn read_at(file: &mut File, at: u64, buf: &mut [u8]) -> Result<(), ImportError> {
    file.seek(SeekFrom::Start(at)).and_then(|_| file.read_exact(buf)).map_err(corrupt)
}

/// Reads the end-of-central-directory record (the last one whose fixed part and comment fit in the file,
/// as the zip reader picks it) and, for a zip64 archive, its zip64 record.
fn declared(file: &mut File) -> Result<Declared, ImportError> {
    let len = file.metadata().map_err(corrupt)?.len();
    let tail_len = len.min(EOCD_LEN as u64 + u64::from(u16::MAX));
    let mut tail = vec![0u8; tail_len as usize];
    read_at(file, len - tail_len, &mut tail)?;
    let at = (0..tail.len().saturating_sub(EOCD_LEN - 1))
        .rev()
        .find(|&i| &tail[i..i + 4] == EOCD && i + EOCD_LEN + le16(&tail, i + 20) as usize <= tail.len())
        .ok_or_else(|| corrupt("it has no end-of-directory record: it is not a zip, or it is truncated"))?;
    let eocd = &tail[at..at + EOCD_LEN];
    let eocd_pos = len - tail_len + at as u64;
    let (disk, cd_disk, on_disk, entries) = (le16(eocd, 4), le16(eocd, 6), le16(eocd, 8), le16(eocd, 10));
    let (size, offset) = (le32(eocd, 12), le32(eocd, 16));
    let maybe_zip64 = [disk, cd_disk, on_disk, entries].contains(&0xFFFF) || [size, offset].contains(&0xFFFF_FFFF);
    let locator_pos = eocd_pos.checked_sub(ZIP64_LOCATOR_LEN);
    let mut locator = [0u8; ZIP64_LOCATOR_LEN as usize];
    let zip64 = match locator_pos {
        Some(pos) if maybe_zip64 => read_at(file, pos, &mut locator).is_ok() && &locator[..4] == ZIP64_LOCATOR,
        _ => false,
    };
    if !zip64 {
        if disk != 0 || cd_disk != 0 || on_disk != entries {
            return Err(corrupt("it spans several disks, which we do not read"));
        }
        return Ok(Declared { entries, size, offset, end: eocd_pos, zip64: false });
    }
    let record_pos = le64(&locator, 8);
    let mut record = [0u8; 56];
    read_at(file, record_pos, &mut record)?;
    if &record[..4] != ZIP64_EOCD || record_pos >= eocd_pos {
        return Err(corrupt("its zip64 end record is not where its locator says"));
    }
    let (disk, cd_disk, on_disk, entries) =
        (le32(&record, 16), le32(&record, 20), le64(&record, 24), le64(&record, 32));
    if disk != 0 || cd_disk != 0 || on_disk != entries || le32(&locator, 16) > 1 {
        return Err(corrupt("it spans several disks, which we do not read"));
    }
    Ok(Declared { entries, size: le64(&record, 40), offset: le64(&record, 48), end: record_pos, zip64: true })
}

/// Checks a zip's central directory before the zip reader loads it (see the module's documentation);
/// returns the number of entries.
fn check_directory(path: &Path, max_entries: u64) -> Result<u64, ImportError> {
    let mut file =
        File::open(path).map_err(|e| ImportError::new(codes::FILE_IO, format!("cannot open the archive: {e}")))?;
    let d = declared(&mut file)?;
    if d.entries > max_entries {
        return Err(bomb(format!("the archive holds {} entries, more than the {max_entries} allowed", d.entries)));
    }
    if d.size > MAX_DIRECTORY_BYTES {
        return Err(bomb(format!(
            "the archive's directory is {} bytes, more than the {} MiB we read",
            d.size,
            MAX_DIRECTORY_BYTES >> 20
        )));
    }
    if d.entries == 0 {
        return Ok(0);
    }
    // Where the zip reader looks first: the directory that ends at the end record (after any data
    // prepended to the archive), else where the record says it starts.
    let mut signature = [0u8; 4];
    let mut header_at = |pos: u64| read_at(&mut file, pos, &mut signature).is_ok() && &signature == CENTRAL_HEADER;
    let abutting = d.end.checked_sub(d.size).filter(|s| !d.zip64 && *s >= d.offset);
    let start = match abutting {
        Some(s) if header_at(s) => s,
        _ if header_at(d.offset) => d.offset,
        _ => return Err(corrupt("its directory is not where its end record says")),
    };
    let end = start + d.size;
    let too_small = || {
        bomb(format!("the archive's directory declares {} entries that do not fit in its {} bytes", d.entries, d.size))
    };
    file.seek(SeekFrom::Start(start)).map_err(corrupt)?;
    let mut reader = BufReader::new(file);
    let mut header = [0u8; CENTRAL_HEADER_LEN as usize];
    let mut pos = start;
    for _ in 0..d.entries {
        if pos + CENTRAL_HEADER_LEN > end {
            return Err(too_small());
        }
        reader.read_exact(&mut header).map_err(corrupt)?;
        if &header[..4] != CENTRAL_HEADER {
            return Err(corrupt("an entry of its directory is damaged"));
        }
        let (name, extra, comment) = (le16(&header, 28), le16(&header, 30), le16(&header, 32));
        for (what, n) in [("name", name), ("extra field", extra), ("comment", comment)] {
            if n > MAX_ENTRY_FIELD_BYTES {
                return Err(bomb(format!(
                    "an entry's {what} is {n} bytes long, more than the {} KiB we read",
                    MAX_ENTRY_FIELD_BYTES >> 10
                )));
            }
        }
        let variable = name + extra + comment;
        pos += CENTRAL_HEADER_LEN + variable;
        if pos > end {
            return Err(too_small());
        }
        reader.seek_relative(variable as i64).map_err(corrupt)?;
    }
    Ok(d.entries)
}

pub fn extract(archive: &Path, dest: &Path, budget: &mut Budget) -> Result<(), ImportError> {
    check_directory(archive, budget.entries_left())?;
    let file =
        File::open(archive).map_err(|e| ImportError::new(codes::FILE_IO, format!("cannot open the archive: {e}")))?;
    // Every byte the zip reader takes from the file, to measure expansion by what was really read.
    let read = Rc::new(Cell::new(0));
    let mut zip = ::zip::ZipArchive::new(budget.meter(file, read.clone())).map_err(|e| budget.read_error(e))?;
    let mut archive_written = 0u64;
    let mut buf = vec![0u8; 256 << 10];
    for i in 0..zip.len() {
        budget.entry()?;
        {
            let raw = zip.by_index_raw(i).map_err(corrupt)?;
            if raw.encrypted() {
                return Err(ImportError::new(
                    codes::PASSWORD_PROTECTED,
                    format!("the entry '{}' is encrypted", raw.name().unwrap_or_default()),
                ));
            }
        }
        let mut entry = zip.by_index(i).map_err(corrupt)?;
        let name = entry.name().map_err(corrupt)?.into_owned();
        let target = safe_join(dest, Path::new(&name))?;
        if entry.is_symlink() {
            tracing::info!(entry = %name, "skipping a symbolic link in an archive");
            continue;
        }
        if entry.is_dir() {
            std::fs::create_dir_all(&target).map_err(write_error)?;
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(write_error)?;
        }
        let mut out = File::create(&target).map_err(write_error)?;
        let entry_start = read.get();
        let mut total = 0u64;
        loop {
            let n = entry.read(&mut buf).map_err(|e| budget.read_error(e))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            archive_written += n as u64;
            budget.bytes(n as u64)?;
            budget.check_ratio(total, read.get() - entry_start, &format!("the entry '{name}'"))?;
            budget.check_ratio(archive_written, read.get(), "the archive")?;
            out.write_all(&buf[..n]).map_err(write_error)?;
        }
    }
    Ok(())
}

fn write_error(e: std::io::Error) -> ImportError {
    ImportError::new(codes::FILE_IO, format!("cannot write an unpacked file: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unpack::Limits;

    /// One entry of a hand-built zip: its name, its bytes as stored (deflated or not), and what they
    /// unpack to.
    struct Entry {
        name: Vec<u8>,
        stored: Vec<u8>,
        deflated: bool,
        crc: u32,
        size: u64,
        /// The compressed size the directory declares, if it lies.
        declared_compressed: Option<u64>,
    }

    impl Entry {
        fn deflated(name: &str, data: &[u8]) -> Entry {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(data).unwrap();
            let mut crc = flate2::Crc::new();
            crc.update(data);
            Entry {
                name: name.as_bytes().to_vec(),
                stored: e.finish().unwrap(),
                deflated: true,
                crc: crc.sum(),
                size: data.len() as u64,
                declared_compressed: None,
            }
        }
    }

    /// A zip of `entries`; `count` may make the end record declare another number of entries.
    fn build(entries: &[Entry], count: Option<u16>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut directory = Vec::new();
        for e in entries {
            let offset = out.len() as u32;
            let method: u16 = if e.deflated { 8 } else { 0 };
            let fixed = |sig: &[u8], compressed: u64| {
                let mut h = sig.to_vec();
                if sig == CENTRAL_HEADER {
                    h.extend(20u16.to_le_bytes()); // made by
                }
                h.extend(20u16.to_le_bytes()); // needed
                h.extend(0u16.to_le_bytes()); // flags
                h.extend(method.to_le_bytes());
                h.extend([0u8; 4]); // time, date
                h.extend(e.crc.to_le_bytes());
                h.extend((compressed as u32).to_le_bytes());
                h.extend((e.size as u32).to_le_bytes());
                h.extend((e.name.len() as u16).to_le_bytes());
                h.extend(0u16.to_le_bytes()); // extra
                h
            };
            out.extend(fixed(b"PK\x03\x04", e.stored.len() as u64));
            out.extend(&e.name);
            out.extend(&e.stored);
            let mut c = fixed(CENTRAL_HEADER, e.declared_compressed.unwrap_or(e.stored.len() as u64));
            c.extend([0u8; 6]); // comment length, disk, internal attributes
            c.extend([0u8; 4]); // external attributes
            c.extend(offset.to_le_bytes());
            c.extend(&e.name);
            directory.extend(c);
        }
        let (cd_offset, cd_size) = (out.len() as u32, directory.len() as u32);
        out.extend(directory);
        let n = count.unwrap_or(entries.len() as u16);
        out.extend(EOCD);
        out.extend([0u8; 4]);
        out.extend(n.to_le_bytes());
        out.extend(n.to_le_bytes());
        out.extend(cd_size.to_le_bytes());
        out.extend(cd_offset.to_le_bytes());
        out.extend([0u8; 2]);
        out
    }

    fn unpack(zip: &[u8]) -> (tempfile::TempDir, Result<(), ImportError>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.zip");
        std::fs::write(&path, zip).unwrap();
        let mut budget = Budget::new(Limits::default(), tokio_util::sync::CancellationToken::new());
        let result = extract(&path, &dir.path().join("out"), &mut budget);
        (dir, result)
    }

    #[test]
    fn hand_built_and_prefixed_zips_unpack() {
        let zip = build(&[Entry::deflated("a.csv", b"a\n1\n"), Entry::deflated("b/c.csv", b"c\n3\n")], None);
        let (dir, result) = unpack(&zip);
        result.unwrap();
        assert_eq!(std::fs::read(dir.path().join("out/b/c.csv")).unwrap(), b"c\n3\n");
        // Data before the archive (a self-extracting zip) moves everything; the directory still abuts its end.
        let mut prefixed = vec![b'#'; 1000];
        prefixed.extend(&zip);
        let (dir, result) = unpack(&prefixed);
        result.unwrap();
        assert_eq!(std::fs::read(dir.path().join("out/a.csv")).unwrap(), b"a\n1\n");
        // The same as zip64: a zip64 end record and its locator between the directory and the end record.
        let eocd = zip.len() - EOCD_LEN;
        let (cd_size, cd_offset) = (le32(&zip, eocd + 12), le32(&zip, eocd + 16));
        let mut zip64 = zip[..eocd].to_vec();
        let record_at = zip64.len() as u64;
        zip64.extend(ZIP64_EOCD);
        zip64.extend(44u64.to_le_bytes());
        zip64.extend([45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        zip64.extend(2u64.to_le_bytes());
        zip64.extend(2u64.to_le_bytes());
        zip64.extend(cd_size.to_le_bytes());
        zip64.extend(cd_offset.to_le_bytes());
        zip64.extend(ZIP64_LOCATOR);
        zip64.extend(0u32.to_le_bytes());
        zip64.extend(record_at.to_le_bytes());
        zip64.extend(1u32.to_le_bytes());
        zip64.extend(EOCD);
        zip64.extend([0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
        zip64.extend([0xFF; 8]);
        zip64.extend([0u8; 2]);
        let (dir, result) = unpack(&zip64);
        result.unwrap();
        assert_eq!(std::fs::read(dir.path().join("out/b/c.csv")).unwrap(), b"c\n3\n");
    }

    #[test]
    fn an_entry_whose_directory_lies_about_its_compressed_size_is_measured_by_what_is_read() {
        // 40 MiB of zeros deflate to about 40 KB; the directory claims they took 2 MiB (the noise after
        // them), which would make the ratio 20.
        let zeros = Entry::deflated("zeros.csv", &vec![b'0'; 40 << 20]);
        let noise = Entry::deflated("noise.bin", &noise(2 << 20));
        let claimed = (zeros.stored.len() + noise.stored.len() + 30 + noise.name.len()) as u64;
        let zeros = Entry { declared_compressed: Some(claimed), ..zeros };
        let (_dir, result) = unpack(&build(&[zeros, noise], None));
        let e = result.unwrap_err();
        assert_eq!(e.code, codes::DATASET_TOO_BIG, "{e}");
        assert!(e.detail.contains("'zeros.csv' expands more than 200 times"), "{}", e.detail);
    }

    #[test]
    fn many_entries_under_the_small_file_threshold_add_up_to_a_bomb() {
        // Each entry is 8 MiB of zeros, too small to be judged alone; 50 of them are 400 MiB from 400 KB.
        let one = Entry::deflated("z.csv", &vec![0u8; 8 << 20]);
        let entries: Vec<Entry> = (0..50)
            .map(|i| Entry { name: format!("z{i:02}.csv").into_bytes(), ..Entry { ..one.clone_entry() } })
            .collect();
        let (dir, result) = unpack(&build(&entries, None));
        let e = result.unwrap_err();
        assert_eq!(e.code, codes::DATASET_TOO_BIG, "{e}");
        assert!(e.detail.contains("the archive expands more than 200 times"), "{}", e.detail);
        let unpacked = std::fs::read_dir(dir.path().join("out")).unwrap().count();
        assert!(unpacked <= 3, "stopped after {unpacked} entries");
    }

    impl Entry {
        fn clone_entry(&self) -> Entry {
            Entry {
                name: self.name.clone(),
                stored: self.stored.clone(),
                deflated: self.deflated,
                crc: self.crc,
                size: self.size,
                declared_compressed: self.declared_compressed,
            }
        }
    }

    #[test]
    fn directories_too_large_too_many_or_that_do_not_fit_are_refused_before_loading() {
        let one = || Entry::deflated("a.csv", b"a\n1\n");
        // declares more entries than its directory holds
        let (_dir, result) = unpack(&build(&[one(), one()], Some(9000)));
        let e = result.unwrap_err();
        assert_eq!(e.code, codes::DATASET_TOO_BIG);
        assert!(e.detail.contains("9000 entries that do not fit"), "{}", e.detail);
        // more entries than the budget
        let (_dir, result) = unpack(&build(&[one()], Some(10_001)));
        assert!(result.unwrap_err().detail.contains("10001 entries"));
        // a name longer than any path
        let long = Entry { name: vec![b'n'; 5000], ..one() };
        let e = unpack(&build(&[long], None)).1.unwrap_err();
        assert!(e.code == codes::DATASET_TOO_BIG && e.detail.contains("name is 5000 bytes"), "{e}");
        // an extra field or a comment longer than any real one, declared in the directory: refused before
        // the fields are read
        for (offset, what) in [(30, "extra field"), (32, "comment")] {
            let mut zip = build(&[one()], None);
            let at = zip.windows(4).position(|w| w == CENTRAL_HEADER).unwrap() + offset;
            zip[at..at + 2].copy_from_slice(&5000u16.to_le_bytes());
            let e = unpack(&zip).1.unwrap_err();
            assert!(e.code == codes::DATASET_TOO_BIG && e.detail.contains(&format!("{what} is 5000 bytes")), "{e}");
        }
        // a directory of 100 MiB, declared by an end record alone: refused without reading it
        let mut forged = vec![0u8; 64];
        forged.extend(EOCD);
        forged.extend([0, 0, 0, 0, 1, 0, 1, 0]);
        forged.extend((100u32 << 20).to_le_bytes());
        forged.extend(0u32.to_le_bytes());
        forged.extend([0u8; 2]);
        let e = unpack(&forged).1.unwrap_err();
        assert!(e.code == codes::DATASET_TOO_BIG && e.detail.contains("more than the 8 MiB"), "{e}");
        // the same directory size, from a zip64 record declaring 2^40 entries
        let mut zip64 = vec![0u8; 64];
        let record_at = zip64.len() as u64;
        zip64.extend(ZIP64_EOCD);
        zip64.extend(44u64.to_le_bytes());
        zip64.extend([45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        zip64.extend((1u64 << 40).to_le_bytes());
        zip64.extend((1u64 << 40).to_le_bytes());
        zip64.extend(64u64.to_le_bytes());
        zip64.extend(0u64.to_le_bytes());
        zip64.extend(ZIP64_LOCATOR);
        zip64.extend(0u32.to_le_bytes());
        zip64.extend(record_at.to_le_bytes());
        zip64.extend(1u32.to_le_bytes());
        zip64.extend(EOCD);
        zip64.extend([0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
        zip64.extend([0xFF; 8]);
        zip64.extend([0u8; 2]);
        let e = unpack(&zip64).1.unwrap_err();
        assert!(e.code == codes::DATASET_TOO_BIG && e.detail.contains("1099511627776 entries"), "{e}");
        assert_eq!(zip_flavour_of(&zip64), "zip");
        // truncated: no end record at all
        let zip = build(&[one(), one()], None);
        assert_eq!(unpack(&zip[..zip.len() / 2]).1.unwrap_err().code, codes::DECOMPRESSION);
    }

    /// Bytes that do not compress (xorshift).
    fn noise(len: usize) -> Vec<u8> {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn office_documents_are_told_from_archives_by_their_parts() {
        let zip_of = |names: &[&str]| build(&names.iter().map(|n| Entry::deflated(n, b"x")).collect::<Vec<_>>(), None);
        assert_eq!(zip_flavour_of(&zip_of(&["[Content_Types].xml", "xl/workbook.xml"])), "xlsx");
        assert_eq!(zip_flavour_of(&zip_of(&["[Content_Types].xml", "xl/workbook.bin"])), "xlsb");
        assert_eq!(zip_flavour_of(&zip_of(&["mimetype", "content.xml"])), "ods");
        assert_eq!(zip_flavour_of(&zip_of(&["doc.kml"])), "kmz");
        assert_eq!(zip_flavour_of(&zip_of(&["a.csv", "xl/other.bin"])), "zip");
    }

    fn zip_flavour_of(bytes: &[u8]) -> &'static str {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.zip");
        std::fs::write(&path, bytes).unwrap();
        zip_flavour(&path)
    }
}
