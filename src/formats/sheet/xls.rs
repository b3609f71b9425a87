//! Legacy Excel (BIFF). In BIFF8 (Excel 97 to 2003) every string is UTF-16, stored with or without its
//! high bytes, whatever the workbook's CODEPAGE record says; calamine 0.38 decodes the strings stored without
//! them in that code page, so a BIFF8 file that does not declare 1200 (Perl's Spreadsheet::WriteExcel and
//! other writers declare 1252) reads as "n\0a\0m\0e\0". Such a file is read with 1200 forced. BIFF5 and
//! older do store strings in the declared code page, so they are read as they say.

use std::io::Read;
use std::path::Path;

use calamine::XlsOptions;

/// The workbook globals' BOF record of BIFF5 (type 0x0809, 8 bytes, version 0x0500, globals 0x0005).
const BIFF5_GLOBALS: &[u8] = &[0x09, 0x08, 0x08, 0x00, 0x00, 0x05, 0x05, 0x00];

pub fn options_for(path: &Path) -> std::io::Result<XlsOptions> {
    let mut options = XlsOptions::default();
    if !contains(std::fs::File::open(path)?, BIFF5_GLOBALS)? {
        options.force_codepage = Some(1200);
    }
    Ok(options)
}

/// Whether `needle` occurs in what `from` reads, looked for a chunk at a time.
fn contains(mut from: impl Read, needle: &[u8]) -> std::io::Result<bool> {
    let finder = memchr::memmem::Finder::new(needle);
    let mut chunk = vec![0; 1 << 20];
    let mut kept = 0;
    loop {
        let n = match from.read(&mut chunk[kept..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(false);
        }
        let filled = kept + n;
        if finder.find(&chunk[..filled]).is_some() {
            return Ok(true);
        }
        // The end of this chunk may hold the start of a match.
        kept = (needle.len() - 1).min(filled);
        chunk.copy_within(filled - kept..filled, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_record_across_chunks() {
        let mut data = vec![0u8; (1 << 20) - 3];
        data.extend(BIFF5_GLOBALS);
        assert!(contains(&data[..], BIFF5_GLOBALS).unwrap());
        assert!(!contains(&data[..data.len() - 1], BIFF5_GLOBALS).unwrap());
    }
}
