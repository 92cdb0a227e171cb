//! Byte-level views: file bytes and the arena are `[u8]`; int8 data is viewed as `[i8]` in place.

/// Views bytes as int8 without copying.
pub(crate) fn as_i8(b: &[u8]) -> &[i8] {
    // SAFETY: i8 and u8 have the same size, alignment and validity (every bit pattern is valid);
    // the new slice covers exactly the same memory and inherits the borrow's lifetime.
    unsafe { core::slice::from_raw_parts(b.as_ptr().cast::<i8>(), b.len()) }
}

/// Mutable variant of [`as_i8`].
pub(crate) fn as_i8_mut(b: &mut [u8]) -> &mut [i8] {
    // SAFETY: as in `as_i8`; the unique borrow of `b` is moved into the returned slice.
    unsafe { core::slice::from_raw_parts_mut(b.as_mut_ptr().cast::<i8>(), b.len()) }
}

/// The 4-byte-aligned middle of `b` as `i32`s (at most 3 bytes are skipped at the start).
pub(crate) fn as_i32_mut(b: &mut [u8]) -> &mut [i32] {
    // SAFETY: every bit pattern is a valid i32, and `align_to_mut` only puts correctly aligned,
    // in-bounds elements in the middle slice; prefix/suffix are dropped.
    let (_, mid, _) = unsafe { b.align_to_mut::<i32>() };
    mid
}

/// Reads little-endian i32 number `i` of `b` (file tensors may be unaligned), 0 if out of range.
#[inline]
pub(crate) fn le_i32(b: &[u8], i: usize) -> i32 {
    match i.checked_mul(4).and_then(|s| b.get(s..s.checked_add(4)?)) {
        Some(&[a, b, c, d]) => i32::from_le_bytes([a, b, c, d]),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views() {
        let mut buf = [0x80u8, 0x7f, 0xff, 1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(as_i8(&buf[..3]), &[-128i8, 127, -1]);
        as_i8_mut(&mut buf[..1])[0] = -2;
        assert_eq!(buf[0], 0xfe);
        for start in 0..4 {
            let len = buf.len() - start;
            let v = as_i32_mut(&mut buf[start..]);
            assert!(v.len() >= (len - 3) / 4);
            v.fill(0);
        }
        let b = [1u8, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(le_i32(&b, 0), 1);
        assert_eq!(le_i32(&b[..], 1), -1);
        assert_eq!(le_i32(&b, 2), 0);
        assert_eq!(le_i32(&b, usize::MAX), 0);
    }
}
