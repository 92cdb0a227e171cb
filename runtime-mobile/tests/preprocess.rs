//! Preprocessing: pixel formats, strides, crops and rotations are equivalent; typed errors for
//! degenerate inputs and blank pictures; no panics on arbitrary input; MNIST-like geometry.
//! (MNIST round trips through PNG/JPEG are in `preprocess_mnist.rs`.)

use runtime_mobile::Error;
use runtime_mobile::Shape;
use runtime_mobile::format::Quant;
use runtime_mobile::preprocess::{
    Frame, InputQuantizer, NoDigitReason, OUT_DIM, OUT_PIXELS, Options, PixelFormat, Polarity, Preprocessed, Roi, Rotation,
    SCRATCH_BYTES, check_input_shape, preprocess,
};

use testkit::Rng;

/// An upright grayscale picture.
#[derive(Clone)]
struct Gray {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Gray {
    fn at(&self, x: usize, y: usize) -> u8 {
        self.px[y * self.w + x]
    }
}

/// Distance from `p` to segment `a-b`.
fn seg_dist(p: (f32, f32), a: (f32, f32), b: (f32, f32)) -> f32 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let t = (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
    ((p.0 - a.0 - t * dx).powi(2) + (p.1 - a.1 - t * dy).powi(2)).sqrt()
}

/// A dark, anti-aliased "4"-like polyline on a light page with a lighting gradient and noise,
/// deliberately off-centre and non-square so rotations change the frame's shape.
fn scene(w: usize, h: usize, seed: u64) -> Gray {
    let mut rng = Rng(seed);
    let s = h.min(w) as f32 / 70.0;
    let (ox, oy) = (w as f32 * 0.35, h as f32 * 0.2);
    let pts = [(30.0, 0.0), (5.0, 32.0), (40.0, 32.0)];
    let stem = [(28.0, 12.0), (28.0, 50.0)];
    let mut px = vec![0u8; w * h];
    for y in 0..h {
        for x in 0..w {
            let p = ((x as f32 - ox) / s, (y as f32 - oy) / s);
            let d = seg_dist(p, pts[0], pts[1]).min(seg_dist(p, pts[1], pts[2])).min(seg_dist(p, stem[0], stem[1]));
            let ink = (3.5 - d).clamp(0.0, 1.0); // ~7 units thick, 1-unit soft edge
            let bg = 225.0 - 50.0 * (x as f32 / w as f32) - 20.0 * (y as f32 / h as f32);
            let noise = rng.below(9) as f32 - 4.0;
            px[y * w + x] = (bg * (1.0 - ink) + 40.0 * ink + noise).round().clamp(0.0, 255.0) as u8;
        }
    }
    Gray { w, h, px }
}

/// The sensor image that, rotated clockwise by `r`, shows `g` upright. Written from the
/// geometric description, independently of the library's index formulas.
fn sensor_image(g: &Gray, r: Rotation) -> Gray {
    let (w, h) = (g.w, g.h);
    match r {
        Rotation::R0 => g.clone(),
        // Counter-clockwise by 90: g's top row becomes the left column, its left end at the bottom.
        Rotation::R90 => {
            let mut px = vec![0; w * h];
            for y in 0..w {
                for x in 0..h {
                    px[y * h + x] = g.at(w - 1 - y, x);
                }
            }
            Gray { w: h, h: w, px }
        }
        Rotation::R180 => Gray { w, h, px: g.px.iter().rev().copied().collect() },
        // Clockwise by 90: g's top row becomes the right column, its left end at the top.
        Rotation::R270 => {
            let mut px = vec![0; w * h];
            for y in 0..w {
                for x in 0..h {
                    px[y * h + x] = g.at(y, h - 1 - x);
                }
            }
            Gray { w: h, h: w, px }
        }
    }
}

/// Encodes `g` in `format` with `stride - width*bpp` garbage bytes per row (none after the last
/// row, as Android planes do), plus chroma garbage for NV21.
fn encode(g: &Gray, format: PixelFormat, pad: usize, rng: &mut Rng) -> (Vec<u8>, usize) {
    let bpp = format.bytes_per_pixel();
    let stride = g.w * bpp + pad;
    let mut data = vec![0u8; (g.h - 1) * stride + g.w * bpp];
    data.iter_mut().for_each(|b| *b = rng.next() as u8);
    for y in 0..g.h {
        for x in 0..g.w {
            let v = g.at(x, y);
            let i = y * stride + x * bpp;
            match format {
                PixelFormat::Rgba8888 | PixelFormat::Bgra8888 => data[i..i + 4].copy_from_slice(&[v, v, v, 255]),
                _ => data[i] = v,
            }
        }
    }
    if format == PixelFormat::Nv21 {
        // Pad the last Y row too, then the interleaved VU plane.
        data.resize(g.h * stride, 0x55);
        data.extend((0..stride * g.h.div_ceil(2)).map(|_| rng.next() as u8));
    }
    (data, stride)
}

/// Why [`run`] produced no image: an error, or the ordinary "no digit" outcome.
#[derive(Debug, PartialEq)]
enum Failure {
    Error(Error),
    NoDigit(NoDigitReason),
}

fn run(frame: &Frame<'_>, opts: &Options) -> Result<[u8; OUT_PIXELS], Failure> {
    let mut scratch = vec![0x5Au8; SCRATCH_BYTES];
    let mut out = [0u8; OUT_PIXELS];
    match preprocess(frame, opts, &mut scratch, &mut out) {
        Ok(Preprocessed::Digit(_)) => Ok(out),
        Ok(Preprocessed::NoDigit(r)) => {
            assert!(out.iter().all(|&v| v == 0), "no digit leaves the output all zero");
            Err(Failure::NoDigit(r))
        }
        Err(e) => Err(Failure::Error(e)),
    }
}

fn run_gray(g: &Gray, opts: &Options) -> Result<[u8; OUT_PIXELS], Failure> {
    run(&Frame::gray(&g.px, g.w, g.h).unwrap(), opts)
}

fn ascii(img: &[u8; OUT_PIXELS]) -> String {
    img.chunks(OUT_DIM)
        .map(|r| r.iter().map(|&v| b" .:-=+*#%@"[v as usize * 10 / 256] as char).collect::<String>() + "\n")
        .collect()
}

/// (sum, centre of mass x, y) in continuous coordinates (pixel centres at i + 0.5).
fn com(img: &[u8]) -> (f64, f64, f64) {
    let (mut m, mut mx, mut my) = (0.0, 0.0, 0.0);
    for (i, &v) in img.iter().enumerate() {
        let (x, y) = ((i % OUT_DIM) as f64 + 0.5, (i / OUT_DIM) as f64 + 0.5);
        m += v as f64;
        mx += v as f64 * x;
        my += v as f64 * y;
    }
    (m, mx / m, my / m)
}

/// Width and height of the box of pixels >= 128.
fn bbox_dims(img: &[u8; OUT_PIXELS]) -> (usize, usize) {
    let ink: Vec<(usize, usize)> = (0..OUT_PIXELS).filter(|&i| img[i] >= 128).map(|i| (i % OUT_DIM, i / OUT_DIM)).collect();
    let w = ink.iter().map(|p| p.0).max().unwrap() - ink.iter().map(|p| p.0).min().unwrap() + 1;
    let h = ink.iter().map(|p| p.1).max().unwrap() - ink.iter().map(|p| p.1).min().unwrap() + 1;
    (w, h)
}

const ROTATIONS: [Rotation; 4] = [Rotation::R0, Rotation::R90, Rotation::R180, Rotation::R270];
const FORMATS: [PixelFormat; 5] =
    [PixelFormat::Gray8, PixelFormat::Rgba8888, PixelFormat::Bgra8888, PixelFormat::Nv21, PixelFormat::Yuv420Y];

#[test]
fn scene_output_is_mnist_like() {
    let g = scene(90, 70, 1);
    let out = run_gray(&g, &Options::DEFAULT).unwrap();
    let (w, h) = bbox_dims(&out);
    assert!(w.max(h) >= 19 && w.max(h) <= 21, "box {w}x{h}\n{}", ascii(&out));
    let (_, cx, cy) = com(&out);
    assert!((cx - 14.5).abs() < 0.5 && (cy - 14.5).abs() < 0.5, "com ({cx}, {cy})\n{}", ascii(&out));
    // Background is black (inverted), strokes saturate.
    assert_eq!(out[0], 0);
    assert_eq!(*out.iter().max().unwrap(), 255);
    assert!(out.iter().filter(|&&v| v == 0).count() > OUT_PIXELS / 2, "{}", ascii(&out));
}

#[test]
fn formats_strides_and_rotations_agree() {
    let g = scene(90, 70, 2);
    let want = run_gray(&g, &Options::DEFAULT).unwrap();
    let mut rng = Rng(7);
    for r in ROTATIONS {
        let s = sensor_image(&g, r);
        for format in FORMATS {
            for pad in [0, 3, 64] {
                let (data, stride) = encode(&s, format, pad, &mut rng);
                let frame = Frame::new(&data, format, s.w, s.h, stride).unwrap();
                let got = run(&frame, &Options { rotation: r, ..Options::DEFAULT }).unwrap();
                assert_eq!(got, want, "{format:?} pad {pad} {r:?}\n{}\nvs\n{}", ascii(&got), ascii(&want));
            }
        }
    }
}

#[test]
fn crop_and_rotation_agree_on_large_frames() {
    // The scene inside a bigger, busier camera frame (dark clutter outside the ROI), at a size
    // that forces the downscaling path; the ROI is given in sensor coordinates.
    let g = scene(300, 300, 3);
    let want = run_gray(&g, &Options::DEFAULT).unwrap();
    let (fw, fh) = (640, 480);
    for r in ROTATIONS {
        let s = sensor_image(&g, r);
        let roi = Roi::centre_square(fw, fh);
        let roi = Roi { x: roi.x + 40, y: roi.y + 50, width: 300, height: 300 };
        let mut frame = vec![0u8; fw * fh];
        for (i, v) in frame.iter_mut().enumerate() {
            *v = if (i / fw + i % fw) % 97 < 20 { 10 } else { 200 };
        }
        for y in 0..s.h {
            frame[(roi.y + y) * fw + roi.x..][..s.w].copy_from_slice(&s.px[y * s.w..][..s.w]);
        }
        let f = Frame::new(&frame, PixelFormat::Yuv420Y, fw, fh, fw).unwrap();
        let got = run(&f, &Options { rotation: r, roi: Some(roi), ..Options::DEFAULT }).unwrap();
        assert_eq!(got, want, "{r:?}");
    }
}

#[test]
fn downscaled_scene_matches_native() {
    // The same drawing at 1x and at ~11x (downscaled onto the work grid) gives nearly the same
    // digit: area averaging keeps stroke weight.
    let small = run_gray(&scene(90, 70, 4), &Options::DEFAULT).unwrap();
    let big = run_gray(&scene(1000, 780, 4), &Options::DEFAULT).unwrap();
    let mad = small.iter().zip(&big).map(|(&a, &b)| (a as i32 - b as i32).abs()).sum::<i32>() as f64 / 784.0;
    assert!(mad < 12.0, "mad {mad}\n{}\nvs\n{}", ascii(&small), ascii(&big));
    let (ma, ca) = (com(&small), com(&big));
    assert!((ma.1 - ca.1).abs() < 0.5 && (ma.2 - ca.2).abs() < 0.5);
}

#[test]
fn polarity_auto_matches_explicit() {
    let g = scene(90, 70, 5);
    let auto = run_gray(&g, &Options::DEFAULT).unwrap();
    assert_eq!(auto, run_gray(&g, &Options { polarity: Polarity::DarkInk, ..Options::DEFAULT }).unwrap());
    // The negative (light ink on a dark page) gives the same digit.
    let neg = Gray { px: g.px.iter().map(|v| 255 - v).collect(), ..g.clone() };
    let n = run_gray(&neg, &Options::DEFAULT).unwrap();
    assert_eq!(n, run_gray(&neg, &Options { polarity: Polarity::LightInk, ..Options::DEFAULT }).unwrap());
    let mad = auto.iter().zip(&n).map(|(&a, &b)| (a as i32 - b as i32).abs()).sum::<i32>();
    assert!(mad < 784 * 6, "{}\nvs\n{}", ascii(&auto), ascii(&n));
}

#[test]
fn transparent_rgba_is_composited_over_white() {
    // Black ink on a transparent canvas (what drawing apps export) equals black on white.
    let g = scene(60, 60, 6);
    let rgba: Vec<u8> = g.px.iter().flat_map(|&v| [0, 0, 0, 255 - v]).collect();
    let white: Vec<u8> = g.px.clone();
    let a = run(&Frame::new(&rgba, PixelFormat::Rgba8888, 60, 60, 240).unwrap(), &Options::DEFAULT).unwrap();
    let b = run(&Frame::gray(&white, 60, 60).unwrap(), &Options::DEFAULT).unwrap();
    assert_eq!(a, b);
}

#[test]
fn degenerate_frames_are_typed_errors() {
    let buf = [0u8; 100];
    assert_eq!(Frame::gray(&buf, 0, 5).unwrap_err(), Error::FrameZeroSize);
    assert_eq!(Frame::gray(&buf, 5, 0).unwrap_err(), Error::FrameZeroSize);
    assert_eq!(Frame::new(&buf, PixelFormat::Gray8, 10, 5, 9).unwrap_err(), Error::StrideTooSmall { row_stride: 9, min: 10 });
    assert_eq!(
        Frame::new(&buf, PixelFormat::Rgba8888, 10, 2, 39).unwrap_err(),
        Error::StrideTooSmall { row_stride: 39, min: 40 }
    );
    assert_eq!(Frame::new(&buf, PixelFormat::Gray8, 10, 11, 10).unwrap_err(), Error::BufferTooShort { needed: 110, got: 100 });
    // The last row needs no padding: 9 rows of stride 11 + 10 bytes = 109 > 100.
    assert!(matches!(Frame::new(&buf, PixelFormat::Nv21, 10, 9, 12), Err(Error::BufferTooShort { .. })));
    assert!(Frame::new(&buf, PixelFormat::Nv21, 10, 9, 11).is_ok());
    assert!(matches!(Frame::new(&buf, PixelFormat::Gray8, 10, usize::MAX / 4, usize::MAX / 8), Err(Error::FrameTooLarge { .. })));
    assert!(matches!(Frame::new(&buf, PixelFormat::Gray8, 70_000, 1, 70_000), Err(Error::FrameTooLarge { .. })));
    assert!(matches!(Frame::new(&buf, PixelFormat::Gray8, 60_000, 60_000, usize::MAX / 2), Err(Error::BufferTooShort { .. })));

    let g = scene(40, 30, 8);
    let frame = Frame::gray(&g.px, 40, 30).unwrap();
    let mut out = [7u8; OUT_PIXELS];
    let mut small = vec![0u8; SCRATCH_BYTES - 1];
    assert_eq!(
        preprocess(&frame, &Options::DEFAULT, &mut small, &mut out).unwrap_err(),
        Error::ScratchTooSmall { needed: SCRATCH_BYTES, got: SCRATCH_BYTES - 1 }
    );
    assert!(out.iter().all(|&v| v == 0), "output is cleared on error");
    for roi in [
        Roi { x: 0, y: 0, width: 0, height: 5 },
        Roi { x: 0, y: 0, width: 41, height: 5 },
        Roi { x: 40, y: 0, width: 1, height: 5 },
        Roi { x: 39, y: 29, width: 2, height: 1 },
        Roi { x: usize::MAX, y: 0, width: 2, height: 1 },
        Roi { x: 1, y: 1, width: usize::MAX, height: 1 },
    ] {
        assert_eq!(run(&frame, &Options { roi: Some(roi), ..Options::DEFAULT }).unwrap_err(), Failure::Error(Error::BadRoi));
    }
    assert!(run(&frame, &Options { roi: Some(Roi { x: 39, y: 29, width: 1, height: 1 }), ..Options::DEFAULT }).is_err());
}

fn assert_no_digit(g: &Gray, what: &str) {
    for polarity in [Polarity::Auto, Polarity::DarkInk, Polarity::LightInk] {
        match run_gray(g, &Options { polarity, ..Options::DEFAULT }) {
            Err(Failure::NoDigit(_)) => {}
            other => panic!("{what} {polarity:?}: {:?}", other.map(|o| ascii(&o))),
        }
    }
}

#[test]
fn blank_pictures_are_no_digit() {
    let (w, h) = (64, 48);
    for v in [0u8, 1, 128, 254, 255] {
        assert_no_digit(&Gray { w, h, px: vec![v; w * h] }, &format!("uniform {v}"));
    }
    let mut rng = Rng(9);
    let noisy: Vec<u8> = (0..w * h).map(|_| 180 + rng.below(17) as u8 - 8).collect();
    assert_no_digit(&Gray { w, h, px: noisy }, "uniform + noise");
    let grad: Vec<u8> = (0..w * h).map(|i| (40 + (i % w) * 200 / w) as u8).collect();
    assert_no_digit(&Gray { w, h, px: grad }, "horizontal gradient");
    let vignette: Vec<u8> = (0..w * h)
        .map(|i| {
            let (x, y) = ((i % w) as f32 - 32.0, (i / w) as f32 - 24.0);
            (230.0 - 0.06 * (x * x + y * y)).clamp(0.0, 255.0) as u8
        })
        .collect();
    assert_no_digit(&Gray { w, h, px: vignette }, "vignette");
    // A lone dark speck is not a digit.
    let mut speck = vec![200u8; w * h];
    speck[20 * w + 30] = 20;
    assert_no_digit(&Gray { w, h, px: speck }, "speck");
    // Tiny frames.
    for (w, h) in [(1, 1), (1, 7), (7, 1), (2, 2), (3, 3)] {
        let px: Vec<u8> = (0..w * h).map(|i| if i % 2 == 0 { 0 } else { 255 }).collect();
        assert!(run_gray(&Gray { w, h, px }, &Options::DEFAULT).is_err(), "{w}x{h}");
    }
    // Uniform camera frame through every format and rotation.
    let y = vec![128u8; 640 * 480 * 3 / 2];
    for r in ROTATIONS {
        let f = Frame::new(&y, PixelFormat::Nv21, 640, 480, 640).unwrap();
        let e = run(&f, &Options { rotation: r, roi: Some(Roi::centre_square(640, 480)), ..Options::DEFAULT });
        assert_eq!(e.unwrap_err(), Failure::NoDigit(NoDigitReason::LowContrast));
    }
}

#[test]
fn arbitrary_frames_never_panic() {
    let mut rng = Rng(10);
    let mut ok = 0;
    for i in 0..600 {
        let format = FORMATS[i % FORMATS.len()];
        let (w, h) = (1 + rng.below(if i % 50 == 0 { 300 } else { 40 }) as usize, 1 + rng.below(40) as usize);
        let stride = w * format.bytes_per_pixel() + rng.below(5) as usize;
        let len = (h - 1) * stride + w * format.bytes_per_pixel();
        let kind = rng.below(4);
        let data: Vec<u8> = (0..len)
            .map(|k| match kind {
                0 => rng.next() as u8,
                1 => {
                    if (k / 7) % 5 == 0 {
                        0
                    } else {
                        255
                    }
                }
                2 => (k % 256) as u8,
                _ => {
                    if rng.below(30) == 0 {
                        0
                    } else {
                        220
                    }
                }
            })
            .collect();
        let frame = Frame::new(&data, format, w, h, stride).unwrap();
        let roi = (rng.below(3) == 0).then(|| {
            let x = rng.below(w as u64) as usize;
            let y = rng.below(h as u64) as usize;
            Roi { x, y, width: 1 + rng.below((w - x) as u64) as usize, height: 1 + rng.below((h - y) as u64) as usize }
        });
        let opts =
            Options { rotation: ROTATIONS[rng.below(4) as usize], roi, min_contrast: rng.below(60) as u8, ..Options::DEFAULT };
        if let Ok(out) = run(&frame, &opts) {
            ok += 1;
            assert!(out.iter().any(|&v| v > 0));
        }
    }
    assert!(ok > 0, "some random frames contain 'digits'");
}

#[test]
fn quantizer_uses_model_params() {
    let mnist = InputQuantizer::new(Quant { scale: 1.0 / 255.0, zero_point: -128 }).unwrap();
    assert_eq!(mnist, InputQuantizer::MNIST);
    // The rounded scale written by exporters ("0.003921569") gives the same table.
    assert_eq!(InputQuantizer::new(Quant { scale: 0.003921569, zero_point: -128 }).unwrap(), InputQuantizer::MNIST);
    let t = InputQuantizer::MNIST.table();
    assert!((0..256).all(|p| t[p] as i32 == p as i32 - 128));
    // Another zero point and scale 2/255: q = round(p/2) + 5, saturating at 127 (odd p sit on
    // a rounding tie that the f32 scale breaks either way, so test even p).
    let q = InputQuantizer::new(Quant { scale: 2.0 / 255.0, zero_point: 5 }).unwrap();
    assert_eq!(q.table()[0], 5);
    assert_eq!(q.table()[4], 7);
    assert_eq!(q.table()[200], 105);
    assert_eq!(q.table()[255], 127);
    for bad in [
        Quant { scale: 0.0, zero_point: 0 },
        Quant { scale: -1.0, zero_point: 0 },
        Quant { scale: f32::NAN, zero_point: 0 },
        Quant { scale: f32::INFINITY, zero_point: 0 },
        Quant { scale: 0.1, zero_point: 128 },
    ] {
        assert_eq!(InputQuantizer::new(bad).unwrap_err(), Error::BadInputQuant);
    }
    let img: [u8; OUT_PIXELS] = core::array::from_fn(|i| i as u8);
    let mut input = [0i8; OUT_PIXELS];
    InputQuantizer::MNIST.quantize(&img, &mut input);
    assert!(input.iter().zip(&img).all(|(&q, &p)| q as i32 == p as i32 - 128));
}

#[test]
fn input_shape_check() {
    assert!(check_input_shape(Shape::Chw(1, 28, 28)).is_ok());
    assert!(check_input_shape(Shape::Flat(784)).is_ok());
    assert_eq!(check_input_shape(Shape::Chw(3, 28, 28)), Err(Error::InputShape(Shape::Chw(3, 28, 28))));
}

#[test]
fn errors_display() {
    assert!(NoDigitReason::LowContrast.to_string().contains("no digit"));
    assert!(Error::BufferTooShort { needed: 9, got: 3 }.to_string().contains('9'));
    assert_eq!(Rotation::from_degrees(-90), Some(Rotation::R270));
    assert_eq!(Rotation::from_degrees(450), Some(Rotation::R90));
    assert_eq!(Rotation::from_degrees(45), None);
    assert_eq!(Roi::centre_square(640, 480), Roi { x: 80, y: 0, width: 480, height: 480 });
    assert_eq!(Roi::centre_square_percent(640, 480, 50), Roi { x: 200, y: 120, width: 240, height: 240 });
}

/// Regression (fuzz target `preprocess`, first input): `centre_square_percent` of an empty frame
/// underflowed (`(0 - 1) / 2`), and `short * percent` overflowed for huge sizes. Now an empty frame
/// gives an empty ROI (rejected as `BadRoi`) and every size is exact.
#[test]
fn centre_square_percent_never_overflows() {
    let empty = Roi { x: 0, y: 0, width: 0, height: 0 };
    assert_eq!(Roi::centre_square_percent(0, 0, 50), empty);
    assert_eq!(Roi::centre_square_percent(0, 9, 0), Roi { y: 4, ..empty });
    assert_eq!(Roi::centre_square_percent(9, 0, 100), Roi { x: 4, ..empty });
    assert_eq!(Roi::centre_square(0, 9), Roi { y: 4, ..empty });
    // Tiny frames: at least one pixel.
    assert_eq!(Roi::centre_square_percent(3, 1, 1), Roi { x: 1, y: 0, width: 1, height: 1 });
    // Huge sizes: floor(short * p / 100) computed exactly.
    let m = usize::MAX;
    for (w, h, p) in [(m, m, 100), (m, m, 99), (m, m - 1, 37), (m, 7, 50), (m / 3, m, 1), (m, m, 500)] {
        let r = Roi::centre_square_percent(w, h, p);
        let short = w.min(h) as u128;
        let want = (short * p.clamp(1, 100) as u128 / 100).max(1) as usize;
        assert_eq!((r.width, r.height), (want, want), "{w}x{h} {p}%");
        assert_eq!((r.x, r.y), ((w - want) / 2, (h - want) / 2));
    }
    // An empty ROI is an error, not a panic.
    let px = [0u8; 4];
    let frame = Frame::gray(&px, 2, 2).unwrap();
    let opts = Options { roi: Some(Roi::centre_square_percent(0, 0, 50)), ..Options::DEFAULT };
    assert_eq!(run(&frame, &opts), Err(Failure::Error(Error::BadRoi)));
}

/// Writes seed inputs of the `preprocess` fuzz target into `fuzz/corpus/preprocess/` (layout:
/// the table in `fuzz/fuzz_targets/preprocess.rs`; see `fuzz/README.md`):
/// `cargo test -p runtime-mobile --test preprocess -- --ignored write_fuzz_seeds`.
#[test]
#[ignore = "a generator, not a check: writes fuzz corpus seeds; run explicitly"]
fn write_fuzz_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/preprocess");
    std::fs::create_dir_all(&dir).unwrap();
    // (name, scene size, rotation, format, row padding, polarity bits, ROI mode, ROI, percent)
    #[allow(clippy::type_complexity)] // a table, one row per seed
    let cases: [(&str, (usize, usize), usize, usize, usize, u8, u8, [u16; 4], u8); 7] = [
        ("gray", (60, 50), 0, 0, 0, 3, 0, [0; 4], 0),
        ("rgba-r90-pad", (30, 24), 1, 1, 3, 0, 0, [0; 4], 0),
        ("nv21-r180-roi", (40, 30), 2, 3, 0, 3, 1, [2, 1, 36, 28], 0),
        ("bgra-r270-percent", (22, 20), 3, 2, 0, 3, 3, [0; 4], 90),
        ("yuv-centre-square", (90, 70), 0, 4, 5, 3, 2, [0; 4], 0),
        ("gray-downscale", (140, 100), 0, 0, 0, 3, 0, [0; 4], 0),
        ("blank", (16, 16), 0, 0, 0, 1, 0, [0; 4], 0),
    ];
    let mut rng = Rng(3);
    for (name, (w, h), rot, fmt, pad, polarity, roi_mode, roi, percent) in cases {
        let mut g = scene(w, h, 11);
        if name == "blank" {
            g.px.fill(128);
        }
        let s = sensor_image(&g, ROTATIONS[rot]);
        let (data, stride) = encode(&s, FORMATS[fmt], pad, &mut rng);
        assert_eq!(stride, s.w * FORMATS[fmt].bytes_per_pixel() + pad); // stride modes 0 and 1
        let mut b = vec![fmt as u8];
        b.extend((s.w as u16).to_le_bytes());
        b.extend((s.h as u16).to_le_bytes());
        b.push(if pad == 0 { 0 } else { 1 });
        b.extend((pad as u32).to_le_bytes());
        b.push(rot as u8 | polarity << 2 | roi_mode << 4);
        b.push(32);
        b.extend(roi.iter().flat_map(|v| v.to_le_bytes()));
        b.push(percent);
        b.extend((1.0f32 / 255.0).to_bits().to_le_bytes());
        b.extend((-128i16).to_le_bytes());
        b.extend(90i32.to_le_bytes());
        b.push(0);
        b.extend((s.w as u64).to_le_bytes());
        b.extend((s.h as u64).to_le_bytes());
        assert_eq!(b.len(), 48);
        b.extend(&data);
        std::fs::write(dir.join(format!("seed-{name}")), b).unwrap();
    }
}
