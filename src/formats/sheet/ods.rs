//! ODS written with indentation (GDAL's writer, hence QGIS's exports) has whitespace between the cells of a
//! row, which calamine 0.38 refuses ("Expecting 'table-cell'"). Such a file is read again from a copy, in
//! memory, whose content.xml has no whitespace between elements: ODF gives that whitespace no meaning
//! (spaces inside a cell's text are written as `<text:s/>`).

use std::io::{Cursor, Write};
use std::path::Path;

use quick_xml::events::Event;

/// The parts calamine reads of an ODS; any other is left out of the copy.
const PARTS: &[&str] = &["mimetype", "META-INF/manifest.xml", "meta.xml"];

/// Whether calamine refused the file for finding text between the cells of a row.
pub fn is_indentation_refused(e: &calamine::OdsError) -> bool {
    matches!(e, calamine::OdsError::Mismatch { expected: "table-cell", found } if found.starts_with("Text"))
}

/// The ODS at `path` with its content.xml compacted, as an in-memory zip calamine can read.
pub fn compacted(path: &Path) -> Result<Cursor<Vec<u8>>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut source = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|e| e.to_string())?;
    let mut copy = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for part in PARTS.iter().chain(["content.xml"].iter()) {
        let mut entry = match source.by_name(part) {
            Ok(entry) => entry,
            Err(zip::result::ZipError::FileNotFound) => continue,
            Err(e) => return Err(format!("{part}: {e}")),
        };
        copy.start_file(*part, stored).map_err(|e| e.to_string())?;
        if *part == "content.xml" {
            compact(std::io::BufReader::new(&mut entry), &mut copy)?;
        } else {
            std::io::copy(&mut entry, &mut copy).map_err(|e| format!("{part}: {e}"))?;
        }
    }
    copy.finish().map_err(|e| e.to_string())
}

/// Copies an XML document, leaving out the text between elements that is only whitespace.
fn compact(from: impl std::io::BufRead, to: &mut impl Write) -> Result<(), String> {
    let mut reader = quick_xml::Reader::from_reader(from);
    reader.config_mut().trim_text(false);
    let mut writer = quick_xml::Writer::new(to);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_event_into(&mut buf).map_err(|e| format!("content.xml: {e}"))? {
            Event::Eof => return Ok(()),
            Event::Text(t) if t.iter().all(u8::is_ascii_whitespace) => {}
            event => writer.write_event(event).map_err(|e| format!("content.xml: {e}"))?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::compact;

    #[test]
    fn whitespace_between_elements_goes_and_text_stays() {
        let xml = "<row>\n  <cell><p>a b</p></cell>\n  <cell><p>  </p></cell>\n</row>";
        let mut out = Vec::new();
        compact(xml.as_bytes(), &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "<row><cell><p>a b</p></cell><cell><p></p></cell></row>");
    }
}
