//! The safetensors container: `u64` LE header length, JSON header, raw data. Zero-copy.

use crate::error::{Error, JsonContext};
use crate::format::{MAX_HEADER_BYTES, METADATA_KEY};
use crate::json::{JErr, Parser, Text};

pub(crate) fn jerr(e: JErr) -> Error {
    Error::Json { context: JsonContext::Header, kind: e.kind, offset: e.offset }
}

/// Splits the file into its header text and data section, checking the header length.
pub(crate) fn split(bytes: &[u8]) -> Result<(&str, &[u8]), Error> {
    let Some(len_bytes) = bytes.first_chunk::<8>() else {
        return Err(Error::Truncated { needed: 8, got: bytes.len() });
    };
    let n = u64::from_le_bytes(*len_bytes);
    if n == 0 || n > MAX_HEADER_BYTES {
        return Err(Error::BadHeaderLength(n));
    }
    // n <= 2^20, so this neither overflows nor truncates on 16/32-bit targets.
    let end = 8 + n as usize;
    let (Some(header), Some(data)) = (bytes.get(8..end), bytes.get(end..)) else {
        return Err(Error::Truncated { needed: 8 + n, got: bytes.len() });
    };
    let header = core::str::from_utf8(header).map_err(|e| Error::Json {
        context: JsonContext::Header,
        kind: crate::error::JsonErrorKind::NotUtf8,
        offset: e.valid_up_to(),
    })?;
    Ok((header, data))
}

/// Calls `f(key, value)` for every entry of `__metadata__` (values are strings, returned still
/// escaped, i.e. ready to be parsed as JSON documents of their own). Checks the whole header's
/// syntax on the way, and that `__metadata__` occurs exactly once.
pub(crate) fn for_each_metadata<'a>(
    header: &'a str,
    mut f: impl FnMut(Text<'a>, Text<'a>) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut p = Parser::new(Text::raw(header));
    p.begin_object().map_err(jerr)?;
    let mut first = true;
    let mut seen = false;
    while let Some(k) = p.next_key(&mut first).map_err(jerr)? {
        if !k.eq_str(METADATA_KEY) {
            p.skip_value().map_err(jerr)?;
            continue;
        }
        if seen {
            return Err(Error::DuplicateKey);
        }
        seen = true;
        p.begin_object().map_err(jerr)?;
        let mut first = true;
        while let Some(mk) = p.next_key(&mut first).map_err(jerr)? {
            let v = p.string().map_err(jerr)?;
            f(mk, v)?;
        }
    }
    p.end().map_err(jerr)?;
    if seen { Ok(()) } else { Err(Error::MissingMetadata) }
}

/// A tensor entry: dtype string, shape (rank <= 4; larger ranks are reported as rank 5 with the
/// first four dims) and its bytes inside the data section.
#[derive(Clone, Copy)]
pub(crate) struct Entry<'a> {
    pub dtype: Text<'a>,
    pub shape: [u64; 4],
    pub rank: usize,
    pub bytes: &'a [u8],
}

impl Entry<'_> {
    pub(crate) fn shape_is(&self, want: &[usize]) -> bool {
        self.rank == want.len() && self.shape.iter().zip(want).all(|(&a, &b)| a == b as u64)
    }
}

fn dtype_size(t: &Text<'_>) -> Option<u64> {
    const SIZES: [(&str, u64); 14] = [
        ("BOOL", 1),
        ("U8", 1),
        ("I8", 1),
        ("F8_E5M2", 1),
        ("F8_E4M3", 1),
        ("I16", 2),
        ("U16", 2),
        ("F16", 2),
        ("BF16", 2),
        ("I32", 4),
        ("U32", 4),
        ("F32", 4),
        ("F64", 8),
        ("I64", 8),
    ];
    SIZES.iter().find(|(n, _)| t.eq_str(n)).map(|&(_, s)| s)
}

/// Calls `f(name, entry)` for every tensor entry, with offsets and sizes validated against `data`.
pub(crate) fn for_each_tensor<'a>(
    header: &'a str,
    data: &'a [u8],
    mut f: impl FnMut(Text<'a>, Entry<'a>) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut p = Parser::new(Text::raw(header));
    p.begin_object().map_err(jerr)?;
    let mut first = true;
    while let Some(k) = p.next_key(&mut first).map_err(jerr)? {
        if k.eq_str(METADATA_KEY) {
            p.skip_value().map_err(jerr)?;
            continue;
        }
        let e = entry(&mut p, data)?;
        f(k, e)?;
    }
    Ok(())
}

fn entry<'a>(p: &mut Parser<'a>, data: &'a [u8]) -> Result<Entry<'a>, Error> {
    let mut dtype = None;
    let mut shape = None;
    let mut offsets = None;
    p.begin_object().map_err(jerr)?;
    let mut first = true;
    while let Some(k) = p.next_key(&mut first).map_err(jerr)? {
        if k.eq_str("dtype") {
            if dtype.replace(p.string().map_err(jerr)?).is_some() {
                return Err(Error::DuplicateKey);
            }
        } else if k.eq_str("shape") {
            let mut dims = [0u64; 4];
            let mut rank = 0;
            p.begin_array().map_err(jerr)?;
            let mut f = true;
            while p.next_elem(&mut f).map_err(jerr)? {
                let d = p.u64().map_err(jerr)?;
                if let Some(slot) = dims.get_mut(rank) {
                    *slot = d;
                }
                rank = (rank + 1).min(5);
            }
            if shape.replace((dims, rank)).is_some() {
                return Err(Error::DuplicateKey);
            }
        } else if k.eq_str("data_offsets") {
            p.begin_array().map_err(jerr)?;
            let mut f = true;
            let mut v = [0u64; 2];
            for slot in &mut v {
                if !p.next_elem(&mut f).map_err(jerr)? {
                    return Err(Error::BadTensorEntry("data_offsets must have 2 elements"));
                }
                *slot = p.u64().map_err(jerr)?;
            }
            if p.next_elem(&mut f).map_err(jerr)? {
                return Err(Error::BadTensorEntry("data_offsets must have 2 elements"));
            }
            if offsets.replace(v).is_some() {
                return Err(Error::DuplicateKey);
            }
        } else {
            return Err(Error::BadTensorEntry("unknown field"));
        }
    }
    let dtype = dtype.ok_or(Error::BadTensorEntry("missing dtype"))?;
    let (shape, rank) = shape.ok_or(Error::BadTensorEntry("missing shape"))?;
    let [begin, end] = offsets.ok_or(Error::BadTensorEntry("missing data_offsets"))?;
    if begin > end || end > data.len() as u64 {
        return Err(Error::OffsetsOutOfBounds);
    }
    // Fits usize: end <= data.len().
    let bytes = data.get(begin as usize..end as usize).ok_or(Error::OffsetsOutOfBounds)?;
    // Byte size must match shape * dtype size; unknown dtypes and rank > 4 are left to the caller
    // (which rejects them as WrongDtype/WrongShape), so only check what we can.
    if let (Some(size), Some(dims)) = (dtype_size(&dtype), shape.get(..rank)) {
        let mut n = size;
        for &d in dims {
            n = n.checked_mul(d).ok_or(Error::Overflow)?;
        }
        if n != end - begin {
            return Err(Error::SizeMismatch);
        }
    }
    Ok(Entry { dtype, shape, rank, bytes })
}
