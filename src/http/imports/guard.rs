//! The guard every `POST /api/v1/imports` body passes through before multer or the raw reader sees a
//! byte (review #3). multer buffers a part's headers until it finds their end, with no cap of its own, and
//! until a key is known nobody can say how much a request may send; so here, as bytes arrive:
//!
//! - a byte budget: [`ANONYMOUS_BODY`] until the caller is authenticated (the key must come in the query,
//!   with HTTP Basic, or as a form field before the file), then the account's maximum file size plus the
//!   multipart framing, the form's text and the drain allowance (see [`Budget::authenticated`]);
//! - a cap on each multipart part header (and on the preamble before the first boundary), found by
//!   scanning for the boundary and the blank line that ends a header, across chunk splits;
//! - a deadline for the whole body, however steadily its bytes come (the router's body timeout only
//!   bounds the silence between two chunks).
//!
//! Each breach ends the stream with a [`GuardError`], which `body_error` maps to its answer.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use memchr::memmem::Finder;

use crate::http::error::ApiError;

/// What a body may hold before its sender is known: enough for a form's parameters and its api_key
/// field, not for a file.
pub const ANONYMOUS_BODY: u64 = 64 << 10;
/// The longest multipart part header (or preamble) accepted. Browsers and curl send about 150 bytes.
pub const PART_HEADER_LIMIT: usize = 16 << 10;
/// Multipart framing around a file: boundaries and part headers. A Content-Length within this much of the
/// limit may still hold a file under it.
pub const MULTIPART_SLACK: u64 = 64 << 10;
/// After the size limit is crossed the rest of the body is still read (and thrown away) up to this much,
/// so the client gets our answer instead of a reset connection.
pub const DRAIN_AFTER_LIMIT: u64 = 64 << 20;
/// The most bytes the text fields of one form may hold together.
pub const FORM_TEXT_LIMIT: usize = 1 << 20;
/// The most parts one form may have.
pub const FORM_FIELDS_LIMIT: usize = 64;

/// Why a body was cut.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error("the body went past {0} bytes before an API key was known")]
    KeyFirst(u64),
    #[error("the body went past {0} bytes, more than this account may send")]
    TooLarge(u64),
    #[error("a part header of the multipart body is longer than {0} bytes")]
    PartHeaderTooLong(usize),
    #[error("the body did not arrive within {0} seconds")]
    Deadline(u64),
    #[error("reading the body failed: {0}")]
    Body(#[source] axum::Error),
}

impl GuardError {
    /// The answer this breach gets; None for an error of the body itself (its cause decides).
    pub fn api_error(&self) -> Option<ApiError> {
        Some(match self {
            GuardError::KeyFirst(_) => ApiError::KeyFirst(ANONYMOUS_BODY),
            GuardError::TooLarge(limit) => {
                ApiError::PayloadTooLarge(format!("the body went past {limit} bytes, more than this account may send"))
            }
            GuardError::PartHeaderTooLong(limit) => {
                ApiError::PayloadTooLarge(format!("a part header of the multipart body is longer than {limit} bytes"))
            }
            GuardError::Deadline(secs) => ApiError::UploadDeadline(*secs),
            GuardError::Body(_) => return None,
        })
    }
}

/// How many bytes the body may hold; raised once the caller is authenticated. Shared between the guard
/// (inside multer) and the code that authenticates.
#[derive(Debug, Clone)]
pub struct Budget(Arc<BudgetState>);

#[derive(Debug)]
struct BudgetState {
    bytes: AtomicU64,
    authenticated: AtomicBool,
}

impl Budget {
    /// The budget of a caller not known yet.
    pub fn anonymous() -> Budget {
        Budget(Arc::new(BudgetState { bytes: AtomicU64::new(ANONYMOUS_BODY), authenticated: AtomicBool::new(false) }))
    }

    /// The budget of a caller known from the start, who may upload `max_file_size` bytes.
    pub fn known(max_file_size: u64) -> Budget {
        let budget = Budget::anonymous();
        budget.authenticated(max_file_size);
        budget
    }

    /// The caller is known and may upload `max_file_size` bytes: the body may hold that, the multipart
    /// framing and text fields around it, and what is drained after the limit.
    pub fn authenticated(&self, max_file_size: u64) {
        let bytes = max_file_size
            .saturating_add(MULTIPART_SLACK)
            .saturating_add(FORM_TEXT_LIMIT as u64)
            .saturating_add(DRAIN_AFTER_LIMIT);
        self.0.bytes.store(bytes, Ordering::Release);
        self.0.authenticated.store(true, Ordering::Release);
    }

    fn check(&self, read: u64) -> Result<(), GuardError> {
        let bytes = self.0.bytes.load(Ordering::Acquire);
        if read <= bytes {
            Ok(())
        } else if self.0.authenticated.load(Ordering::Acquire) {
            Err(GuardError::TooLarge(bytes))
        } else {
            Err(GuardError::KeyFirst(bytes))
        }
    }
}

/// A request body under the guard: a stream of its chunks that ends with a [`GuardError`] at the first
/// breach.
pub struct GuardedBody<S> {
    inner: S,
    budget: Budget,
    read: u64,
    deadline: Pin<Box<tokio::time::Sleep>>,
    deadline_secs: u64,
    parts: Option<PartScanner>,
    ended: bool,
}

impl<S> GuardedBody<S> {
    /// Guards `inner`: its bytes count against `budget`, and it must end within `deadline` from now. With
    /// a `boundary`, it is a multipart body whose part headers are capped.
    pub fn new(inner: S, budget: Budget, deadline: Duration, boundary: Option<&str>) -> Self {
        GuardedBody {
            inner,
            budget,
            read: 0,
            deadline: Box::pin(tokio::time::sleep(deadline)),
            deadline_secs: deadline.as_secs(),
            parts: boundary.map(|b| PartScanner::new(b, PART_HEADER_LIMIT)),
            ended: false,
        }
    }

    fn fail(&mut self, error: GuardError) -> Poll<Option<Result<Bytes, GuardError>>> {
        self.ended = true;
        Poll::Ready(Some(Err(error)))
    }
}

impl<S> Stream for GuardedBody<S>
where
    S: Stream<Item = Result<Bytes, axum::Error>> + Unpin,
{
    type Item = Result<Bytes, GuardError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        // Polled first, so that a body that stops sending still meets its deadline.
        if self.deadline.as_mut().poll(cx).is_ready() {
            let secs = self.deadline_secs;
            return self.fail(GuardError::Deadline(secs));
        }
        let chunk = match ready!(Pin::new(&mut self.inner).poll_next(cx)) {
            None => return Poll::Ready(None),
            Some(Err(e)) => return self.fail(GuardError::Body(e)),
            Some(Ok(chunk)) => chunk,
        };
        self.read += chunk.len() as u64;
        if let Err(e) = self.budget.check(self.read) {
            return self.fail(e);
        }
        if let Some(parts) = self.parts.as_mut()
            && let Err(e) = parts.scan(&chunk)
        {
            return self.fail(e);
        }
        Poll::Ready(Some(Ok(chunk)))
    }
}

/// Follows a multipart body's structure as it streams by, as far as needed to measure part headers:
/// the preamble up to the first `--boundary`; after each boundary, the line's rest (transport padding, or
/// `--` for the last one) and the header up to its blank line; then the part's content up to the next
/// CRLF `--boundary`. This is how multer reads it, so what multer buffers as a header is what is measured.
struct PartScanner {
    /// `--boundary`: the first delimiter, which needs no CRLF before it.
    first: Finder<'static>,
    /// CRLF `--boundary`: the delimiters after a part's content.
    next: Finder<'static>,
    blank_line: Finder<'static>,
    state: Scan,
    /// The last bytes scanned without a match, kept to find a needle split between two chunks.
    carry: Vec<u8>,
    /// Bytes of the current preamble or part header so far.
    header: usize,
    limit: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    Preamble,
    /// Just after a boundary: the line's first bytes say whether another part follows.
    LineStart,
    /// A `-` right after the boundary: a second one ends the body.
    Dash,
    /// Transport padding before the CRLF that ends the boundary line.
    Padding,
    /// The CR of that line was seen.
    Cr,
    Header,
    Content,
    /// After the last boundary: nothing more is parsed.
    Epilogue,
}

impl PartScanner {
    fn new(boundary: &str, limit: usize) -> PartScanner {
        PartScanner {
            first: Finder::new(format!("--{boundary}").as_bytes()).into_owned(),
            next: Finder::new(format!("\r\n--{boundary}").as_bytes()).into_owned(),
            blank_line: Finder::new(b"\r\n\r\n").into_owned(),
            state: Scan::Preamble,
            carry: Vec::new(),
            header: 0,
            limit,
        }
    }

    fn scan(&mut self, mut rest: &[u8]) -> Result<(), GuardError> {
        while !rest.is_empty() {
            match self.state {
                Scan::Epilogue => return Ok(()),
                Scan::LineStart | Scan::Dash | Scan::Padding | Scan::Cr => {
                    self.count(1)?;
                    self.state = self.line_byte(rest[0]);
                    rest = &rest[1..];
                }
                Scan::Preamble | Scan::Header | Scan::Content => {
                    let state = self.state;
                    let finder = match state {
                        Scan::Preamble => &self.first,
                        Scan::Header => &self.blank_line,
                        _ => &self.next,
                    };
                    let needle_len = finder.needle().len();
                    match find_across(finder, &self.carry, rest) {
                        Some(end) => {
                            if state != Scan::Content {
                                self.count(end)?;
                            }
                            rest = &rest[end..];
                            self.carry.clear();
                            self.header = 0;
                            self.state = if state == Scan::Header { Scan::Content } else { Scan::LineStart };
                        }
                        None => {
                            if state != Scan::Content {
                                self.count(rest.len())?;
                            }
                            keep_tail(&mut self.carry, rest, needle_len - 1);
                            rest = &[];
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The state after one byte of a boundary line's rest. A byte multer would refuse starts the header
    /// at once: multer fails on it, and whatever it is, it is measured.
    fn line_byte(&self, byte: u8) -> Scan {
        match (self.state, byte) {
            (Scan::LineStart, b'-') => Scan::Dash,
            (Scan::Dash, b'-') => Scan::Epilogue,
            (Scan::LineStart | Scan::Padding, b' ' | b'\t') => Scan::Padding,
            (Scan::LineStart | Scan::Padding, b'\r') => Scan::Cr,
            _ => Scan::Header,
        }
    }

    fn count(&mut self, bytes: usize) -> Result<(), GuardError> {
        self.header += bytes;
        if self.header > self.limit { Err(GuardError::PartHeaderTooLong(self.limit)) } else { Ok(()) }
    }
}

/// Where the first match of `finder` in `carry` followed by `rest` ends, counted in bytes of `rest`.
/// `carry` is shorter than the needle, so a match that starts in it ends in `rest`.
fn find_across(finder: &Finder<'_>, carry: &[u8], rest: &[u8]) -> Option<usize> {
    let needle = finder.needle().len();
    if !carry.is_empty() {
        let take = (needle - 1).min(rest.len());
        let window = [carry, &rest[..take]].concat();
        if let Some(at) = finder.find(&window) {
            return Some(at + needle - carry.len());
        }
    }
    finder.find(rest).map(|at| at + needle)
}

/// Keeps in `carry` the last `keep` bytes of `carry` followed by `rest`.
fn keep_tail(carry: &mut Vec<u8>, rest: &[u8], keep: usize) {
    if rest.len() >= keep {
        carry.clear();
        carry.extend_from_slice(&rest[rest.len() - keep..]);
    } else {
        carry.extend_from_slice(rest);
        let excess = carry.len().saturating_sub(keep);
        carry.drain(..excess);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: &[u8] = b"--XyZ\r\nContent-Disposition: form-data; name=\"api_key\"\r\n\r\nk\r\n\
        --XyZ  \r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\
        Content-Type: text/csv\r\n\r\na,b\r\n-XyZ,\r\n--Xy,--XyZ\r\n1,2\r\n--XyZ--\r\nepilogue";

    fn scan_in_pieces(body: &[u8], limit: usize, sizes: &[usize]) -> Result<Scan, GuardError> {
        let mut scanner = PartScanner::new("XyZ", limit);
        let mut rest = body;
        let mut i = 0;
        while !rest.is_empty() {
            let n = sizes[i % sizes.len()].min(rest.len());
            scanner.scan(&rest[..n])?;
            rest = &rest[n..];
            i += 1;
        }
        Ok(scanner.state)
    }

    #[test]
    fn a_well_formed_form_passes_however_it_is_split() {
        for size in 1..FORM.len() {
            assert_eq!(scan_in_pieces(FORM, 100, &[size]).unwrap(), Scan::Epilogue, "chunks of {size}");
        }
        assert_eq!(scan_in_pieces(FORM, 100, &[3, 1, 7, 2]).unwrap(), Scan::Epilogue);
    }

    #[test]
    fn content_is_not_a_header_however_long() {
        let mut body = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\n".to_vec();
        body.extend(std::iter::repeat_n(b'x', 1 << 20));
        body.extend(b"\r\n--XyZ--\r\n");
        assert_eq!(scan_in_pieces(&body, 200, &[4096, 13]).unwrap(), Scan::Epilogue);
    }

    #[test]
    fn a_header_that_does_not_end_is_cut_at_the_limit() {
        let mut body = b"--XyZ\r\nContent-Disposition: form-data; name=\"f\"\r\nX-Pad: ".to_vec();
        body.extend(std::iter::repeat_n(b'A', 300));
        for size in [1, 7, 64, 1000] {
            let got = scan_in_pieces(&body, 200, &[size]);
            assert!(matches!(got, Err(GuardError::PartHeaderTooLong(200))), "chunks of {size}: {got:?}");
        }
        // The second part's header counts from its own boundary.
        let mut two = b"--XyZ\r\nA: 1\r\n\r\nv\r\n--XyZ\r\nB: ".to_vec();
        two.extend(std::iter::repeat_n(b'B', 300));
        assert!(matches!(scan_in_pieces(&two, 200, &[5]), Err(GuardError::PartHeaderTooLong(_))));
    }

    #[test]
    fn a_part_without_headers_is_measured_as_multer_reads_it() {
        // multer reads the CRLF after the boundary, then looks for a blank line from there: the content
        // of a part with no headers is what it would buffer as a header.
        let mut body = b"--XyZ\r\n\r\n".to_vec();
        body.extend(std::iter::repeat_n(b'x', 300));
        assert!(matches!(scan_in_pieces(&body, 200, &[50]), Err(GuardError::PartHeaderTooLong(_))));
    }

    #[test]
    fn a_long_preamble_or_padding_is_cut() {
        let preamble = [vec![b'p'; 300], b"--XyZ\r\nA: 1\r\n\r\n".to_vec()].concat();
        assert!(matches!(scan_in_pieces(&preamble, 200, &[16]), Err(GuardError::PartHeaderTooLong(_))));
        let padding = [b"--XyZ".to_vec(), vec![b' '; 300], b"\r\nA: 1\r\n\r\n".to_vec()].concat();
        assert!(matches!(scan_in_pieces(&padding, 200, &[16]), Err(GuardError::PartHeaderTooLong(_))));
    }

    #[tokio::test]
    async fn multer_reads_a_guarded_form_as_it_reads_the_bare_one() {
        for size in [1, 2, 5, 17, 64, FORM.len()] {
            let chunks: Vec<Result<Bytes, axum::Error>> =
                FORM.chunks(size).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
            let guarded = GuardedBody::new(
                futures_util::stream::iter(chunks),
                Budget::known(1 << 20),
                Duration::from_secs(60),
                Some("XyZ"),
            );
            let mut form = multer::Multipart::new(guarded, "XyZ");
            let mut seen = Vec::new();
            while let Some(field) = form.next_field().await.unwrap() {
                let name = field.name().unwrap_or("").to_string();
                seen.push((name, field.bytes().await.unwrap()));
            }
            assert_eq!(seen.len(), 2, "chunks of {size}");
            assert_eq!(seen[0], ("api_key".to_string(), Bytes::from_static(b"k")));
            assert_eq!(seen[1].1, Bytes::from_static(b"a,b\r\n-XyZ,\r\n--Xy,--XyZ\r\n1,2"));
        }
    }

    #[test]
    fn the_budget_says_who_was_over_it() {
        let budget = Budget::anonymous();
        assert!(budget.check(ANONYMOUS_BODY).is_ok());
        assert!(matches!(budget.check(ANONYMOUS_BODY + 1), Err(GuardError::KeyFirst(_))));
        budget.authenticated(1000);
        assert!(budget.check(1000 + MULTIPART_SLACK).is_ok());
        assert!(matches!(budget.check(u64::MAX), Err(GuardError::TooLarge(_))));
    }
}
