//! The result screen, 320x240 (landscape), drawn with embedded-graphics on any `Rgb565` target:
//! the digit scaled up on the left; on the right the answer in large type, its confidence and
//! the top 3 as bars; along the bottom the inference time. Boards draw it into their
//! framebuffer; the end-to-end test draws it on the host as the reference rendering.
//!
//! Only [`TIMING_AREA`] depends on when and where the screen was drawn: everything outside it is
//! a function of the digit and the classifier's answer, so a board's screen must equal the
//! reference there pixel for pixel.

use core::fmt::{self, Write as _};

use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::mono_font::ascii::{FONT_6X10, FONT_10X20};
use embedded_graphics::pixelcolor::Rgb565;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Baseline, Text};
use runtime_mobile::preprocess::OUT_PIXELS;
use runtime_mobile::{Classification, Confidence};

pub const WIDTH: u32 = 320;
pub const HEIGHT: u32 = 240;
/// Screen pixels per digit pixel: 28 * 7 = 196.
const DIGIT_SCALE: u32 = 7;
const DIGIT_AT: Point = Point::new(8, 26);
/// Where the digit is shown (196x196): a touch screen draws in it.
pub const DIGIT_AREA: Rectangle = Rectangle::new(DIGIT_AT, Size::new(28 * DIGIT_SCALE, 28 * DIGIT_SCALE));
/// The answer's glyph (10x20) is drawn this many times larger.
const ANSWER_SCALE: u32 = 4;
const PANEL_X: i32 = 214;
const BAR_X: i32 = PANEL_X + 14;
const BAR_MAX: u32 = 58;
/// The bottom strip with the inference time: the one part that differs between runs.
pub const TIMING_AREA: Rectangle = Rectangle::new(Point::new(0, 226), Size::new(WIDTH, HEIGHT - 226));

const BACKGROUND: Rgb565 = Rgb565::BLACK;
const INK: Rgb565 = Rgb565::WHITE;
const DIM: Rgb565 = Rgb565::new(16, 32, 16);
const ACCENT: Rgb565 = Rgb565::new(4, 52, 10);

/// How long an inference took, as a board measured it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Counter ticks (CPU cycles from the DWT on a real board; SysTick ticks under QEMU).
    pub ticks: u64,
    /// The counter's frequency.
    pub hz: u32,
    /// What counted: shown on screen ("DWT cycles", "SysTick, QEMU").
    pub source: &'static str,
}

/// Everything one screen shows.
#[derive(Debug, Clone, Copy)]
pub struct View<'v> {
    /// Stored digit number (shown as "#07"), `None` for a digit drawn on the touch screen.
    pub index: Option<usize>,
    /// MNIST's label, when known.
    pub label: Option<u8>,
    /// The 28x28 image the model saw.
    pub image: &'v [u8; OUT_PIXELS],
    pub answer: &'v str,
    pub confidence: Confidence,
    /// Label and confidence of the best three classes, best first.
    pub top: [(&'v str, Confidence); 3],
    pub timing: Option<Timing>,
}

impl<'v> View<'v> {
    /// The view of `c`, the classifier's answer for `image`.
    pub fn new(image: &'v [u8; OUT_PIXELS], c: &Classification<'_, 'v>) -> Self {
        let mut top = [(c.label, c.confidence); 3];
        for (slot, r) in top.iter_mut().zip(c.top()) {
            *slot = (r.label, r.confidence);
        }
        View { index: None, label: None, image, answer: c.label, confidence: c.confidence, top, timing: None }
    }
}

/// Draws the whole screen (it clears it first).
pub fn draw<D: DrawTarget<Color = Rgb565>>(target: &mut D, view: &View<'_>) -> Result<(), D::Error> {
    target.clear(BACKGROUND)?;
    draw_header(target, view)?;
    draw_digit(target, view.image)?;
    draw_answer(target, view)?;
    draw_top(target, view)?;
    if let Some(t) = view.timing {
        draw_timing(target, &t)?;
    }
    Ok(())
}

fn draw_header<D: DrawTarget<Color = Rgb565>>(target: &mut D, view: &View<'_>) -> Result<(), D::Error> {
    let mut line = Line::<48>::new();
    match view.index {
        Some(i) => line.write_fmt(format_args!("MNIST test digit #{i:02}")),
        None => line.write_str("drawn digit"),
    }
    .ok();
    if let Some(l) = view.label {
        line.write_fmt(format_args!(", label {l}")).ok();
    }
    Text::with_baseline(line.as_str(), Point::new(8, 3), MonoTextStyle::new(&FONT_10X20, INK), Baseline::Top).draw(target)?;
    Ok(())
}

/// Each pixel a 7x7 square, grey level kept (MNIST: 0 = background, 255 = ink).
fn draw_digit<D: DrawTarget<Color = Rgb565>>(target: &mut D, image: &[u8; OUT_PIXELS]) -> Result<(), D::Error> {
    let side = DIGIT_SCALE * 28;
    Rectangle::new(DIGIT_AT - Point::new(1, 1), Size::new(side + 2, side + 2))
        .into_styled(PrimitiveStyle::with_stroke(DIM, 1))
        .draw(target)?;
    for (i, &v) in image.iter().enumerate() {
        if v == 0 {
            continue;
        }
        let (x, y) = ((i % 28) as i32, (i / 28) as i32);
        let at = DIGIT_AT + Point::new(x, y) * DIGIT_SCALE as i32;
        target.fill_solid(&Rectangle::new(at, Size::new(DIGIT_SCALE, DIGIT_SCALE)), grey(v))?;
    }
    Ok(())
}

fn grey(v: u8) -> Rgb565 {
    Rgb565::new(v >> 3, v >> 2, v >> 3)
}

fn draw_answer<D: DrawTarget<Color = Rgb565>>(target: &mut D, view: &View<'_>) -> Result<(), D::Error> {
    let small = MonoTextStyle::new(&FONT_6X10, DIM);
    Text::with_baseline("answer", Point::new(PANEL_X, 28), small, Baseline::Top).draw(target)?;
    let mut big = Scaled { target, origin: Point::new(PANEL_X, 40), scale: ANSWER_SCALE };
    Text::with_baseline(view.answer, Point::zero(), MonoTextStyle::new(&FONT_10X20, ACCENT), Baseline::Top).draw(&mut big)?;
    let mut line = Line::<16>::new();
    percent(&mut line, view.confidence).ok();
    Text::with_baseline(line.as_str(), Point::new(PANEL_X, 124), MonoTextStyle::new(&FONT_10X20, INK), Baseline::Top)
        .draw(target)?;
    Ok(())
}

fn draw_top<D: DrawTarget<Color = Rgb565>>(target: &mut D, view: &View<'_>) -> Result<(), D::Error> {
    Text::with_baseline("top 3", Point::new(PANEL_X, 152), MonoTextStyle::new(&FONT_6X10, DIM), Baseline::Top).draw(target)?;
    for (rank, (label, conf)) in view.top.iter().enumerate() {
        let y = 166 + 20 * rank as i32;
        Text::with_baseline(label, Point::new(PANEL_X, y), MonoTextStyle::new(&FONT_10X20, INK), Baseline::Top).draw(target)?;
        let len = (BAR_MAX * u32::from(conf.q15()) + (1 << 14)) >> 15;
        let colour = if rank == 0 { ACCENT } else { DIM };
        Rectangle::new(Point::new(BAR_X, y + 4), Size::new(BAR_MAX, 12))
            .into_styled(PrimitiveStyle::with_stroke(DIM, 1))
            .draw(target)?;
        target.fill_solid(&Rectangle::new(Point::new(BAR_X, y + 4), Size::new(len, 12)), colour)?;
        let mut line = Line::<8>::new();
        write!(line, "{}%", (conf.per_mille() + 5) / 10).ok();
        Text::with_baseline(
            line.as_str(),
            Point::new(BAR_X + BAR_MAX as i32 + 3, y + 6),
            MonoTextStyle::new(&FONT_6X10, INK),
            Baseline::Top,
        )
        .draw(target)?;
    }
    Ok(())
}

fn draw_timing<D: DrawTarget<Color = Rgb565>>(target: &mut D, t: &Timing) -> Result<(), D::Error> {
    let mut line = Line::<64>::new();
    let micros = t.ticks.saturating_mul(1_000_000) / u64::from(t.hz.max(1));
    write!(line, "{}.{:03} ms, {} ticks @ {} MHz ({})", micros / 1000, micros % 1000, t.ticks, t.hz / 1_000_000, t.source).ok();
    let at = TIMING_AREA.top_left + Point::new(8, 3);
    Text::with_baseline(line.as_str(), at, MonoTextStyle::new(&FONT_6X10, INK), Baseline::Top).draw(target)?;
    Ok(())
}

/// "99.8%" from a Q15 confidence.
fn percent(out: &mut impl fmt::Write, c: Confidence) -> fmt::Result {
    let pm = c.per_mille();
    write!(out, "{}.{}%", pm / 10, pm % 10)
}

/// A draw target that paints each pixel as a `scale` x `scale` square at `origin` of `target`:
/// large type from the small mono fonts.
struct Scaled<'t, D> {
    target: &'t mut D,
    origin: Point,
    scale: u32,
}

impl<D: DrawTarget<Color = Rgb565>> Dimensions for Scaled<'_, D> {
    fn bounding_box(&self) -> Rectangle {
        let b = self.target.bounding_box();
        Rectangle::new(Point::zero(), Size::new(b.size.width / self.scale, b.size.height / self.scale))
    }
}

impl<D: DrawTarget<Color = Rgb565>> DrawTarget for Scaled<'_, D> {
    type Color = Rgb565;
    type Error = D::Error;

    fn draw_iter<I: IntoIterator<Item = Pixel<Rgb565>>>(&mut self, pixels: I) -> Result<(), D::Error> {
        let s = self.scale;
        for Pixel(p, colour) in pixels {
            let at = self.origin + p * s as i32;
            self.target.fill_solid(&Rectangle::new(at, Size::new(s, s)), colour)?;
        }
        Ok(())
    }
}

/// A fixed-size text buffer (no allocation); writes past its end are cut off.
struct Line<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Line<N> {
    fn new() -> Self {
        Line { buf: [0; N], len: 0 }
    }

    fn as_str(&self) -> &str {
        // Only whole `&str`s are copied in (write_str), so the prefix is UTF-8.
        core::str::from_utf8(self.buf.get(..self.len).unwrap_or_default()).unwrap_or_default()
    }
}

impl<const N: usize> fmt::Write for Line<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// A 320x240 `Rgb565` framebuffer in RAM (153,600 bytes), row-major: QEMU's display, and the
/// host's reference rendering.
pub struct Framebuffer {
    pub pixels: [Rgb565; (WIDTH * HEIGHT) as usize],
}

impl Framebuffer {
    pub const fn new() -> Self {
        Framebuffer { pixels: [Rgb565::BLACK; (WIDTH * HEIGHT) as usize] }
    }

    /// Row `y` as 24-bit RGB (8 bits per channel, the 565 values widened), into `out`.
    pub fn row_rgb888(&self, y: u32, out: &mut [u8; 3 * WIDTH as usize]) {
        let row = self.pixels.get((y * WIDTH) as usize..((y + 1) * WIDTH) as usize).unwrap_or_default();
        for (px, rgb) in row.iter().zip(out.chunks_exact_mut(3)) {
            let (r, g, b) = (px.r(), px.g(), px.b());
            rgb.copy_from_slice(&[(r << 3) | (r >> 2), (g << 2) | (g >> 4), (b << 3) | (b >> 2)]);
        }
    }
}

impl Default for Framebuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl OriginDimensions for Framebuffer {
    fn size(&self) -> Size {
        Size::new(WIDTH, HEIGHT)
    }
}

impl DrawTarget for Framebuffer {
    type Color = Rgb565;
    type Error = core::convert::Infallible;

    fn draw_iter<I: IntoIterator<Item = Pixel<Rgb565>>>(&mut self, pixels: I) -> Result<(), Self::Error> {
        for Pixel(p, colour) in pixels {
            if let (Ok(x @ 0..WIDTH), Ok(y @ 0..HEIGHT)) = (u32::try_from(p.x), u32::try_from(p.y))
                && let Some(px) = self.pixels.get_mut((y * WIDTH + x) as usize)
            {
                *px = colour;
            }
        }
        Ok(())
    }
}
