//! Minimal JSON reader: `no_std`, no `alloc`, zero-copy.
//!
//! Why hand-written rather than a crate: `serde-json-core` deserialises into fixed-size types and
//! needs a buffer to unescape strings into. Our layer list and labels are JSON documents stored
//! *inside* JSON strings (safetensors metadata is a string -> string map), so they arrive escaped.
//! This reader undoes escaping lazily, one level per nesting, straight from the file bytes, so a
//! nested document is parsed in place with no buffer and no allocation. It is strict: RFC 8259
//! grammar, no trailing commas, bounded nesting, lone surrogates rejected.

use crate::error::JsonErrorKind as K;

/// Deepest array/object nesting accepted when skipping unknown values.
const MAX_DEPTH: u8 = 32;
/// Deepest string-inside-string nesting (header -> metadata document -> label string).
const MAX_LEVEL: u8 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct JErr {
    pub kind: K,
    pub offset: usize,
}

fn err(kind: K, offset: usize) -> JErr {
    JErr { kind, offset }
}

enum Dec {
    End,
    /// An unescaped `"` at this level: the end of the enclosing string literal.
    Quote,
    Ch(char),
}

/// Decodes one character of `s` at byte `pos`, undoing `level` levels of string escaping.
/// Returns the position after it (always a char boundary of `s`).
fn dec(s: &str, pos: usize, level: u8) -> Result<(Dec, usize), JErr> {
    if level == 0 {
        // ASCII (all of JSON's structure) without UTF-8 decoding; a byte >= 0x80 is either the
        // start of a multi-byte char or (never, as `pos` is a char boundary) a continuation byte,
        // which the general path reports as the end.
        return Ok(match s.as_bytes().get(pos) {
            Some(&b) if b.is_ascii() => (Dec::Ch(b as char), pos + 1),
            _ => match s.get(pos..).and_then(|r| r.chars().next()) {
                None => (Dec::End, pos),
                Some(c) => (Dec::Ch(c), pos + c.len_utf8()),
            },
        });
    }
    let (d, p) = dec(s, pos, level - 1)?;
    match d {
        Dec::End => Ok((Dec::End, p)),
        // The lower level's string ended inside ours: slices never include that, so it is malformed.
        Dec::Quote => Err(err(K::UnexpectedChar, pos)),
        Dec::Ch('"') => Ok((Dec::Quote, p)),
        Dec::Ch('\\') => escape(s, p, level - 1),
        Dec::Ch(c) if (c as u32) < 0x20 => Err(err(K::ControlChar, pos)),
        Dec::Ch(c) => Ok((Dec::Ch(c), p)),
    }
}

fn next_ch(s: &str, pos: usize, level: u8) -> Result<(char, usize), JErr> {
    match dec(s, pos, level)? {
        (Dec::Ch(c), p) => Ok((c, p)),
        _ => Err(err(K::BadEscape, pos)),
    }
}

fn hex4(s: &str, mut pos: usize, level: u8) -> Result<(u32, usize), JErr> {
    let mut v = 0u32;
    for _ in 0..4 {
        let (c, p) = next_ch(s, pos, level)?;
        v = v * 16 + c.to_digit(16).ok_or(err(K::BadEscape, pos))?;
        pos = p;
    }
    Ok((v, pos))
}

/// Decodes the escape whose backslash (at `level`) ended just before `pos`.
fn escape(s: &str, pos: usize, level: u8) -> Result<(Dec, usize), JErr> {
    let (e, p) = next_ch(s, pos, level)?;
    let c = match e {
        '"' => '"',
        '\\' => '\\',
        '/' => '/',
        'b' => '\u{8}',
        'f' => '\u{c}',
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        'u' => {
            let (hi, p) = hex4(s, p, level)?;
            if (0xD800..0xDC00).contains(&hi) {
                let (b, p) = next_ch(s, p, level)?;
                let (u, p) = next_ch(s, p, level)?;
                if b != '\\' || u != 'u' {
                    return Err(err(K::BadEscape, pos));
                }
                let (lo, p) = hex4(s, p, level)?;
                if !(0xDC00..0xE000).contains(&lo) {
                    return Err(err(K::BadEscape, pos));
                }
                let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                let c = char::from_u32(cp).ok_or(err(K::BadEscape, pos))?;
                return Ok((Dec::Ch(c), p));
            }
            // A lone low surrogate is not a char: from_u32 rejects it.
            let c = char::from_u32(hi).ok_or(err(K::BadEscape, pos))?;
            return Ok((Dec::Ch(c), p));
        }
        _ => return Err(err(K::BadEscape, pos)),
    };
    Ok((Dec::Ch(c), p))
}

/// A piece of text still carrying `level` levels of JSON string escaping.
/// Only produced by [`Parser::string`] after the whole literal was validated, so decoding it
/// cannot fail.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Text<'a> {
    s: &'a str,
    level: u8,
}

impl<'a> Text<'a> {
    pub(crate) const fn raw(s: &'a str) -> Self {
        Text { s, level: 0 }
    }

    pub(crate) fn chars(&self) -> Chars<'a> {
        Chars { s: self.s, pos: 0, level: self.level }
    }

    pub(crate) fn eq_str(&self, t: &str) -> bool {
        self.chars().eq(t.chars())
    }

    /// The text itself when it holds no escape sequence (then decoding changes nothing), so it
    /// can be lent out as a `&str` without copying.
    pub(crate) fn plain(&self) -> Option<&'a str> {
        if self.s.contains('\\') { None } else { Some(self.s) }
    }
}

#[derive(Clone)]
pub(crate) struct Chars<'a> {
    s: &'a str,
    pos: usize,
    level: u8,
}

impl Iterator for Chars<'_> {
    type Item = char;
    fn next(&mut self) -> Option<char> {
        match dec(self.s, self.pos, self.level) {
            Ok((Dec::Ch(c), p)) => {
                self.pos = p;
                Some(c)
            }
            _ => None,
        }
    }
}

/// A pull parser over one [`Text`].
pub(crate) struct Parser<'a> {
    s: &'a str,
    pos: usize,
    level: u8,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(t: Text<'a>) -> Self {
        Parser { s: t.s, pos: 0, level: t.level }
    }

    fn peek(&self) -> Result<Option<(char, usize)>, JErr> {
        Ok(match dec(self.s, self.pos, self.level)? {
            (Dec::Ch(c), p) => Some((c, p)),
            _ => None,
        })
    }

    fn ws(&mut self) -> Result<(), JErr> {
        while let Some((c, p)) = self.peek()? {
            if matches!(c, ' ' | '\t' | '\n' | '\r') {
                self.pos = p;
            } else {
                break;
            }
        }
        Ok(())
    }

    fn peek_nonws(&mut self) -> Result<char, JErr> {
        self.ws()?;
        self.peek()?.map(|x| x.0).ok_or(err(K::UnexpectedEnd, self.pos))
    }

    fn try_eat(&mut self, c: char) -> Result<bool, JErr> {
        self.ws()?;
        match self.peek()? {
            Some((d, p)) if d == c => {
                self.pos = p;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn eat(&mut self, c: char) -> Result<(), JErr> {
        if self.try_eat(c)? {
            Ok(())
        } else if self.peek()?.is_none() {
            Err(err(K::UnexpectedEnd, self.pos))
        } else {
            Err(err(K::UnexpectedChar, self.pos))
        }
    }

    fn expect_open(&mut self, c: char) -> Result<(), JErr> {
        let d = self.peek_nonws()?;
        if d != c {
            return Err(err(K::WrongType, self.pos));
        }
        self.eat(c)
    }

    /// Only whitespace may remain.
    pub(crate) fn end(&mut self) -> Result<(), JErr> {
        self.ws()?;
        match self.peek()? {
            None => Ok(()),
            Some(_) => Err(err(K::TrailingData, self.pos)),
        }
    }

    pub(crate) fn begin_object(&mut self) -> Result<(), JErr> {
        self.expect_open('{')
    }

    /// The next key of the current object (its value must be consumed next), or `None` at `}`.
    /// `first` must start `true` for each object.
    pub(crate) fn next_key(&mut self, first: &mut bool) -> Result<Option<Text<'a>>, JErr> {
        if self.try_eat('}')? {
            return Ok(None);
        }
        if !*first {
            self.eat(',')?;
        }
        *first = false;
        if self.peek_nonws()? != '"' {
            return Err(err(K::UnexpectedChar, self.pos));
        }
        let k = self.string()?;
        self.eat(':')?;
        Ok(Some(k))
    }

    pub(crate) fn begin_array(&mut self) -> Result<(), JErr> {
        self.expect_open('[')
    }

    /// `true` when another element follows (consume it next), `false` at `]`.
    pub(crate) fn next_elem(&mut self, first: &mut bool) -> Result<bool, JErr> {
        if self.try_eat(']')? {
            return Ok(false);
        }
        if !*first {
            self.eat(',')?;
        }
        *first = false;
        Ok(true)
    }

    /// `true` (and consumes it) if the next value is `null`.
    pub(crate) fn null(&mut self) -> Result<bool, JErr> {
        if self.peek_nonws()? == 'n' {
            self.literal("null")?;
            return Ok(true);
        }
        Ok(false)
    }

    fn literal(&mut self, word: &str) -> Result<(), JErr> {
        for w in word.chars() {
            match self.peek()? {
                Some((c, p)) if c == w => self.pos = p,
                Some(_) => return Err(err(K::UnexpectedChar, self.pos)),
                None => return Err(err(K::UnexpectedEnd, self.pos)),
            }
        }
        Ok(())
    }

    /// A string value; the returned text still needs one more level of unescaping, done lazily.
    pub(crate) fn string(&mut self) -> Result<Text<'a>, JErr> {
        if self.peek_nonws()? != '"' {
            return Err(err(K::WrongType, self.pos));
        }
        if self.level >= MAX_LEVEL {
            return Err(err(K::TooDeep, self.pos));
        }
        self.eat('"')?;
        let start = self.pos;
        loop {
            match dec(self.s, self.pos, self.level + 1)? {
                (Dec::Quote, p) => {
                    let s = self.s.get(start..self.pos).ok_or(err(K::UnexpectedEnd, start))?;
                    self.pos = p;
                    return Ok(Text { s, level: self.level + 1 });
                }
                (Dec::Ch(_), p) => self.pos = p,
                (Dec::End, _) => return Err(err(K::UnexpectedEnd, self.pos)),
            }
        }
    }

    /// Reads a number token into `buf`; returns its length and whether it is an integer.
    fn number<'b>(&mut self, buf: &'b mut [u8; 48]) -> Result<(&'b str, bool), JErr> {
        let c = self.peek_nonws()?;
        if !(c == '-' || c.is_ascii_digit()) {
            return Err(err(K::WrongType, self.pos));
        }
        let start = self.pos;
        let mut n = 0;
        while let Some((c, p)) = self.peek()? {
            if !(c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E')) {
                break;
            }
            *buf.get_mut(n).ok_or(err(K::BadNumber, start))? = c as u8;
            n += 1;
            self.pos = p;
        }
        let b = &buf[..n];
        let is_int = number_grammar(b).ok_or(err(K::BadNumber, start))?;
        let s = core::str::from_utf8(b).map_err(|_| err(K::BadNumber, start))?;
        Ok((s, is_int))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, JErr> {
        self.integer()
    }

    pub(crate) fn i64(&mut self) -> Result<i64, JErr> {
        self.integer()
    }

    /// An integer literal (no fraction or exponent) that fits `T`.
    fn integer<T: core::str::FromStr>(&mut self) -> Result<T, JErr> {
        let at = self.pos;
        let mut buf = [0u8; 48];
        let (s, is_int) = self.number(&mut buf)?;
        if !is_int {
            return Err(err(K::BadNumber, at));
        }
        s.parse().map_err(|_| err(K::BadNumber, at))
    }

    /// A finite f32 (metadata only: scales and accuracies; never used for inference).
    pub(crate) fn f32(&mut self) -> Result<f32, JErr> {
        let at = self.pos;
        let mut buf = [0u8; 48];
        let (s, _) = self.number(&mut buf)?;
        let v: f32 = s.parse().map_err(|_| err(K::BadNumber, at))?;
        if v.is_finite() { Ok(v) } else { Err(err(K::BadNumber, at)) }
    }

    /// Skips any value, checking its syntax.
    pub(crate) fn skip_value(&mut self) -> Result<(), JErr> {
        self.skip(0)
    }

    fn skip(&mut self, depth: u8) -> Result<(), JErr> {
        if depth >= MAX_DEPTH {
            return Err(err(K::TooDeep, self.pos));
        }
        match self.peek_nonws()? {
            '"' => self.string().map(|_| ()),
            '{' => {
                self.begin_object()?;
                let mut first = true;
                while self.next_key(&mut first)?.is_some() {
                    self.skip(depth + 1)?;
                }
                Ok(())
            }
            '[' => {
                self.begin_array()?;
                let mut first = true;
                while self.next_elem(&mut first)? {
                    self.skip(depth + 1)?;
                }
                Ok(())
            }
            't' => self.literal("true"),
            'f' => self.literal("false"),
            'n' => self.literal("null"),
            c if c == '-' || c.is_ascii_digit() => {
                let mut buf = [0u8; 48];
                self.number(&mut buf).map(|_| ())
            }
            _ => Err(err(K::UnexpectedChar, self.pos)),
        }
    }
}

/// RFC 8259 number grammar. `Some(true)` for integers, `Some(false)` for other numbers.
fn number_grammar(b: &[u8]) -> Option<bool> {
    let digits = |i: &mut usize| {
        let s = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > s
    };
    let mut i = 0;
    if b.first() == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return None,
    }
    let mut int = true;
    if b.get(i) == Some(&b'.') {
        i += 1;
        int = false;
        if !digits(&mut i) {
            return None;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        int = false;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return None;
        }
    }
    (i == b.len()).then_some(int)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_document_in_string() {
        // A metadata value holding a JSON array whose strings themselves contain escapes.
        let outer = r#"{"k": "[\"a\\\"b\", \"\\u00e9\\ud83d\\ude00\", 12]"}"#;
        let mut p = Parser::new(Text::raw(outer));
        p.begin_object().unwrap();
        let mut first = true;
        let k = p.next_key(&mut first).unwrap().unwrap();
        assert!(k.eq_str("k"));
        let inner = p.string().unwrap();
        assert!(p.next_key(&mut first).unwrap().is_none());
        p.end().unwrap();

        let mut q = Parser::new(inner);
        q.begin_array().unwrap();
        let mut first = true;
        assert!(q.next_elem(&mut first).unwrap());
        assert!(q.string().unwrap().eq_str("a\"b"));
        assert!(q.next_elem(&mut first).unwrap());
        assert!(q.string().unwrap().eq_str("é😀"));
        assert!(q.next_elem(&mut first).unwrap());
        assert_eq!(q.u64().unwrap(), 12);
        assert!(!q.next_elem(&mut first).unwrap());
        q.end().unwrap();
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "{",
            "{\"a\":}",
            "{\"a\":1,}",
            "[1 2]",
            "01",
            "1.",
            "-",
            "\"\\x\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"a\u{1}\"",
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
            "tru",
            "nul",
            "1 2",
            "\"abc",
        ] {
            let mut p = Parser::new(Text::raw(bad));
            let r = p.skip_value().and_then(|_| p.end());
            assert!(r.is_err(), "accepted {bad:?}");
        }
        for good in ["{}", "[]", "-0", "1.5e-3", "\"\\/\"", "{\"a\":[true,false,null]}"] {
            let mut p = Parser::new(Text::raw(good));
            p.skip_value().and_then(|_| p.end()).unwrap();
        }
    }

    #[test]
    fn numbers() {
        let mut p = Parser::new(Text::raw("18446744073709551616"));
        assert_eq!(p.u64().unwrap_err().kind, K::BadNumber);
        let mut p = Parser::new(Text::raw("-128"));
        assert_eq!(p.i64().unwrap(), -128);
        let mut p = Parser::new(Text::raw("1e50"));
        assert_eq!(p.f32().unwrap_err().kind, K::BadNumber);
        let mut p = Parser::new(Text::raw("1.5"));
        assert_eq!(p.u64().unwrap_err().kind, K::BadNumber);
    }
}
