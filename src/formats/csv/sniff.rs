//! Reading the first megabyte of a delimited text file to learn how to read the rest: its character
//! encoding, its delimiter, and which columns have quoted values.

use encoding_rs::Encoding;

use crate::detect::text::{detect_encoding, looks_binary};
use crate::errors::{ImportError, codes};
use crate::source::input::Input;

/// Bytes read to decide.
pub const SAMPLE_BYTES: usize = 1 << 20;
/// Records looked at to choose the delimiter.
const SAMPLE_RECORDS: usize = 200;
const DELIMITERS: [u8; 5] = [b',', b';', b'\t', b'|', b' '];

/// How to read a delimited file.
#[derive(Debug, Clone)]
pub struct Dialect {
    pub encoding: &'static Encoding,
    pub delimiter: u8,
    /// Per column of the sample: whether any data value was quoted.
    pub quoted_columns: Vec<bool>,
}

/// Samples the file `input`. `extension_hint` is the file's lowercase extension (`tsv` favours tabs).
pub fn sniff(input: &Input, extension_hint: &str) -> Result<Dialect, ImportError> {
    // One byte more than the sample tells whether the sample is the whole file.
    let mut sample = input.head(SAMPLE_BYTES + 1)?;
    let complete = sample.len() <= SAMPLE_BYTES;
    sample.truncate(SAMPLE_BYTES);
    if sample.is_empty() {
        return Err(ImportError::new(codes::EMPTY_FILE, "the file is empty (0 bytes)"));
    }
    let encoding = detect_encoding(&sample, complete);
    let (text, _, _) = encoding.decode(&sample);
    if text.trim().is_empty() {
        return Err(ImportError::new(codes::EMPTY_FILE, "the file holds only blank space"));
    }
    if looks_binary(&text) {
        return Err(ImportError::new(
            codes::ENCODING_DETECTION,
            "the file does not hold readable text in any encoding we know; it may be a binary file with a text \
             extension",
        ));
    }
    let (delimiter, quoted_columns) = choose_delimiter(&text, complete, extension_hint);
    Ok(Dialect { encoding, delimiter, quoted_columns })
}

/// Per record, whether each field was quoted. Follows CSV quoting (doubled quotes, line breaks inside
/// quotes, CR, LF or CRLF endings) and skips blank lines, like the csv crate does.
fn sample_records(text: &str, delimiter: char, complete: bool) -> Vec<Vec<bool>> {
    let mut records = Vec::new();
    let mut fields: Vec<bool> = Vec::new();
    let (mut in_quotes, mut quoted, mut at_start, mut line_has_content) = (false, false, true, false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                } else {
                    in_quotes = false;
                }
            }
            continue;
        }
        if c == '"' && at_start {
            in_quotes = true;
            quoted = true;
            at_start = false;
            line_has_content = true;
        } else if c == delimiter {
            fields.push(quoted);
            quoted = false;
            at_start = true;
            line_has_content = true;
        } else if c == '\r' || c == '\n' {
            if c == '\r' && chars.peek() == Some(&'\n') {
                chars.next();
            }
            if line_has_content {
                fields.push(quoted);
                records.push(std::mem::take(&mut fields));
                if records.len() >= SAMPLE_RECORDS {
                    return records;
                }
            }
            (quoted, at_start, line_has_content) = (false, true, false);
        } else {
            at_start = false;
            line_has_content = true;
        }
    }
    // The last record of a cut sample may be incomplete; of a whole file it is real.
    if complete && line_has_content && !in_quotes {
        fields.push(quoted);
        records.push(fields);
    }
    records
}

/// Chooses among `,` `;` tab `|` and space: the delimiter that splits the header into at least two fields
/// and most rows into as many fields as the header. Returns it with the quoted-columns map.
fn choose_delimiter(text: &str, complete: bool, extension_hint: &str) -> (u8, Vec<bool>) {
    struct Candidate {
        delimiter: u8,
        consistency: f64,
        width: usize,
        quoted: Vec<bool>,
    }
    let mut candidates = Vec::new();
    for d in DELIMITERS {
        let records = sample_records(text, d as char, complete);
        let Some(header) = records.first() else {
            continue;
        };
        if header.len() < 2 {
            continue;
        }
        let rows = &records[1..];
        let consistent = rows.iter().filter(|r| r.len() == header.len()).count();
        let consistency = if rows.is_empty() { 1.0 } else { consistent as f64 / rows.len() as f64 };
        let mut quoted = vec![false; rows.iter().map(Vec::len).max().unwrap_or(0).max(header.len())];
        for r in rows {
            for (i, q) in r.iter().enumerate() {
                quoted[i] |= *q;
            }
        }
        candidates.push(Candidate { delimiter: d, consistency, width: header.len(), quoted });
    }
    let hinted = match extension_hint {
        "tsv" | "tab" => Some(b'\t'),
        _ => None,
    };
    if let Some(h) = hinted
        && let Some(c) = candidates.iter().find(|c| c.delimiter == h && c.consistency >= 0.9)
    {
        return (c.delimiter, c.quoted.clone());
    }
    // A space splits prose too, so it only wins when nothing else fits.
    let weight = |d: u8| if d == b' ' { 1 } else { 2 };
    let best = candidates.into_iter().enumerate().max_by(|(ia, a), (ib, b)| {
        let key = |c: &Candidate| (c.consistency >= 0.9, weight(c.delimiter));
        key(a).cmp(&key(b)).then(a.consistency.total_cmp(&b.consistency)).then(a.width.cmp(&b.width)).then(ib.cmp(ia))
    });
    match best {
        Some((_, c)) => (c.delimiter, c.quoted),
        None => (b',', Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delimiter_of(text: &str) -> char {
        choose_delimiter(text, true, "csv").0 as char
    }

    #[test]
    fn finds_the_delimiter() {
        assert_eq!(delimiter_of("a,b,c\n1,2,3\n"), ',');
        assert_eq!(delimiter_of("a;b;c\n1,5;2,5;3\n"), ';');
        assert_eq!(delimiter_of("name\tdesc\nx\ta, b, c\n"), '\t');
        assert_eq!(delimiter_of("a|b\n1|2\n"), '|');
        assert_eq!(delimiter_of("a b c\n1 2 3\n"), ' ');
        assert_eq!(delimiter_of("first name,last name\nJohn Smith,Doe\n"), ',');
        assert_eq!(delimiter_of("only\n1\n"), ',');
        assert_eq!(delimiter_of("a,\"b;c\"\n\"1;2\",3\n"), ',');
    }

    #[test]
    fn knows_which_columns_are_quoted_across_line_breaks() {
        let (d, quoted) = choose_delimiter("id,note,n\r1,\"two\nlines\",3\r2,x,\"4\"\r", true, "csv");
        assert_eq!(d, b',');
        assert_eq!(quoted, vec![false, true, true]);
    }
}
