//! PostgreSQL binary input forms that the shared COPY writer does not need for files: `numeric` (MySQL's
//! DECIMAL and BIGINT UNSIGNED), `interval` (MySQL's TIME, which spans ±838 hours) and `jsonb`.

/// `numeric` from decimal text (`-123.4500`, `18446744073709551615`): base-10000 digit groups with a
/// weight, a sign and the display scale, exactly as `numeric_recv` reads them. None for text that is not
/// a plain decimal number.
pub fn numeric(text: &str) -> Option<Vec<u8>> {
    let t = text.trim();
    let (negative, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if (int.is_empty() && frac.is_empty()) || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let dscale = u16::try_from(frac.len()).ok()?;
    let int = int.trim_start_matches('0');
    let mut digits = String::with_capacity(int.len() + frac.len() + 6);
    digits.extend(std::iter::repeat_n('0', (4 - int.len() % 4) % 4));
    digits.push_str(int);
    let int_groups = digits.len() / 4;
    digits.push_str(frac);
    digits.extend(std::iter::repeat_n('0', (4 - frac.len() % 4) % 4));
    let mut groups: Vec<i16> =
        digits.as_bytes().chunks(4).map(|c| c.iter().fold(0i16, |acc, d| acc * 10 + i16::from(d - b'0'))).collect();
    let mut weight = int_groups as i32 - 1;
    let leading = groups.iter().take_while(|g| **g == 0).count();
    groups.drain(..leading);
    weight -= leading as i32;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    let zero = groups.is_empty();
    let mut out = Vec::with_capacity(8 + 2 * groups.len());
    out.extend_from_slice(&i16::try_from(groups.len()).ok()?.to_be_bytes());
    out.extend_from_slice(&(if zero { 0 } else { i16::try_from(weight).ok()? }).to_be_bytes());
    out.extend_from_slice(&(if negative && !zero { 0x4000u16 } else { 0 }).to_be_bytes());
    out.extend_from_slice(&dscale.to_be_bytes());
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
    Some(out)
}

/// `interval` of `micros` microseconds (no days or months: a MySQL TIME is a plain duration).
pub fn interval(micros: i64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&micros.to_be_bytes());
    out
}

/// `jsonb` in binary form: a version byte, then the JSON text (which the server parses and checks).
pub fn jsonb(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 1);
    out.push(1);
    out.extend_from_slice(text.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str) -> (i16, i16, u16, u16, Vec<i16>) {
        let b = numeric(text).unwrap();
        let word = |i: usize| i16::from_be_bytes([b[i], b[i + 1]]);
        let n = word(0);
        let digits = (0..n as usize).map(|k| word(8 + 2 * k)).collect();
        (n, word(2), word(4) as u16, word(6) as u16, digits)
    }

    #[test]
    fn numeric_groups_weight_sign_and_scale() {
        assert_eq!(parts("12345.6"), (3, 1, 0, 1, vec![1, 2345, 6000]));
        assert_eq!(parts("-123.4500"), (2, 0, 0x4000, 4, vec![123, 4500]));
        assert_eq!(parts("0.0001"), (1, -1, 0, 4, vec![1]));
        assert_eq!(parts("0.00"), (0, 0, 0, 2, vec![]));
        assert_eq!(parts("-0"), (0, 0, 0, 0, vec![]));
        assert_eq!(parts("10000"), (1, 1, 0, 0, vec![1]));
        assert_eq!(parts("18446744073709551615"), (5, 4, 0, 0, vec![1844, 6744, 737, 955, 1615]));
        for bad in ["", "-", "1e5", "1.2.3", "abc", "1,5"] {
            assert!(numeric(bad).is_none(), "{bad}");
        }
    }
}
