//! The fast path of [`super::decode`]: one pass over the bytes of a flat JSON object, for the
//! events producers send — string, null, boolean and number values, no escapes. It reads the
//! fields `serde_json` would read, to the same [`Fields`], or gives up (`None`) at the first
//! thing it does not fully check — an escape, a nested value, a control character, a number
//! where serde_json would parse it, anything malformed — and leaves the payload to serde_json.
//! So every refusal, and every reason, is serde_json's; the differential test in `decode`
//! holds the two paths to the same answers.

use std::borrow::Cow;

use super::decode::{Fields, Loose};

/// The fields of `text`, when it is a flat object this scanner reads whole.
pub(super) fn scan(text: &str) -> Option<Fields<'_>> {
    let mut scanner = Scanner { bytes: text.as_bytes(), text, at: 0 };
    let mut fields = Fields::default();
    scanner.skip_whitespace();
    scanner.expect(b'{')?;
    scanner.skip_whitespace();
    if scanner.peek()? == b'}' {
        scanner.at += 1;
        return scanner.end().then_some(fields);
    }
    loop {
        let key = scanner.string()?;
        scanner.skip_whitespace();
        scanner.expect(b':')?;
        scanner.skip_whitespace();
        match key {
            "event_id" => fields.event_id = scanner.loose()?,
            "ts" => fields.ts = scanner.loose()?,
            "event_type" => fields.event_type = scanner.loose()?,
            "stream_id" => fields.stream_id = scanner.loose()?,
            "user_id" => fields.user_id = scanner.loose()?,
            "message_len" => fields.message_len = Some(scanner.raw()?),
            "amount_usd" => fields.amount_usd = Some(scanner.raw()?),
            "amount" => fields.amount = Some(scanner.raw()?),
            _ => drop(scanner.loose()?),
        }
        scanner.skip_whitespace();
        match scanner.next()? {
            b',' => scanner.skip_whitespace(),
            b'}' => return scanner.end().then_some(fields),
            _ => return None,
        }
    }
}

struct Scanner<'a> {
    bytes: &'a [u8],
    text: &'a str,
    at: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// Whether only whitespace follows.
    fn end(&mut self) -> bool {
        self.skip_whitespace();
        self.at == self.bytes.len()
    }

    /// A string without escapes or control characters, borrowed.
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.at;
        let length = first_special(&self.bytes[start..])?;
        self.at = start + length;
        self.expect(b'"')?;
        // The text is UTF-8 and the string ends at an ASCII quote: a char boundary.
        Some(&self.text[start..start + length])
    }

    /// `null`, `true` or `false`, as its text.
    fn literal(&mut self) -> Option<&'a str> {
        for word in ["null", "true", "false"] {
            if self.bytes[self.at..].starts_with(word.as_bytes()) {
                self.at += word.len();
                return Some(word);
            }
        }
        None
    }

    /// A value as [`Loose`] reads it: a string, null or a boolean (serde_json parses numbers
    /// here, and may refuse one out of range: they are left to it).
    fn loose(&mut self) -> Option<Loose<'a>> {
        match self.peek()? {
            b'"' => Some(Loose::Str(Cow::Borrowed(self.string()?))),
            _ => match self.literal()? {
                "null" => Some(Loose::Null),
                _ => Some(Loose::Other),
            },
        }
    }

    /// A value as its JSON text (a raw value): a string, a literal or a number of JSON's
    /// grammar.
    fn raw(&mut self) -> Option<&'a str> {
        let start = self.at;
        match self.peek()? {
            b'"' => {
                self.string()?;
            }
            b'-' | b'0'..=b'9' => self.number()?,
            _ => {
                self.literal()?;
            }
        }
        Some(&self.text[start..self.at])
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.expect_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.expect_digits()?;
        }
        Some(())
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
    }

    fn expect_digits(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
    }
}

/// Where the first `"`, `\\` or control character of `bytes` is: eight bytes at a time
/// (strings are short, too short for SIMD searches to pay for their set-up).
fn first_special(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // The high bit of each byte below `n`; exact up to the first such byte, which is all
    // that is asked (a borrow only spills into the bytes after it).
    let below = |word: u64, n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word & HIGH;
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let special =
            below(word ^ (ONES * u64::from(b'"')), 1) | below(word ^ (ONES * u64::from(b'\\')), 1) | below(word, 0x20);
        if special != 0 {
            return Some(at + (special.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    bytes[at..].iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20).map(|i| at + i)
}

#[cfg(test)]
mod tests {
    use super::first_special;

    #[test]
    fn the_first_special_byte_is_found_wherever_it_is() {
        for length in 0..40 {
            for special in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
                let mut bytes: Vec<u8> = (0..length).map(|i| [b'a', 0x20, 0xc3, 0xa9, 0x7f, 0xff][i % 6]).collect();
                assert_eq!(first_special(&bytes), None, "{bytes:?}");
                for at in 0..length {
                    let kept = bytes[at];
                    bytes[at] = special;
                    assert_eq!(first_special(&bytes), Some(at), "{bytes:?}");
                    bytes[at] = kept;
                }
            }
        }
    }
}
