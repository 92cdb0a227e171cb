//! Shared by the preprocessing tests: MNIST-style scene synthesis (the same code builds the
//! committed fixtures in `tests/images/`), image decoding into frames, and image metrics.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use image::{DynamicImage, GrayImage, ImageFormat, RgbImage};
use runtime_mobile::preprocess::{self, Frame, OUT_DIM, OUT_PIXELS, Options, PixelFormat, SCRATCH_BYTES};

pub fn images_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/images")
}

/// Committed 28x28 MNIST test digits (`tests/images/mnist28/t10k-NNNNN_digitL.png`):
/// (t10k index, label, pixels).
pub fn mnist_sources() -> Vec<(usize, u8, [u8; OUT_PIXELS])> {
    let dir = images_dir().join("mnist28");
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_str().unwrap().to_string();
            let (idx, label) = name.strip_prefix("t10k-").unwrap().split_once("_digit").unwrap();
            let img = image::open(&p).unwrap().to_luma8();
            assert_eq!(img.dimensions(), (28, 28), "{name}");
            (idx.parse().unwrap(), label.parse().unwrap(), img.into_raw().try_into().unwrap())
        })
        .collect();
    out.sort();
    out
}

pub use testkit::Rng;

/// Bilinear upscale of a 28x28 image to `size x size` (pixel centres aligned, black outside),
/// like a phone UI enlarging a small bitmap.
pub fn upscale(src: &[u8; OUT_PIXELS], size: usize) -> Vec<f32> {
    let at = |x: i64, y: i64| {
        if (0..28).contains(&x) && (0..28).contains(&y) { src[y as usize * 28 + x as usize] as f32 } else { 0.0 }
    };
    let mut out = vec![0.0; size * size];
    for y in 0..size {
        for x in 0..size {
            let fx = (x as f32 + 0.5) * 28.0 / size as f32 - 0.5;
            let fy = (y as f32 + 0.5) * 28.0 / size as f32 - 0.5;
            let (x0, y0) = (fx.floor(), fy.floor());
            let (tx, ty) = (fx - x0, fy - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            out[y * size + x] = (at(x0, y0) * (1.0 - tx) + at(x0 + 1, y0) * tx) * (1.0 - ty)
                + (at(x0, y0 + 1) * (1.0 - tx) + at(x0 + 1, y0 + 1) * tx) * ty;
        }
    }
    out
}

/// How a digit is put on a page.
#[derive(Clone, Copy, Debug)]
pub struct Placement {
    pub name: &'static str,
    pub canvas: (usize, usize),
    /// Side of the square the 28x28 image is upscaled to.
    pub digit_px: usize,
    /// Top-left of that square as a fraction of the free space (0 = left/top, 1 = right/bottom).
    pub at: (f32, f32),
    /// Page brightness at the start and end of the lighting gradient, and its direction (deg).
    pub page: (f32, f32),
    pub gradient_deg: f32,
    pub ink: f32,
    pub noise: i32,
    /// Paper tint (RGB multipliers); `None` writes a grayscale image.
    pub tint: Option<[f32; 3]>,
    pub jpeg: bool,
}

pub const PAPER: Placement = Placement {
    name: "offcentre",
    canvas: (320, 240),
    digit_px: 200,
    at: (0.2, 0.7),
    page: (235.0, 175.0),
    gradient_deg: 20.0,
    ink: 35.0,
    noise: 3,
    tint: None,
    jpeg: false,
};

/// The placements of the committed fixtures; digit `d`'s MNIST scene uses `FIXTURES[d]`.
pub const FIXTURES: [Placement; 10] = [
    PAPER,
    Placement { name: "topleft_small", digit_px: 110, at: (0.1, 0.05), gradient_deg: 135.0, jpeg: true, ..PAPER },
    Placement { name: "big_bottomright", canvas: (280, 280), digit_px: 240, at: (0.9, 0.95), ..PAPER },
    Placement { name: "dim_gradient", page: (200.0, 120.0), ink: 20.0, gradient_deg: 270.0, jpeg: true, ..PAPER },
    Placement { name: "yellow_paper", tint: Some([1.0, 0.95, 0.75]), at: (0.8, 0.3), jpeg: true, ..PAPER },
    Placement { name: "portrait", canvas: (240, 320), digit_px: 180, at: (0.5, 0.2), gradient_deg: 60.0, ..PAPER },
    Placement { name: "camera", canvas: (640, 480), digit_px: 300, at: (0.45, 0.5), noise: 3, jpeg: true, ..PAPER },
    Placement { name: "chalkboard", page: (45.0, 70.0), ink: 225.0, at: (0.6, 0.4), ..PAPER },
    Placement { name: "faint_pencil", page: (230.0, 215.0), ink: 140.0, noise: 3, at: (0.35, 0.6), ..PAPER },
    Placement { name: "blue_ink", tint: Some([0.9, 0.93, 1.0]), ink: 60.0, digit_px: 150, at: (0.7, 0.9), jpeg: true, ..PAPER },
];

/// Renders an MNIST digit (white on black, 0..255) as ink on a lit page.
pub fn render(src: &[u8; OUT_PIXELS], p: &Placement, seed: u64) -> DynamicImage {
    let (w, h) = p.canvas;
    let digit = upscale(src, p.digit_px);
    let ox = ((w - p.digit_px) as f32 * p.at.0).round() as usize;
    let oy = ((h - p.digit_px) as f32 * p.at.1).round() as usize;
    let (dx, dy) = (p.gradient_deg.to_radians().cos(), p.gradient_deg.to_radians().sin());
    let span = w as f32 * dx.abs() + h as f32 * dy.abs();
    let mut rng = Rng(seed);
    let mut gray = vec![0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            // Position along the gradient, 0..1.
            let t = ((x as f32 - if dx < 0.0 { w as f32 } else { 0.0 }) * dx
                + (y as f32 - if dy < 0.0 { h as f32 } else { 0.0 }) * dy)
                / span;
            let page = p.page.0 + (p.page.1 - p.page.0) * t;
            let a = if (ox..ox + p.digit_px).contains(&x) && (oy..oy + p.digit_px).contains(&y) {
                digit[(y - oy) * p.digit_px + (x - ox)] / 255.0
            } else {
                0.0
            };
            gray[y * w + x] = page * (1.0 - a) + p.ink * a;
        }
    }
    let px = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    match p.tint {
        None => DynamicImage::ImageLuma8(
            GrayImage::from_raw(w as u32, h as u32, gray.iter().map(|&v| px(v + rng.noise(p.noise))).collect()).unwrap(),
        ),
        Some(t) => DynamicImage::ImageRgb8(
            RgbImage::from_raw(
                w as u32,
                h as u32,
                gray.iter().flat_map(|&v| t.map(|c| v * c)).map(|v| px(v + rng.noise(p.noise))).collect(),
            )
            .unwrap(),
        ),
    }
}

pub fn encode(img: &DynamicImage, jpeg: bool) -> Vec<u8> {
    let mut buf = Vec::new();
    if jpeg {
        let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 85);
        img.write_with_encoder(enc).unwrap();
    } else {
        img.write_to(&mut std::io::Cursor::new(&mut buf), ImageFormat::Png).unwrap();
    }
    buf
}

/// A decoded image in the layout a desktop caller (the `classify` CLI) passes: grayscale stays
/// one byte per pixel; anything with colour or alpha becomes RGBA.
pub struct Decoded {
    pub data: Vec<u8>,
    pub format: PixelFormat,
    pub width: usize,
    pub height: usize,
}

impl Decoded {
    pub fn new(img: &DynamicImage) -> Self {
        let (width, height) = (img.width() as usize, img.height() as usize);
        if img.color().has_color() || img.color().has_alpha() {
            Decoded { data: img.to_rgba8().into_raw(), format: PixelFormat::Rgba8888, width, height }
        } else {
            Decoded { data: img.to_luma8().into_raw(), format: PixelFormat::Gray8, width, height }
        }
    }

    pub fn frame(&self) -> Frame<'_> {
        let stride = self.width * self.format.bytes_per_pixel();
        Frame::new(&self.data, self.format, self.width, self.height, stride).unwrap()
    }
}

/// The 28x28 image, or why there is none (an error, or no digit found).
pub fn run(frame: &Frame<'_>) -> Result<[u8; OUT_PIXELS], String> {
    let mut scratch = vec![0u8; SCRATCH_BYTES];
    let mut out = [0u8; OUT_PIXELS];
    match preprocess::preprocess(frame, &Options::DEFAULT, &mut scratch, &mut out) {
        Ok(preprocess::Preprocessed::Digit(_)) => Ok(out),
        Ok(preprocess::Preprocessed::NoDigit(r)) => Err(r.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

pub fn run_bytes(bytes: &[u8]) -> Result<[u8; OUT_PIXELS], String> {
    run(&Decoded::new(&image::load_from_memory(bytes).unwrap()).frame())
}

pub fn mad(a: &[u8], b: &[u8]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| (x as i32 - y as i32).abs() as f64).sum::<f64>() / a.len() as f64
}

/// Centre of mass (x, y), pixel centres at i + 0.5.
pub fn com(img: &[u8]) -> (f64, f64) {
    let (mut m, mut mx, mut my) = (0.0, 0.0, 0.0);
    for (i, &v) in img.iter().enumerate() {
        m += v as f64;
        mx += v as f64 * ((i % OUT_DIM) as f64 + 0.5);
        my += v as f64 * ((i / OUT_DIM) as f64 + 0.5);
    }
    (mx / m, my / m)
}

pub fn com_dist(a: &[u8], b: &[u8]) -> f64 {
    let (p, q) = (com(a), com(b));
    ((p.0 - q.0).powi(2) + (p.1 - q.1).powi(2)).sqrt()
}

pub fn ascii_pair(a: &[u8], b: &[u8]) -> String {
    let row = |img: &[u8], y: usize| -> String {
        img[y * OUT_DIM..][..OUT_DIM].iter().map(|&v| b" .:-=+*#%@"[v as usize * 10 / 256] as char).collect()
    };
    (0..OUT_DIM).map(|y| format!("{}  |  {}\n", row(a, y), row(b, y))).collect()
}

// ---------------------------------------------------------------------------------------------
// Font-rendered digits: dark glyphs on a light page at a large size.

pub struct FontDigit {
    pub digit: u8,
    pub style: &'static str,
    pub font: fn() -> &'static [u8],
    pub px: f32,
}

pub const FONT_DIGITS: [FontDigit; 10] = [
    FontDigit { digit: 0, style: "sans", font: dejavu::sans::regular, px: 170.0 },
    FontDigit { digit: 1, style: "sans_bold", font: dejavu::sans::bold, px: 150.0 },
    FontDigit { digit: 2, style: "serif", font: dejavu::serif::regular, px: 180.0 },
    FontDigit { digit: 3, style: "mono", font: dejavu::sans_mono::regular, px: 160.0 },
    FontDigit { digit: 4, style: "sans_oblique", font: dejavu::sans::oblique, px: 140.0 },
    FontDigit { digit: 5, style: "serif_bold", font: dejavu::serif::bold, px: 170.0 },
    FontDigit { digit: 6, style: "condensed", font: dejavu::sans_condensed::regular, px: 190.0 },
    FontDigit { digit: 7, style: "serif_italic", font: dejavu::serif::italic, px: 160.0 },
    FontDigit { digit: 8, style: "sans_bold_oblique", font: dejavu::sans::bold_oblique, px: 150.0 },
    FontDigit { digit: 9, style: "mono_bold", font: dejavu::sans_mono::bold, px: 170.0 },
];

pub fn render_font_digit(d: &FontDigit, seed: u64) -> DynamicImage {
    use ab_glyph::{Font, FontRef, PxScale};
    let (w, h) = (256usize, 256usize);
    let font = FontRef::try_from_slice((d.font)()).unwrap();
    let glyph = font.glyph_id(char::from(b'0' + d.digit)).with_scale(PxScale::from(d.px));
    let outline = font.outline_glyph(glyph).unwrap();
    let b = outline.px_bounds();
    // Slightly off-centre, like a hand-held photo of a printed digit.
    let ox = ((w as f32 - b.width()) * 0.4) as i64;
    let oy = ((h as f32 - b.height()) * 0.55) as i64;
    let mut cover = vec![0f32; w * h];
    outline.draw(|x, y, c| {
        let (x, y) = (ox + x as i64, oy + y as i64);
        if (0..w as i64).contains(&x) && (0..h as i64).contains(&y) {
            cover[y as usize * w + x as usize] = c.clamp(0.0, 1.0);
        }
    });
    let mut rng = Rng(seed);
    let px = (0..w * h)
        .map(|i| {
            let page = 240.0 - 40.0 * (i % w) as f32 / w as f32;
            (page * (1.0 - cover[i]) + 25.0 * cover[i] + rng.noise(2)).round().clamp(0.0, 255.0) as u8
        })
        .collect();
    DynamicImage::ImageLuma8(GrayImage::from_raw(w as u32, h as u32, px).unwrap())
}
