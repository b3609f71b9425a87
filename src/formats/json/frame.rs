//! Cuts a JSON file into the values the reader parses one at a time. The file is read in chunks into one
//! buffer that holds the value being cut (never more than the record limit, plus a chunk); finding where a
//! value ends only tracks strings and nesting, so each value is then parsed from memory with serde_json's
//! slice reader, which borrows strings and raw values instead of copying them byte by byte as its
//! `io::Read` reader does (that reader took most of the time of a GeoJSON import).

use std::io::Read;

use tokio_util::sync::CancellationToken;

use super::marks::{BLOCK, Nesting};
use crate::errors::{ImportError, codes, stopped};

/// Bytes read from the file at a time.
const READ_BYTES: usize = 256 << 10;

/// The file as a window of bytes from `start` (the first byte not consumed yet); offsets given to and
/// returned by the methods are relative to `start`.
pub struct Frames {
    file: Box<dyn Read + Send>,
    buf: Vec<u8>,
    start: usize,
    /// `buf[start..checked]` is known to be UTF-8 (see `text`).
    checked: usize,
    eof: bool,
    max_element: u64,
    stop: CancellationToken,
    too_large: fn(u64) -> ImportError,
}

/// The bytes that end a number or literal.
pub(super) const DELIMITER: [bool; 256] = {
    let mut table = [false; 256];
    let delimiters = b" \n\r\t,}]:";
    let mut i = 0;
    while i < delimiters.len() {
        table[delimiters[i] as usize] = true;
        i += 1;
    }
    table
};

pub(super) fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

fn io_error(e: std::io::Error) -> ImportError {
    ImportError::new(codes::FILE_IO, format!("cannot read the file: {e}"))
}

impl Frames {
    /// `too_large` makes the error for a value longer than `max_element` bytes.
    pub fn new(
        file: Box<dyn Read + Send>,
        max_element: u64,
        stop: &CancellationToken,
        too_large: fn(u64) -> ImportError,
    ) -> Frames {
        Frames {
            file,
            buf: Vec::with_capacity(2 * READ_BYTES),
            start: 0,
            checked: 0,
            eof: false,
            max_element,
            stop: stop.clone(),
            too_large,
        }
    }

    fn available(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Reads another chunk, first dropping what was consumed; false at the end of the file. Refuses to
    /// grow the window past the record limit.
    fn fill(&mut self) -> Result<bool, ImportError> {
        if self.stop.is_cancelled() {
            return Err(stopped());
        }
        if self.eof {
            return Ok(false);
        }
        if self.available() as u64 > self.max_element {
            return Err((self.too_large)(self.max_element));
        }
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.checked = self.checked.saturating_sub(self.start);
            self.start = 0;
            // A large value made the buffer large: give that memory back once it is consumed.
            if self.buf.capacity() > 8 * READ_BYTES && self.buf.len() < 2 * READ_BYTES {
                self.buf.shrink_to(4 * READ_BYTES);
            }
        }
        let len = self.buf.len();
        self.buf.resize(len + READ_BYTES, 0);
        let n = loop {
            match self.file.read(&mut self.buf[len..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.truncate(len);
                    return Err(io_error(e));
                }
            }
        };
        self.buf.truncate(len + n);
        self.eof = n == 0;
        Ok(n > 0)
    }

    /// The byte at `at`, reading as needed; None at the end of the file.
    pub fn byte(&mut self, at: usize) -> Result<Option<u8>, ImportError> {
        while at >= self.available() {
            if !self.fill()? {
                return Ok(None);
            }
        }
        Ok(Some(self.buf[self.start + at]))
    }

    /// The first byte at or after `at` that is not blank, and where it is.
    pub fn skip_blanks(&mut self, mut at: usize) -> Result<(usize, Option<u8>), ImportError> {
        loop {
            match self.byte(at)? {
                Some(b) if is_blank(b) => at += 1,
                other => return Ok((at, other)),
            }
        }
    }

    /// Consumes the blanks at the start and returns the first byte after them.
    pub fn next_token(&mut self) -> Result<Option<u8>, ImportError> {
        let (at, b) = self.skip_blanks(0)?;
        self.consume(at);
        Ok(b)
    }

    /// Where the JSON value that starts at `at` (not blank) ends, the whole of it in the window. Only
    /// strings and nesting are followed: the parser checks the rest. A value that would make the window
    /// (from `start`) longer than the record limit fails with `too_large`.
    pub fn value_end(&mut self, at: usize) -> Result<usize, ImportError> {
        let end = match self.byte(at)? {
            Some(b'"') => self.string_end(at + 1)?,
            Some(b'{' | b'[') => self.nested_end(at)?,
            _ => self.scalar_end(at)?,
        };
        if end as u64 > self.max_element {
            return Err((self.too_large)(self.max_element));
        }
        Ok(end)
    }

    /// The end of a string whose content starts at `at` (after the quote); the end of the file when it has
    /// no closing quote (the parser then says so).
    fn string_end(&mut self, mut at: usize) -> Result<usize, ImportError> {
        loop {
            let window = &self.buf[self.start..];
            match memchr::memchr2(b'"', b'\\', window.get(at..).unwrap_or(&[])) {
                Some(i) if window[at + i] == b'"' => return Ok(at + i + 1),
                Some(i) => {
                    // an escape: the byte after the backslash is never the end
                    at += i + 2;
                    continue;
                }
                None => at = at.max(window.len()),
            }
            if !self.fill()? {
                return Ok(self.available());
            }
        }
    }

    /// Scanned a block of bytes at a time (see `marks`). The window's last bytes, fewer than a block, are
    /// looked at on a copy, and again with what follows once more is read.
    fn nested_end(&mut self, mut at: usize) -> Result<usize, ImportError> {
        let mut nesting = Nesting::default();
        loop {
            let window = &self.buf[self.start..];
            while let Some(block) = window[at..].first_chunk::<BLOCK>() {
                if let Some(i) = nesting.block(block) {
                    return Ok(at + i + 1);
                }
                at += BLOCK;
            }
            let mut tail = [b' '; BLOCK];
            tail[..window.len() - at].copy_from_slice(&window[at..]);
            if let Some(i) = nesting.clone().block(&tail) {
                return Ok(at + i + 1);
            }
            if !self.fill()? {
                return Ok(self.available());
            }
        }
    }

    fn scalar_end(&mut self, mut at: usize) -> Result<usize, ImportError> {
        while let Some(b) = self.byte(at)? {
            if DELIMITER[b as usize] {
                break;
            }
            at += 1;
        }
        Ok(at)
    }

    /// The window as text, as far as it is UTF-8: an incomplete character at its end, and anything from an
    /// invalid byte on, are left out. Each byte is checked once, however often this is called, so that a
    /// reader may parse straight from the window without first finding where its value ends.
    pub fn text(&mut self) -> &str {
        // Starting inside a character (only a caller consuming part of one could do that), nothing is text.
        if self.checked < self.start || self.buf.get(self.start).is_some_and(|&b| (b as i8) < -0x40) {
            self.checked = self.start;
        }
        let unchecked = &self.buf[self.checked..];
        self.checked += match std::str::from_utf8(unchecked) {
            Ok(_) => unchecked.len(),
            Err(e) => e.valid_up_to(),
        };
        // SAFETY: `buf[start..checked]` was checked to be UTF-8, here or by an earlier call: `start` is the
        // start of a character (checked above), and `fill` moves both when it drops what was consumed.
        unsafe { std::str::from_utf8_unchecked(&self.buf[self.start..self.checked]) }
    }

    /// The bytes from `from` to `to`, which a `value_end` or `skip_blanks` brought into the window.
    pub fn bytes(&self, from: usize, to: usize) -> &[u8] {
        &self.buf[self.start + from..self.start + to]
    }

    /// Drops the first `n` bytes of the window.
    pub fn consume(&mut self, n: usize) {
        self.start += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(text: &str, max: u64) -> (tempfile::TempDir, Frames) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        std::fs::write(&path, text).unwrap();
        let too_large = |_| ImportError::new(codes::DATASET_TOO_BIG, "too large");
        let frames =
            Frames::new(Box::new(std::fs::File::open(&path).unwrap()), max, &CancellationToken::new(), too_large);
        (dir, frames)
    }

    #[test]
    fn values_end_where_their_strings_and_nesting_say() {
        let text = r#"{"a":"}\"]","b":[1,{"c":"\\"}]} "x\"y" 12.5e3,true]"#;
        let (_dir, mut f) = frames(text, 1 << 20);
        let end = f.value_end(0).unwrap();
        assert_eq!(std::str::from_utf8(f.bytes(0, end)).unwrap(), r#"{"a":"}\"]","b":[1,{"c":"\\"}]}"#);
        f.consume(end);
        assert_eq!(f.next_token().unwrap(), Some(b'"'));
        let end = f.value_end(0).unwrap();
        assert_eq!(f.bytes(0, end), br#""x\"y""#);
        f.consume(end);
        f.next_token().unwrap();
        let end = f.value_end(0).unwrap();
        assert_eq!(f.bytes(0, end), b"12.5e3");
    }

    #[test]
    fn a_value_longer_than_the_limit_fails_even_across_reads() {
        let big = format!("[{}1] [1]", "1,".repeat(READ_BYTES));
        let (_dir, mut f) = frames(&big, 1000);
        assert_eq!(f.value_end(0).err().map(|e| e.code), Some(codes::DATASET_TOO_BIG));
        let (_dir, mut f) = frames(&big, 4 * READ_BYTES as u64);
        let end = f.value_end(0).unwrap();
        assert_eq!(end, 2 * READ_BYTES + 3);
        f.consume(end);
        assert_eq!(f.next_token().unwrap(), Some(b'['));
        assert_eq!(f.value_end(0).unwrap(), 3);
    }
}
