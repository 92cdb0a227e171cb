//! Camera-frame preprocessing on arbitrary frames: any pixel format, width, height, row stride,
//! rotation, crop, polarity and contrast setting, and any pixel bytes, through the public API.
//! Nothing may panic or read out of bounds; the documented results must hold.
//!
//! Input layout (little-endian; missing bytes read as 0):
//!
//! | bytes | field |
//! |---|---|
//! | 0 | pixel format (`% 5`: Gray8, Rgba8888, Bgra8888, Nv21, Yuv420Y) |
//! | 1..3, 3..5 | width, height (u16) |
//! | 5 | stride mode (`% 4`): exact, exact + `extra % 256`, `extra`, exact - `extra % 4` |
//! | 6..10 | `extra` (u32) |
//! | 10 | flags: rotation `& 3`; polarity `>> 2 & 3` (3 = auto); ROI `>> 4 & 3` (none, explicit, centre square, centre percent); `>> 6 & 1` short scratch |
//! | 11 | min_contrast |
//! | 12..20 | ROI x, y, width, height (u16 each) |
//! | 20 | ROI percent |
//! | 21..25 | input quantizer scale (f32 bits) |
//! | 25..27 | input quantizer zero point (i16) |
//! | 27..31 | degrees for `Rotation::from_degrees` (i32) |
//! | 31 | unused |
//! | 32..40, 40..48 | width and height for the ROI helpers at full `usize` range (u64) |
//! | 48.. | pixel bytes |
#![no_main]

use libfuzzer_sys::fuzz_target;
use runtime_mobile::format::Quant;
use runtime_mobile::preprocess::{
    check_input_shape, preprocess, Frame, InputQuantizer, Options, PixelFormat, Polarity, Preprocessed, Roi,
    Rotation,
    OUT_PIXELS, SCRATCH_BYTES, WORK_DIM,
};
use runtime_mobile::Shape;

const HEADER: usize = 48;
const FORMATS: [PixelFormat; 5] = [
    PixelFormat::Gray8,
    PixelFormat::Rgba8888,
    PixelFormat::Bgra8888,
    PixelFormat::Nv21,
    PixelFormat::Yuv420Y,
];
const ROTATIONS: [Rotation; 4] = [Rotation::R0, Rotation::R90, Rotation::R180, Rotation::R270];

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn get<const N: usize>(&self, at: usize) -> [u8; N] {
        core::array::from_fn(|i| self.0.get(at + i).copied().unwrap_or(0))
    }
    fn u8(&self, at: usize) -> u8 {
        self.get::<1>(at)[0]
    }
    fn u16(&self, at: usize) -> usize {
        u16::from_le_bytes(self.get(at)) as usize
    }
    fn u32(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.get(at))
    }
    fn u64(&self, at: usize) -> usize {
        u64::from_le_bytes(self.get(at)) as usize
    }
}

fuzz_target!(|data: &[u8]| {
    let b = Bytes(data);
    let pixels = data.get(HEADER..).unwrap_or(&[]);

    // Pure helpers at their full input ranges.
    let (big_w, big_h, percent) = (b.u64(32), b.u64(40), b.u8(20) as usize);
    let sq = Roi::centre_square(big_w, big_h);
    assert!(sq.width == big_w.min(big_h) && sq.x + sq.width <= big_w && sq.y + sq.height <= big_h);
    let sp = Roi::centre_square_percent(big_w, big_h, percent);
    let short = big_w.min(big_h);
    let want = if short == 0 { 0 } else { (short as u128 * percent.clamp(1, 100) as u128 / 100).max(1) as usize };
    assert!(sp.width == want && sp.height == want && sp.x + want <= big_w && sp.y + want <= big_h);
    let degrees = i32::from_le_bytes(b.get(27));
    assert_eq!(Rotation::from_degrees(degrees).is_some(), degrees.rem_euclid(90) == 0);
    let shape = Shape::Chw(b.u16(1), b.u16(3), b.u16(12));
    assert_eq!(check_input_shape(shape).is_ok(), matches!(shape, Shape::Chw(1, 28, 28)));

    // Quantizer: a valid table is monotonic and starts at the zero point (pixel 0 = real 0).
    let quant = Quant {
        scale: f32::from_bits(b.u32(21)),
        zero_point: i16::from_le_bytes(b.get(25)) as i32,
    };
    let quantizer = InputQuantizer::new(quant).ok();
    if let Some(q) = &quantizer {
        let t = q.table();
        assert_eq!(t[0] as i32, quant.zero_point);
        assert!(t.windows(2).all(|w| w[0] <= w[1]));
    }

    // The frame.
    let format = FORMATS[b.u8(0) as usize % FORMATS.len()];
    let (width, height) = (b.u16(1), b.u16(3));
    let row_bytes = width * format.bytes_per_pixel();
    let extra = b.u32(6) as usize;
    let stride = match b.u8(5) % 4 {
        0 => row_bytes,
        1 => row_bytes + extra % 256,
        2 => extra,
        _ => row_bytes.saturating_sub(extra % 4),
    };
    let frame = match Frame::new(pixels, format, width, height, stride) {
        Ok(f) => f,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    assert_eq!((frame.width(), frame.height(), frame.row_stride()), (width, height, stride));

    let flags = b.u8(10);
    let rotation = ROTATIONS[(flags & 3) as usize];
    let polarity = match (flags >> 2) & 3 {
        0 => Polarity::DarkInk,
        1 => Polarity::LightInk,
        _ => Polarity::Auto,
    };
    let roi = match (flags >> 4) & 3 {
        0 => None,
        1 => Some(Roi { x: b.u16(12), y: b.u16(14), width: b.u16(16), height: b.u16(18) }),
        2 => Some(Roi::centre_square(width, height)),
        _ => Some(Roi::centre_square_percent(width, height, percent)),
    };
    let opts = Options { rotation, roi, polarity, min_contrast: b.u8(11) };
    let scratch_len = if flags & 0x40 != 0 { SCRATCH_BYTES - 1 - extra % SCRATCH_BYTES } else { SCRATCH_BYTES };
    let mut scratch = vec![0u8; scratch_len];
    let mut out = [0x55u8; OUT_PIXELS];
    let r = preprocess(&frame, &opts, &mut scratch, &mut out);
    match r {
        Err(e) => {
            let _ = e.to_string();
            assert!(out.iter().all(|&v| v == 0), "on error the output is cleared");
        }
        Ok(Preprocessed::NoDigit(reason)) => {
            let _ = reason.to_string();
            assert!(out.iter().all(|&v| v == 0), "without a digit the output is cleared");
        }
        Ok(Preprocessed::Digit(info)) => {
            let (uw, uh) = match (roi, rotation) {
                (None, Rotation::R0 | Rotation::R180) => (width, height),
                (None, _) => (height, width),
                (Some(r), Rotation::R0 | Rotation::R180) => (r.width, r.height),
                (Some(r), _) => (r.height, r.width),
            };
            assert!((1..=WORK_DIM).contains(&info.work_width) && (1..=WORK_DIM).contains(&info.work_height));
            assert!(info.work_width <= uw && info.work_height <= uh);
            let bb = info.bbox;
            assert!(bb.x + bb.width <= uw && bb.y + bb.height <= uh, "{bb:?} outside {uw}x{uh}");
            assert!(info.background < info.ink);
            assert!(out.iter().any(|&v| v > 0), "a found digit leaves ink in the output");
            if let Some(q) = &quantizer {
                let mut input = [0i8; OUT_PIXELS];
                q.quantize(&out, &mut input);
                assert!(input.iter().zip(&out).all(|(&i, &p)| i == q.table()[p as usize]));
            }
        }
    }

    // The result does not depend on what the scratch buffer held.
    scratch.fill(0xFF);
    let mut again = [0u8; OUT_PIXELS];
    assert_eq!(preprocess(&frame, &opts, &mut scratch, &mut again), r);
    assert_eq!(again, out);
});
