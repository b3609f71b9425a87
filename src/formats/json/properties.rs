//! An element's properties as a list in file order, each value its raw JSON text borrowed from the element.
//! A map sorted by name cost an allocation and a string comparison per member of every element, for the
//! rare object that repeats a name; readers resolve repeats themselves (the last value wins, as in a map).

use std::borrow::Cow;
use std::collections::HashSet;

use crate::errors::{ImportError, codes};
use crate::load::tabular::{MAX_SOURCE_COLUMNS, check_width};

/// Longest property name: names become column names (of at most 63 bytes), and are kept for the whole
/// import, so a long one only costs memory.
pub(super) const MAX_NAME_BYTES: usize = 4 << 10;

pub(super) fn long_name(len: usize) -> ImportError {
    ImportError::new(
        codes::DATASET_TOO_BIG,
        format!("a property name is {len} bytes long, more than the {} KiB a name may be", MAX_NAME_BYTES >> 10),
    )
}

/// The members of an object, in file order, a repeated name included each time.
#[derive(Default)]
pub struct Properties<'a> {
    members: Vec<(Cow<'a, str>, &'a str)>,
    /// The distinct names, gathered only once the object has more members than a table may have columns:
    /// repeats are rare, and only the distinct names count against that limit.
    distinct: Option<HashSet<Cow<'a, str>>>,
}

impl<'a> Properties<'a> {
    pub fn new() -> Properties<'a> {
        Properties::default()
    }

    /// Keeps a member, refusing a name longer than [`MAX_NAME_BYTES`] or one distinct name more than a
    /// table may have columns.
    pub fn push(&mut self, key: Cow<'a, str>, raw: &'a str) -> Result<(), ImportError> {
        if key.len() > MAX_NAME_BYTES {
            return Err(long_name(key.len()));
        }
        if let Some(distinct) = &mut self.distinct {
            distinct.insert(key.clone());
            check_width(distinct.len())?;
        } else if self.members.len() >= MAX_SOURCE_COLUMNS {
            let mut distinct: HashSet<Cow<'a, str>> = self.members.iter().map(|(k, _)| k.clone()).collect();
            distinct.insert(key.clone());
            check_width(distinct.len())?;
            self.distinct = Some(distinct);
        }
        self.members.push((key, raw));
        Ok(())
    }

    /// The value of the last member called `name`.
    pub fn last(&self, name: &str) -> Option<&'a str> {
        self.members.iter().rev().find(|(k, _)| k == name).map(|(_, raw)| *raw)
    }

    /// The value of the `i`th member, if there is one.
    pub fn value(&self, i: usize) -> Option<&'a str> {
        self.members.get(i).map(|(_, raw)| *raw)
    }

    /// The members, in file order (a repeated name each time).
    pub fn iter(&self) -> impl Iterator<Item = &(Cow<'a, str>, &'a str)> {
        self.members.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_names_count_once_against_the_width_limit() {
        let mut p = Properties::new();
        for i in 0..MAX_SOURCE_COLUMNS + 10 {
            p.push(Cow::Borrowed(if i % 2 == 0 { "a" } else { "b" }), "1").unwrap();
        }
        let names: Vec<String> = (0..MAX_SOURCE_COLUMNS - 2).map(|i| format!("c{i}")).collect();
        for name in &names {
            p.push(Cow::Borrowed(name), "2").unwrap();
        }
        assert_eq!(p.push(Cow::Borrowed("one more"), "3").err().map(|e| e.code), Some(codes::TOO_MANY_COLUMNS));
        assert_eq!(p.last("a"), Some("1"));
        assert_eq!(p.last("c7"), Some("2"));
    }
}
