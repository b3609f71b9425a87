//! Inputs built to hurt the server, shared by the hostile tests: archive bombs hidden in metadata, JSON
//! elements too big to hold, records of the costliest shapes.

use std::io::Write;

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A tar header block: `name`, `size` bytes of data, entry type `kind` (GNU magic, as GNU tar writes).
pub fn tar_header(name: &[u8], size: u64, kind: u8) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name);
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = kind;
    h[257..265].copy_from_slice(b"ustar  \0");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// The review's recipe (finding #4): a GNU long-name entry, then a long-link one, each declaring 4 GiB of
/// zeros. Written as gzip members of 1 MiB each (a gzip stream may be several members), it is about 8 MB.
pub fn long_name_bomb() -> Vec<u8> {
    let size: u64 = 4 << 30;
    let zeros = gzip(&vec![0u8; 1 << 20]);
    let mut out = Vec::with_capacity(9 << 20);
    for kind in [b'L', b'K'] {
        out.extend(gzip(&tar_header(b"././@LongLink", size, kind)));
        for _ in 0..(size >> 20) {
            out.extend_from_slice(&zeros);
        }
    }
    out
}

/// A FeatureCollection of one LineString feature of about `megabytes` MB: one element to hold whole.
pub fn geojson_of_one_huge_feature(megabytes: usize) -> Vec<u8> {
    let position = "[-73.985664,40.748441],";
    let mut out = String::with_capacity((megabytes << 20) + 200);
    out.push_str(r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"coast"},"#);
    out.push_str(r#""geometry":{"type":"LineString","coordinates":["#);
    while out.len() < megabytes << 20 {
        out.push_str(position);
    }
    out.push_str("[-73.985664,40.748441]]}}]}");
    out.into_bytes()
}

/// `unit` repeated to just under `total` bytes, between `head` and `tail`.
pub fn padded_text(head: &str, unit: &str, total: usize, tail: &str) -> Vec<u8> {
    let mut out = String::with_capacity(total + tail.len());
    out.push_str(head);
    while out.len() + unit.len() + tail.len() < total {
        out.push_str(unit);
    }
    out.push_str(tail);
    out.into_bytes()
}
