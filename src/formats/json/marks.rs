//! Where a JSON object or array ends, found 64 bytes at a time as simdjson's first stage does: bit masks of
//! the quotes, backslashes and brackets of a block, the escaped bytes and the inside of strings worked out
//! from them with a few integer operations, and only the brackets outside strings looked at one by one.
//! Testing each byte in turn took a third of the first pass over a GeoJSON file.

/// Bytes looked at together: one bit each in a `u64`.
pub const BLOCK: usize = 64;

/// The bytes of a block that matter, one bit per byte.
#[derive(Debug, PartialEq)]
struct Marks {
    quotes: u64,
    backslashes: u64,
    /// `{` and `[`
    opens: u64,
    /// `}` and `]`
    closes: u64,
}

#[cfg(target_arch = "x86_64")]
fn marks(block: &[u8; BLOCK]) -> Marks {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8};
    let mut m = Marks { quotes: 0, backslashes: 0, opens: 0, closes: 0 };
    for (k, part) in block.chunks_exact(16).enumerate() {
        // SAFETY: SSE2 is part of every x86_64 processor, and the load reads the 16 bytes of `part`.
        let [q, b, o, c] = unsafe {
            let bytes = _mm_loadu_si128(part.as_ptr().cast());
            let is = |c: u8| _mm_movemask_epi8(_mm_cmpeq_epi8(bytes, _mm_set1_epi8(c as i8))) as u16;
            // `[` and `]` are `{` and `}` without the 0x20 bit
            let folded = _mm_or_si128(bytes, _mm_set1_epi8(0x20));
            let folded_is = |c: u8| _mm_movemask_epi8(_mm_cmpeq_epi8(folded, _mm_set1_epi8(c as i8))) as u16;
            [is(b'"'), is(b'\\'), folded_is(b'{'), folded_is(b'}')]
        };
        let shift = 16 * k;
        m.quotes |= u64::from(q) << shift;
        m.backslashes |= u64::from(b) << shift;
        m.opens |= u64::from(o) << shift;
        m.closes |= u64::from(c) << shift;
    }
    m
}

#[cfg(not(target_arch = "x86_64"))]
fn marks(block: &[u8; BLOCK]) -> Marks {
    plain_marks(block)
}

#[cfg(any(test, not(target_arch = "x86_64")))]
fn plain_marks(block: &[u8; BLOCK]) -> Marks {
    let bits = |f: fn(u8) -> bool| block.iter().enumerate().fold(0u64, |m, (i, &b)| m | (u64::from(f(b)) << i));
    Marks {
        quotes: bits(|b| b == b'"'),
        backslashes: bits(|b| b == b'\\'),
        opens: bits(|b| matches!(b, b'{' | b'[')),
        closes: bits(|b| matches!(b, b'}' | b']')),
    }
}

/// Each bit set becomes the parity of the bits set up to it: with quotes, the inside of strings (the
/// opening quote in, the closing one out).
fn prefix_xor(mut x: u64) -> u64 {
    for shift in [1, 2, 4, 8, 16, 32] {
        x ^= x << shift;
    }
    x
}

/// Scans an object or array block by block; what carries from one block to the next.
#[derive(Debug, Default, Clone, Copy)]
pub struct Nesting {
    depth: usize,
    in_string: bool,
    /// The first byte of the next block follows an odd run of backslashes.
    escaped: bool,
}

impl Nesting {
    /// The bytes of `backslashes`' block that an odd run of backslashes escapes (simdjson's
    /// `find_escaped_branchless`).
    fn escaped(&mut self, backslashes: u64) -> u64 {
        const EVEN: u64 = 0x5555_5555_5555_5555;
        let carried = u64::from(self.escaped);
        let backslashes = backslashes & !carried;
        let follows_escape = (backslashes << 1) | carried;
        let odd_starts = backslashes & !EVEN & !follows_escape;
        let (even_starts, overflow) = odd_starts.overflowing_add(backslashes);
        self.escaped = overflow;
        (EVEN ^ (even_starts << 1)) & follows_escape
    }

    /// Where in `block` the value being scanned ends (its closing bracket), if it does.
    pub fn block(&mut self, block: &[u8; BLOCK]) -> Option<usize> {
        let m = marks(block);
        // An escaped byte is nothing but a byte (only strings have escapes in valid JSON).
        let plain = !self.escaped(m.backslashes);
        let quotes = m.quotes & plain;
        let mut inside = prefix_xor(quotes);
        if self.in_string {
            inside = !inside;
        }
        self.in_string = inside >> 63 == 1;
        let (opens, closes) = (m.opens & plain & !inside, m.closes & plain & !inside);
        // Fewer closing brackets than the depth: the value cannot end in this block.
        if (closes.count_ones() as usize) < self.depth {
            self.depth = self.depth + opens.count_ones() as usize - closes.count_ones() as usize;
            return None;
        }
        let mut brackets = opens | closes;
        while brackets != 0 {
            let i = brackets.trailing_zeros() as usize;
            brackets &= brackets - 1;
            if opens >> i & 1 == 1 {
                self.depth += 1;
            } else {
                self.depth = self.depth.saturating_sub(1);
                if self.depth == 0 {
                    return Some(i);
                }
            }
        }
        None
    }
}

/// Where the object or array at the start of `bytes` ends (the index of its closing bracket), if it ends
/// within them.
pub fn closing_bracket(bytes: &[u8]) -> Option<usize> {
    let mut nesting = Nesting::default();
    let mut blocks = bytes.chunks_exact(BLOCK);
    for (k, block) in blocks.by_ref().enumerate() {
        if let Some(i) = nesting.block(block.try_into().expect("a whole block")) {
            return Some(k * BLOCK + i);
        }
    }
    let rest = blocks.remainder();
    let mut tail = [b' '; BLOCK];
    tail[..rest.len()].copy_from_slice(rest);
    nesting.block(&tail).map(|i| bytes.len() - rest.len() + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Byte by byte, as the scanner did before, but for backslashes outside strings (never in valid JSON,
    /// whose parser then says what is wrong): they escape the next byte here too.
    fn plain_end(bytes: &[u8]) -> Option<usize> {
        let (mut depth, mut in_string, mut at) = (0usize, false, 0);
        while at < bytes.len() {
            match (in_string, bytes[at]) {
                // outside a string (never in valid JSON) too, as the block scan has it
                (_, b'\\') => at += 1,
                (_, b'"') => in_string = !in_string,
                (false, b'{' | b'[') => depth += 1,
                (false, b'}' | b']') => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return Some(at);
                    }
                }
                _ => {}
            }
            at += 1;
        }
        None
    }

    #[test]
    fn every_byte_value_is_marked_as_the_plain_test_says() {
        for b in 0..=255u8 {
            let mut block = [b'a'; BLOCK];
            for at in [0, 15, 16, 63] {
                block[at] = b;
            }
            assert_eq!(marks(&block), plain_marks(&block), "byte {b}");
        }
    }

    #[test]
    fn ends_agree_with_a_byte_by_byte_scan_on_random_values() {
        // Runs of backslashes across blocks, brackets in strings, strings across blocks: an alphabet
        // of the bytes that matter, and a few that do not.
        let alphabet = br#"{}[]"\\\\ab "#;
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut checked = 0;
        for case in 0..20_000 {
            let len = 1 + case % 300;
            let mut bytes = vec![b'{'];
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                bytes.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            let expected = plain_end(&bytes);
            checked += usize::from(expected.is_some());
            assert_eq!(closing_bracket(&bytes), expected, "{}", String::from_utf8_lossy(&bytes));
        }
        assert!(checked > 1000, "too few values ended: {checked}");
    }

    #[test]
    fn escapes_and_strings_carry_across_blocks() {
        for pad in 0..BLOCK + 2 {
            for tail in [r#"\\"}"#, r#"\"}"},"#, r#"\\\"]}"}"#, "x}"] {
                let text = format!(r#"{{"{}{tail}"#, "a".repeat(pad));
                assert_eq!(closing_bracket(text.as_bytes()), plain_end(text.as_bytes()), "{text}");
            }
        }
    }
}
