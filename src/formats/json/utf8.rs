//! JSON is UTF-8 (RFC 8259), but files in the wild carry a byte-order mark or come from tools that wrote
//! Latin-1 or UTF-16: such a file is decoded to UTF-8 as each pass reads it, as the CSV reader reads any
//! encoding. Decoding on the fly rather than through a UTF-8 copy takes no disk, and a file read straight
//! from the staging store has no directory beside it for a copy. A file that is UTF-8 already is read as it
//! is.

use std::io::Read;

use encoding_rs::{Encoding, UTF_8};
use encoding_rs_io::DecodeReaderBytesBuilder;
use tokio_util::sync::CancellationToken;

use crate::detect::text::{detect_encoding, detect_encoding_of_whole_file};
use crate::errors::ImportError;
use crate::source::input::Input;

/// Bytes looked at to decide the encoding, unless the whole file is.
const SAMPLE_BYTES: usize = 64 << 10;

/// A JSON file as UTF-8 without a byte-order mark: its bytes as they are, or decoded as they are read.
#[derive(Debug, Clone)]
pub struct Utf8Input {
    input: Input,
    /// The encoding it is decoded from; None when it is read as it is.
    decoded_from: Option<&'static Encoding>,
}

impl Utf8Input {
    /// `input` read as it is, taken to be UTF-8 already.
    pub fn as_is(input: Input) -> Utf8Input {
        Utf8Input { input, decoded_from: None }
    }

    /// Whether its bytes are decoded (not read as they are).
    pub fn is_decoded(&self) -> bool {
        self.decoded_from.is_some()
    }

    /// The file from its start, as UTF-8.
    pub fn open(&self) -> Result<Box<dyn Read + Send>, ImportError> {
        let raw = self.input.open()?;
        let Some(encoding) = self.decoded_from else { return Ok(raw) };
        let decoded =
            DecodeReaderBytesBuilder::new().encoding(Some(encoding)).bom_override(true).strip_bom(true).build(raw);
        Ok(Box::new(decoded))
    }

    /// Its first `n` bytes as UTF-8 (decoded from at most `n` bytes of the file).
    pub fn head(&self, n: usize) -> Result<Vec<u8>, ImportError> {
        let raw = self.input.head(n)?;
        Ok(match self.decoded_from {
            None => raw,
            // A byte-order mark wins over the encoding, as it does in `open`, and goes.
            Some(encoding) => encoding.decode(&raw).0.into_owned().into_bytes(),
        })
    }
}

/// `input` as UTF-8: as it is when it is (as far as its first bytes tell, or all of them with `whole`),
/// else decoded from the encoding it has.
pub fn utf8_input(input: &Input, whole: bool, stop: &CancellationToken) -> Result<Utf8Input, ImportError> {
    let head = input.head(SAMPLE_BYTES)?;
    let bom = Encoding::for_bom(&head).is_some();
    let encoding = if whole {
        detect_encoding_of_whole_file(input.open()?, stop)?
    } else {
        detect_encoding(&head, head.len() < SAMPLE_BYTES)
    };
    if encoding == UTF_8 && !bom {
        return Ok(Utf8Input::as_is(input.clone()));
    }
    tracing::info!(encoding = encoding.name(), bom, "JSON decoded to UTF-8 as it is read");
    Ok(Utf8Input { input: input.clone(), decoded_from: Some(encoding) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf8_of(bytes: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.geojson");
        std::fs::write(&path, bytes).unwrap();
        let read = utf8_input(&Input::file(&path, "f.geojson"), false, &CancellationToken::new()).unwrap();
        let mut text = String::new();
        read.open().unwrap().read_to_string(&mut text).unwrap();
        assert!(text.as_bytes().starts_with(&read.head(8).unwrap()), "the head is not the text's");
        assert!(std::fs::read_dir(dir.path()).unwrap().count() == 1, "a copy was written");
        text
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
