//! JSON is UTF-8 (RFC 8259), but files in the wild carry a byte-order mark or come from tools that wrote
//! Latin-1 or UTF-16: such a file is read through a UTF-8 copy made beside it, as the CSV reader reads
//! any encoding. A file that is UTF-8 already is read as it is.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use encoding_rs::{Encoding, UTF_8};
use tokio_util::sync::CancellationToken;

use crate::detect::text::{detect_encoding, detect_encoding_of_whole_file};
use crate::errors::{ImportError, check_stop, codes};

/// Bytes looked at to decide the encoding, unless the whole file is.
const SAMPLE_BYTES: usize = 64 << 10;

/// The path of the file as UTF-8 without a byte-order mark: `path` itself when it is (as far as its first
/// bytes tell, or all of them with `whole`), else a UTF-8 copy beside it.
pub fn utf8_path(path: &Path, whole: bool, stop: &CancellationToken) -> Result<PathBuf, ImportError> {
    let io = |e: std::io::Error| ImportError::new(codes::FILE_IO, format!("cannot read the file: {e}"));
    let mut head = Vec::with_capacity(SAMPLE_BYTES);
    std::fs::File::open(path).map_err(io)?.take(SAMPLE_BYTES as u64).read_to_end(&mut head).map_err(io)?;
    let bom = Encoding::for_bom(&head).is_some();
    let encoding = if whole {
        detect_encoding_of_whole_file(path, stop)?
    } else {
        detect_encoding(&head, head.len() < SAMPLE_BYTES)
    };
    if encoding == UTF_8 && !bom {
        return Ok(path.to_path_buf());
    }
    tracing::info!(encoding = encoding.name(), bom, "JSON read through a UTF-8 copy");
    let copy = path.with_extension("utf8.json");
    transcode(path, encoding, &copy, stop)?;
    Ok(copy)
}

/// Writes `source`, in `encoding`, to `target` as UTF-8 (a byte-order mark dropped), a chunk at a time.
fn transcode(
    source: &Path,
    encoding: &'static Encoding,
    target: &Path,
    stop: &CancellationToken,
) -> Result<(), ImportError> {
    let io = |e: std::io::Error| ImportError::new(codes::FILE_IO, format!("cannot write the UTF-8 copy: {e}"));
    let mut input = std::fs::File::open(source).map_err(io)?;
    let mut output = std::io::BufWriter::new(std::fs::File::create(target).map_err(io)?);
    let mut decoder = encoding.new_decoder();
    let mut read = vec![0u8; 1 << 20];
    let mut written = vec![0u8; 3 << 20];
    loop {
        check_stop(stop)?;
        let n = input.read(&mut read).map_err(io)?;
        let last = n == 0;
        let mut from = &read[..n];
        loop {
            let (result, used, made, _) = decoder.decode_to_utf8(from, &mut written, last);
            output.write_all(&written[..made]).map_err(io)?;
            from = &from[used..];
            if matches!(result, encoding_rs::CoderResult::InputEmpty) {
                break;
            }
        }
        if last {
            break;
        }
    }
    output.flush().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf8_of(bytes: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.geojson");
        std::fs::write(&path, bytes).unwrap();
        let read = utf8_path(&path, false, &CancellationToken::new()).unwrap();
        std::fs::read_to_string(read).unwrap()
    }

    #[test]
    fn boms_and_legacy_encodings_become_plain_utf8() {
        assert_eq!(utf8_of(b"\xef\xbb\xbf{\"n\":\"caf\xc3\xa9\"}"), "{\"n\":\"caf\u{e9}\"}");
        assert_eq!(
            utf8_of(b"{\"n\":\"M\xe1laga, Besan\xe7on, Jos\xe9\"}"),
            "{\"n\":\"M\u{e1}laga, Besan\u{e7}on, Jos\u{e9}\"}"
        );
        let utf16: Vec<u8> = "\u{feff}{\"n\":\"\u{e9}\"}".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        assert_eq!(utf8_of(&utf16), "{\"n\":\"\u{e9}\"}");
        assert_eq!(utf8_of("{\"n\":\"é\"}".as_bytes()), "{\"n\":\"é\"}");
    }
}
