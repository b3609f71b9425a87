//! The second pass's reading of an element. The first pass parsed the same bytes with serde_json and found
//! them valid, so here an element is only cut into its members by its strings and nesting: no value but a
//! geometry is parsed, and nothing is allocated for a feature but what its geometry needs. Geometries go
//! through the seeds the first pass used, so that their numbers are the same to the bit, and members are
//! picked as the first pass's reader picks them (see `ObjectSeed`), so that both see the same element.
//!
//! A file changed between the passes is read as well as it can be, or fails; it never makes this panic.

use std::borrow::Cow;

use serde::de::DeserializeSeed;

use super::frame::{DELIMITER, is_blank};
use super::items::{Item, invalid, string_of};
use super::marks::closing_bracket;
use super::properties::Properties;
use crate::errors::ImportError;
use crate::load::geojson::{GeometriesSeed, GeometrySeed, NodeSeed, Positions, build_geometry};

fn changed() -> ImportError {
    invalid("the JSON changed while it was loaded")
}

/// Reads the element at the start of `text` (which may go on after it), whose syntax the first pass
/// checked; and where it ends. An element cut short by the end of `text` fails.
pub(super) fn item<'a>(text: &'a str, positions: &Positions) -> Result<(Item<'a>, usize), ImportError> {
    let mut kind: Option<Cow<'a, str>> = None;
    let mut members = Properties::new();
    // Members read as soon as they were met, because of the type known then, as `ObjectSeed` does.
    let (mut properties, mut geometry, mut coordinates, mut geometries) = (None, None, None, None);
    let mut object = Members::of(text, 0)?;
    while let Some((key, at)) = object.key()? {
        let known = kind.as_deref();
        match key.as_ref() {
            "type" => {
                let raw = object.value(at)?;
                kind = string_of(raw);
                members.push(key, raw)?;
            }
            // A feature's properties are read where they are, rather than skipped and then read.
            "properties" if known == Some("Feature") && text.as_bytes().get(at) == Some(&b'{') => {
                let mut inner = Members::of(text, at)?;
                properties = Some(inner.properties()?);
                object.at = inner.at + 1;
            }
            "properties" if known == Some("Feature") => {
                object.value(at)?;
                properties = Some(Properties::new());
            }
            "geometry" if known == Some("Feature") => geometry = Some(object.value(at)?),
            _ if known == Some("Feature") => {
                object.value(at)?;
            }
            "coordinates" => coordinates = Some(object.value(at)?),
            "geometries" if known == Some("GeometryCollection") => geometries = Some(object.value(at)?),
            _ => members.push(key, object.value(at)?)?,
        }
    }
    let end = object.at + 1;
    let kind = kind.as_deref().unwrap_or("");
    if kind == "Feature" {
        let properties = match (properties, members.last("properties")) {
            (Some(p), _) => p,
            (None, Some("null")) | (None, None) => Properties::new(),
            (None, Some(raw)) => Members::of(raw, 0)?.properties()?,
        };
        let geometry = match geometry.or_else(|| members.last("geometry")) {
            Some(raw) => parse(raw, GeometrySeed { positions, nullable: true })?,
            None => None,
        };
        return Ok((Item { properties, geometry, is_feature: true }, end));
    }
    if coordinates.is_some() || kind == "GeometryCollection" {
        let coordinates = coordinates.map(|raw| parse(raw, NodeSeed { positions })).transpose()?;
        let geometries = geometries.or_else(|| members.last("geometries"));
        let geometries = geometries.map(|raw| parse(raw, GeometriesSeed { positions })).transpose()?;
        let geometry = build_geometry(kind, coordinates, geometries).map_err(invalid)?;
        return Ok((Item { properties: Properties::new(), geometry, is_feature: true }, end));
    }
    Ok((Item { properties: members, geometry: None, is_feature: false }, end))
}

fn parse<'a, T>(raw: &'a str, seed: impl DeserializeSeed<'a, Value = T>) -> Result<T, ImportError> {
    let mut de = serde_json::Deserializer::from_str(raw);
    seed.deserialize(&mut de).map_err(|_| changed())
}

/// The members of an object in a text, one at a time: each name (unescaped), then the raw text of its value.
struct Members<'a> {
    text: &'a str,
    /// Where reading goes on: after the `{`, or after the last value read; at the `}` once all were read.
    at: usize,
}

impl<'a> Members<'a> {
    /// The object that starts at `at`.
    fn of(text: &'a str, at: usize) -> Result<Members<'a>, ImportError> {
        let at = skip_blanks(text.as_bytes(), at);
        if text.as_bytes().get(at) != Some(&b'{') {
            return Err(changed());
        }
        Ok(Members { text, at: at + 1 })
    }

    /// The next member's name and where its value starts; None at the end of the object.
    fn key(&mut self) -> Result<Option<(Cow<'a, str>, usize)>, ImportError> {
        let (text, bytes) = (self.text, self.text.as_bytes());
        let mut at = skip_blanks(bytes, self.at);
        match bytes.get(at) {
            Some(b'}') => {
                self.at = at;
                return Ok(None);
            }
            Some(b',') => at = skip_blanks(bytes, at + 1),
            _ => {}
        }
        if bytes.get(at) != Some(&b'"') {
            return Err(changed());
        }
        let (key_end, escaped) = string_end(bytes, at + 1)?;
        let key = text.get(at + 1..key_end - 1).ok_or_else(changed)?;
        let key = if escaped {
            Cow::Owned(serde_json::from_str::<String>(&text[at..key_end]).map_err(|_| changed())?)
        } else {
            Cow::Borrowed(key)
        };
        let colon = skip_blanks(bytes, key_end);
        if bytes.get(colon) != Some(&b':') {
            return Err(changed());
        }
        Ok(Some((key, skip_blanks(bytes, colon + 1))))
    }

    /// The raw text of the value that starts at `at`; reading goes on after it.
    fn value(&mut self, at: usize) -> Result<&'a str, ImportError> {
        let end = value_end(self.text.as_bytes(), at)?;
        self.at = end;
        self.text.get(at..end).ok_or_else(changed)
    }

    /// The remaining members, as properties.
    fn properties(&mut self) -> Result<Properties<'a>, ImportError> {
        let mut properties = Properties::new();
        while let Some((key, at)) = self.key()? {
            properties.push(key, self.value(at)?)?;
        }
        Ok(properties)
    }
}

fn skip_blanks(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() && is_blank(bytes[at]) {
        at += 1;
    }
    at
}

/// Where the string whose content starts at `at` ends (after its closing quote), and whether it has
/// escapes. A loop rather than `memchr`: the strings of GeoJSON are short, and a call for each cost more
/// than it saved.
fn string_end(bytes: &[u8], mut at: usize) -> Result<(usize, bool), ImportError> {
    let mut escaped = false;
    loop {
        while at < bytes.len() && !matches!(bytes[at], b'"' | b'\\') {
            at += 1;
        }
        match bytes.get(at) {
            None => return Err(changed()),
            Some(b'"') => return Ok((at + 1, escaped)),
            // the byte after a backslash is never the end
            Some(_) => {
                escaped = true;
                at += 2;
            }
        }
    }
}

/// Where the value that starts at `at` ends: strings and nesting are followed, scalars run to the next
/// delimiter.
fn value_end(bytes: &[u8], mut at: usize) -> Result<usize, ImportError> {
    match bytes.get(at) {
        None => Err(changed()),
        Some(b'"') => Ok(string_end(bytes, at + 1)?.0),
        Some(b'{' | b'[') => closing_bracket(&bytes[at..]).map(|end| at + end + 1).ok_or_else(changed),
        Some(_) => {
            while at < bytes.len() && !DELIMITER[bytes[at] as usize] {
                at += 1;
            }
            Ok(at)
        }
    }
}
