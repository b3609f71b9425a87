//! The structure of a JSON file above its elements, read by hand from the frames: the top array, the top
//! object (a FeatureCollection whose `features` are streamed, or an element itself) and the objects after
//! it, one per line. Each element is then parsed whole from memory ([`for_each_item`]).

use std::cell::RefCell;

use serde::de::{DeserializeSeed, IgnoredAny};
use tokio_util::sync::CancellationToken;

use super::frame::Frames;
use super::items::{Layout, ObjectSeed, Pass, Progress, Visit, invalid, too_large};
use super::properties::{MAX_NAME_BYTES, long_name};
use super::trusted;
use super::utf8::Utf8Input;
use crate::errors::{ImportError, stopped};
use crate::load::geojson::Positions;
use crate::load::tabular::POSITION_BYTES;

/// The structure above the elements (the top array, the top object and its `features`, the lines of
/// objects), read by hand from the frames; each element is then parsed whole from memory.
pub(super) struct Reader<'r, 'v> {
    frames: &'r mut Frames,
    progress: &'r Progress,
    max_element: u64,
    pass: Pass,
    visit: &'r mut Visit<'v>,
}

fn not_valid(e: serde_json::Error) -> ImportError {
    invalid(format!("the JSON is not valid: {e}"))
}

impl<'r, 'v> Reader<'r, 'v> {
    pub(super) fn new(
        frames: &'r mut Frames,
        progress: &'r Progress,
        max_element: u64,
        pass: Pass,
        visit: &'r mut Visit<'v>,
    ) -> Reader<'r, 'v> {
        Reader { frames, progress, max_element, pass, visit }
    }

    /// A top-level array of elements, and nothing after it.
    pub(super) fn array(&mut self) -> Result<(), ImportError> {
        if self.frames.next_token()? != Some(b'[') {
            return Err(invalid("the JSON is not valid: expected an array"));
        }
        self.frames.consume(1);
        self.elements()?;
        match self.frames.next_token()? {
            None => Ok(()),
            Some(_) => Err(invalid("unexpected data after the array: trailing characters")),
        }
    }

    /// The elements of an array whose `[` was consumed, up to and with its `]`.
    fn elements(&mut self) -> Result<(), ImportError> {
        if self.frames.next_token()? == Some(b']') {
            self.frames.consume(1);
            return Ok(());
        }
        loop {
            self.frames.next_token()?;
            let end = self.next_element()?;
            self.frames.consume(end);
            match self.frames.next_token()? {
                Some(b',') => self.frames.consume(1),
                Some(b']') => {
                    self.frames.consume(1);
                    return Ok(());
                }
                None => return Err(invalid("the JSON is not valid: EOF while parsing a list")),
                Some(_) => return Err(invalid("the JSON is not valid: expected `,` or `]` after an element")),
            }
        }
    }

    /// Reads and visits the element at the start of the window; returns where it ends.
    fn next_element(&mut self) -> Result<usize, ImportError> {
        if self.pass == Pass::Trusting {
            return self.trusted_element();
        }
        let end = self.frames.value_end(0)?;
        self.element(end)?;
        Ok(end)
    }

    /// The second pass reads an element straight from the window, without first scanning for its end (a
    /// sixth of its time): the first pass found the element whole and valid. One cut short by the end of
    /// the window fails to read; it is then brought in whole, as the first pass does, and read again.
    fn trusted_element(&mut self) -> Result<usize, ImportError> {
        let Reader { frames, progress, visit, max_element, .. } = self;
        let mut retried = false;
        loop {
            progress.positions.reset();
            let text = frames.text();
            let in_window = text.len();
            match trusted::item(text, &progress.positions) {
                Ok((item, end)) => {
                    visit(item)?;
                    return Ok(end);
                }
                Err(_) if progress.positions.exceeded() => return Err(too_large(*max_element)),
                Err(e) => {
                    // Whole in the window and still unreadable: the file changed since the first pass.
                    if retried || frames.value_end(0)? <= in_window {
                        return Err(e);
                    }
                    retried = true;
                }
            }
        }
    }

    /// Parses the first `end` bytes of the window as one element and visits it.
    fn element(&mut self, end: usize) -> Result<(), ImportError> {
        let progress = self.progress;
        progress.positions.reset();
        let bytes = self.frames.bytes(0, end);
        if self.pass == Pass::Trusting {
            let text = std::str::from_utf8(bytes).map_err(|_| invalid("the JSON changed while it was loaded"))?;
            let (item, _) = trusted::item(text, &progress.positions)
                .map_err(|e| if progress.positions.exceeded() { too_large(self.max_element) } else { e })?;
            return (self.visit)(item);
        }
        let seed = ObjectSeed { progress, visit: &mut *self.visit };
        // Checked as UTF-8 once, whole (quick when it is ASCII), rather than string by string as the slice
        // reader does; one that is not is left to the slice reader, for its error.
        let result = match std::str::from_utf8(bytes) {
            Ok(text) => {
                let mut de = serde_json::Deserializer::from_str(text);
                seed.deserialize(&mut de).and_then(|()| de.end())
            }
            Err(_) => {
                let mut de = serde_json::Deserializer::from_slice(bytes);
                seed.deserialize(&mut de).and_then(|()| de.end())
            }
        };
        result.map_err(|e| match progress.failure.borrow_mut().take() {
            _ if progress.positions.exceeded() => too_large(self.max_element),
            Some(failure) => failure,
            None => not_valid(e),
        })
    }

    /// One or more top-level objects: the first may be a FeatureCollection, whose `features` are streamed;
    /// any further one is an element of its own (newline-delimited features or rows).
    pub(super) fn objects(&mut self) -> Result<(), ImportError> {
        if self.frames.next_token()? != Some(b'{') {
            return Err(invalid("the JSON is not valid: expected an object"));
        }
        self.top_object()?;
        while self.frames.next_token()?.is_some() {
            let end = self.next_element()?;
            self.frames.consume(end);
        }
        Ok(())
    }

    /// The first top-level object, member by member. Until it is known to be a FeatureCollection (by a
    /// `features` member or its type) it stays in the window whole, as the element it may be; once known,
    /// what was kept is dropped and every other member is an element of its own, checked and skipped.
    fn top_object(&mut self) -> Result<(), ImportError> {
        let syntax = |what: &str| invalid(format!("the JSON is not valid: {what}"));
        let mut collection = false;
        let mut at = 1;
        let (next, first) = self.frames.skip_blanks(at)?;
        if first == Some(b'}') {
            return self.element(next + 1);
        }
        loop {
            let (key_at, quote) = self.frames.skip_blanks(at)?;
            if quote != Some(b'"') {
                return Err(syntax("expected a member name"));
            }
            let key_end = self.frames.value_end(key_at)?;
            let key: String = serde_json::from_slice(self.frames.bytes(key_at, key_end)).map_err(not_valid)?;
            let (colon_at, colon) = self.frames.skip_blanks(key_end)?;
            if colon != Some(b':') {
                return Err(syntax("expected `:` after a member name"));
            }
            let (value_at, _) = self.frames.skip_blanks(colon_at + 1)?;
            if key == "features" {
                // A FeatureCollection: what was kept is not needed, and each feature is an element.
                collection = true;
                self.frames.consume(value_at);
                if self.frames.byte(0)? != Some(b'[') {
                    return Err(syntax("the features of a FeatureCollection are not an array"));
                }
                self.frames.consume(1);
                self.elements()?;
                at = 0;
            } else {
                if collection {
                    self.frames.consume(value_at);
                }
                let value_at = if collection { 0 } else { value_at };
                let value_end = self.frames.value_end(value_at)?;
                let value = self.frames.bytes(value_at, value_end);
                serde_json::from_slice::<IgnoredAny>(value).map_err(not_valid)?;
                if !collection && key.len() > MAX_NAME_BYTES {
                    return Err(long_name(key.len()));
                }
                if key == "type" && serde_json::from_slice::<String>(value).is_ok_and(|t| t == "FeatureCollection") {
                    collection = true;
                }
                at = value_end;
                if collection {
                    self.frames.consume(value_end);
                    at = 0;
                }
            }
            let (next, b) = self.frames.skip_blanks(at)?;
            match b {
                Some(b',') => at = next + 1,
                Some(b'}') if collection => {
                    self.frames.consume(next + 1);
                    return Ok(());
                }
                Some(b'}') => {
                    self.element(next + 1)?;
                    self.frames.consume(next + 1);
                    return Ok(());
                }
                None => return Err(syntax("EOF while parsing an object")),
                Some(_) => return Err(syntax("expected `,` or `}` after a member")),
            }
        }
    }
}

/// Calls `visit` for every feature or row of the file, streaming, as `pass` reads them; no element may
/// take more than `max_element` bytes. Stops at the next read once `stop` is cancelled.
pub fn for_each_item(
    source: &Utf8Input,
    layout: Layout,
    pass: Pass,
    max_element: u64,
    stop: &CancellationToken,
    visit: &mut Visit<'_>,
) -> Result<(), ImportError> {
    let progress = Progress { positions: Positions::new(max_element / POSITION_BYTES), failure: RefCell::new(None) };
    let mut frames = Frames::new(source.open()?, max_element, stop, too_large);
    let mut reader = Reader::new(&mut frames, &progress, max_element, pass, visit);
    let result = match layout {
        Layout::Array => reader.array(),
        Layout::Objects => reader.objects(),
    };
    if stop.is_cancelled() {
        return Err(stopped());
    }
    result
}
