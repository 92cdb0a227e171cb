//! The digit classifier on the STM32F429I-DISCO: cycles through the stored digits, classifies
//! each through `runtime_mobile::Classifier`, checks the answer against the host's, and shows the
//! result screen on the board's panel (LTDC, framebuffer in internal SRAM) with the inference's
//! CPU cycles from the DWT counter. Touching the screen switches to drawing: a digit drawn with
//! a finger in the digit box is classified (`Classifier::classify_frame`, which finds and centres
//! it) once the finger has been lifted for a moment. Answers also go to the probe over RTT
//! (`probe-rs run` prints them).
#![no_std]
#![no_main]

mod panel;
mod touch;

use cortex_m::peripheral::DWT;
use cortex_m_rt::entry;
use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::mono_font::ascii::FONT_10X20;
use embedded_graphics::pixelcolor::Rgb565;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Baseline, Text};
use firmware_common::check::check;
use firmware_common::digits::{self, EXPECTED};
use firmware_common::screen::{self, DIGIT_AREA, Timing, View};
use firmware_common::{Buffers, MODEL, N_DIGITS};
use panic_rtt_target as _;
use rtt_target::{rprintln, rtt_init_print};
use runtime_mobile::Model;
use runtime_mobile::classifier::FRAME_SCRATCH_BYTES;
use runtime_mobile::preprocess::{Frame, Options, PixelFormat};
use runtime_mobile::{Classifier, FrameOutcome};
use stm32f4xx_hal::gpio::Speed;
use stm32f4xx_hal::i2c::I2c;
use stm32f4xx_hal::ltdc::DisplayController;
use stm32f4xx_hal::pac;
use stm32f4xx_hal::prelude::*;
use stm32f4xx_hal::rcc::Config;
use stm32f4xx_hal::spi::{Mode, Phase, Polarity, Spi};

use panel::{Commands, PIXELS, Panel};
use touch::Touch;

const SYSCLK_HZ: u32 = 180_000_000;
/// How long each digit's screen stays up.
const SHOW_MS: u32 = 2000;
/// Touch polling period, and how long a lifted finger means "done drawing".
const POLL_MS: u32 = 10;
const LIFT_MS: u32 = 800;
/// The drawing canvas: the 196x196 digit box at 4/7 scale, one byte per pixel (0 = background).
const CANVAS: usize = 112;
/// Brush radius on the canvas (about MNIST's stroke once the digit is scaled to 20 pixels).
const BRUSH: i32 = 5;

/// The classifier's buffers (arena and the scratch for pictures, 41 KB) in the 64 KB CCM RAM
/// (memory.x), which only the CPU reads: the 192 KB of SRAM the LTDC can read hold the
/// framebuffer. NOLOAD: any bytes are a valid `Buffers` (byte arrays), and the classifier writes
/// before it reads.
#[unsafe(link_section = ".ccmram")]
static mut BUFFERS: Buffers<FRAME_SCRATCH_BYTES> = Buffers::new();

#[entry]
fn main() -> ! {
    // `#[entry]` turns these into `&'static mut` singletons in .bss (internal SRAM: the 150 KB
    // framebuffer fits there, so the board's SDRAM stays unused).
    static mut FRAMEBUFFER: [u16; PIXELS] = [0; PIXELS];
    static mut DRAWING: [u8; CANVAS * CANVAS] = [0; CANVAS * CANVAS];

    rtt_init_print!();
    let (Some(dp), Some(mut cp)) = (pac::Peripherals::take(), cortex_m::Peripherals::take()) else {
        panic!("peripherals taken twice");
    };
    let mut rcc = dp.RCC.constrain();
    let gpioa = dp.GPIOA.split(&mut rcc);
    let gpiob = dp.GPIOB.split(&mut rcc);
    let gpioc = dp.GPIOC.split(&mut rcc);
    let gpiod = dp.GPIOD.split(&mut rcc);
    let gpiof = dp.GPIOF.split(&mut rcc);
    let gpiog = dp.GPIOG.split(&mut rcc);
    // The board's 8 MHz crystal, the core at its 180 MHz.
    let mut rcc = rcc.freeze(Config::hse(8.MHz()).sysclk(SYSCLK_HZ.Hz()));
    let i2c = I2c::new(dp.I2C3, (gpioa.pa8, gpioc.pc9), 100.kHz(), &mut rcc);

    // LTDC: 6 bits per colour (R2..R7, G2..G7, B2..B7), sync, data enable, pixel clock; AF14
    // except the four pins the F429 routes through AF9.
    let _ = (
        gpioc.pc10.into_alternate::<14>().speed(Speed::VeryHigh), // R2
        gpiob.pb0.into_alternate::<9>().speed(Speed::VeryHigh),   // R3
        gpioa.pa11.into_alternate::<14>().speed(Speed::VeryHigh), // R4
        gpioa.pa12.into_alternate::<14>().speed(Speed::VeryHigh), // R5
        gpiob.pb1.into_alternate::<9>().speed(Speed::VeryHigh),   // R6
        gpiog.pg6.into_alternate::<14>().speed(Speed::VeryHigh),  // R7
    );
    let _ = (
        gpioa.pa6.into_alternate::<14>().speed(Speed::VeryHigh),  // G2
        gpiog.pg10.into_alternate::<9>().speed(Speed::VeryHigh),  // G3
        gpiob.pb10.into_alternate::<14>().speed(Speed::VeryHigh), // G4
        gpiob.pb11.into_alternate::<14>().speed(Speed::VeryHigh), // G5
        gpioc.pc7.into_alternate::<14>().speed(Speed::VeryHigh),  // G6
        gpiod.pd3.into_alternate::<14>().speed(Speed::VeryHigh),  // G7
    );
    let _ = (
        gpiod.pd6.into_alternate::<14>().speed(Speed::VeryHigh),  // B2
        gpiog.pg11.into_alternate::<14>().speed(Speed::VeryHigh), // B3
        gpiog.pg12.into_alternate::<9>().speed(Speed::VeryHigh),  // B4
        gpioa.pa3.into_alternate::<14>().speed(Speed::VeryHigh),  // B5
        gpiob.pb8.into_alternate::<14>().speed(Speed::VeryHigh),  // B6
        gpiob.pb9.into_alternate::<14>().speed(Speed::VeryHigh),  // B7
    );
    let _ = (
        gpioc.pc6.into_alternate::<14>().speed(Speed::VeryHigh),  // HSYNC
        gpioa.pa4.into_alternate::<14>().speed(Speed::VeryHigh),  // VSYNC
        gpiof.pf10.into_alternate::<14>().speed(Speed::VeryHigh), // DE
        gpiog.pg7.into_alternate::<14>().speed(Speed::VeryHigh),  // CLK
    );

    // The panel's setup commands over SPI5 (mode 0), then the LTDC takes over.
    let mode = Mode { polarity: Polarity::IdleLow, phase: Phase::CaptureOnFirstTransition };
    let spi = Spi::new(dp.SPI5, (Some(gpiof.pf7), Some(gpiof.pf8), Some(gpiof.pf9)), mode, 5.MHz(), &mut rcc);
    let mut commands =
        Commands { spi, cs: gpioc.pc2.into_push_pull_output(), dc: gpiod.pd13.into_push_pull_output(), sysclk_hz: SYSCLK_HZ };
    let ltdc = DisplayController::<u16>::new(
        dp.LTDC,
        dp.DMA2D,
        None,
        stm32f4xx_hal::ltdc::PixelFormat::RGB565,
        panel::CONFIG,
        Some(8.MHz()),
    );
    let mut panel = Panel::new(ltdc, FRAMEBUFFER);
    commands.setup();

    // CPU cycles per inference.
    cp.DCB.enable_trace();
    cp.DWT.enable_cycle_counter();
    let mut touch = match Touch::new(i2c, SYSCLK_HZ) {
        Ok(t) => Some(t),
        Err(e) => {
            rprintln!("touch controller not answering ({:?}): stored digits only", e);
            None
        }
    };

    // Borrowed, not moved out of the `Result`: moving would put a second `Model` (~3 KB) in
    // this frame (see stack-usage/README.md).
    let parsed = Model::parse(MODEL);
    let model = match &parsed {
        Ok(m) => m,
        Err(e) => panic!("Model::parse: {e}"),
    };
    // SAFETY: the one reference ever taken to BUFFERS (main runs once, no interrupt uses it).
    let Some(buffers) = (unsafe { (&raw mut BUFFERS).as_mut() }) else { panic!("BUFFERS at null") };
    let mut classifier = match firmware_common::classifier(model, buffers) {
        Ok(c) => c,
        Err(e) => panic!("Classifier::new: {e}"),
    };
    rprintln!("stm32f429i-disco: {} stored digits, kernels '{}'", EXPECTED.len(), classifier.kernels().name);

    let mut i = 0;
    loop {
        show_stored(i, &mut classifier, &mut panel);
        let touched = match touch.as_mut() {
            Some(t) => wait_for_touch(t, SHOW_MS),
            None => {
                cortex_m::asm::delay(SYSCLK_HZ / 1000 * SHOW_MS);
                false
            }
        };
        if let (true, Some(t)) = (touched, touch.as_mut()) {
            draw_and_classify(t, &mut classifier, &mut panel, DRAWING);
        }
        i = (i + 1) % N_DIGITS;
    }
}

/// Classifies stored digit `i`, checks it against the host's answer and shows it.
fn show_stored(i: usize, classifier: &mut Classifier<'_, '_>, panel: &mut Panel) {
    let (Some(image), Some(expected)) = (digits::digit(i), EXPECTED.get(i)) else { return };
    let start = DWT::cycle_count();
    let c = match classifier.classify_image(image) {
        Ok(c) => c,
        Err(e) => panic!("classify_image: {e}"),
    };
    let cycles = DWT::cycle_count().wrapping_sub(start);
    let verdict = check(&c, expected);
    rprintln!(
        "digit {:02} label {} answer {} confidence_q15 {} cycles {} host {}",
        i,
        expected.label,
        c.class,
        c.confidence.q15(),
        cycles,
        if verdict.is_ok() { "same" } else { "DIFFERS" }
    );
    let timing = Timing { ticks: u64::from(cycles), hz: SYSCLK_HZ, source: "DWT cycles" };
    let view = View { index: Some(i), label: Some(expected.label), timing: Some(timing), ..View::new(image, &c) };
    let Ok(()) = screen::draw(panel, &view);
    if let Err(m) = verdict {
        rprintln!("  differs from the host: {}", m);
        // A red frame round the screen: this board's answer is not the host's.
        let frame = Rectangle::new(Point::zero(), panel.size()).into_styled(PrimitiveStyle::with_stroke(Rgb565::RED, 3));
        let Ok(()) = frame.draw(panel);
    }
}

/// Waits up to `ms`; `true` as soon as the screen is touched.
fn wait_for_touch(touch: &mut Touch, ms: u32) -> bool {
    for _ in 0..ms / POLL_MS {
        if let Ok(Some(_)) = touch.point() {
            return true;
        }
        cortex_m::asm::delay(SYSCLK_HZ / 1000 * POLL_MS);
    }
    false
}

/// Screen point (landscape) of a panel point (portrait): the inverse of `Panel`'s rotation.
fn screen_point((px, py): (usize, usize)) -> Point {
    Point::new(py as i32, 239 - px as i32)
}

/// Lets a finger draw in the digit box until it has been lifted for [`LIFT_MS`], then classifies
/// the drawing and shows the answer.
fn draw_and_classify(
    touch: &mut Touch,
    classifier: &mut Classifier<'_, '_>,
    panel: &mut Panel,
    canvas: &mut [u8; CANVAS * CANVAS],
) {
    canvas.fill(0);
    let Ok(()) = panel.fill_solid(&DIGIT_AREA, Rgb565::BLACK);
    let mut idle_ms = 0;
    while idle_ms < LIFT_MS {
        match touch.point() {
            Ok(Some(p)) => {
                idle_ms = 0;
                let at = screen_point(p);
                if DIGIT_AREA.contains(at) {
                    let local = at - DIGIT_AREA.top_left;
                    let scale = |v: i32, side: u32| v * CANVAS as i32 / side as i32;
                    ink(canvas, scale(local.x, DIGIT_AREA.size.width), scale(local.y, DIGIT_AREA.size.height));
                    // The brush as the screen shows it (canvas pixels are 7/4 screen pixels).
                    let side = (2 * BRUSH as u32 + 1) * 7 / 4;
                    let dot = Rectangle::with_center(at, Size::new(side, side));
                    let Ok(()) = panel.fill_solid(&dot.intersection(&DIGIT_AREA), Rgb565::WHITE);
                }
            }
            _ => idle_ms += POLL_MS,
        }
        cortex_m::asm::delay(SYSCLK_HZ / 1000 * POLL_MS);
    }
    let Ok(frame) = Frame::new(&canvas[..], PixelFormat::Gray8, CANVAS, CANVAS, CANVAS) else { return };
    let start = DWT::cycle_count();
    let outcome = classifier.classify_frame(&frame, &Options::DEFAULT);
    let cycles = DWT::cycle_count().wrapping_sub(start);
    // The view's labels borrow the model, not the classifier: keep them, then read the image
    // the model saw.
    let shown = match outcome {
        Ok(FrameOutcome::Digit(c)) => {
            rprintln!("drawn digit: answer {} confidence_q15 {} cycles {}", c.class, c.confidence.q15(), cycles);
            Some(View::new(&BLANK, &c))
        }
        Ok(FrameOutcome::NoDigit(why)) => {
            rprintln!("drawn digit: none found ({:?})", why);
            None
        }
        Err(e) => panic!("classify_frame: {e}"),
    };
    match shown {
        Some(view) => {
            let image = *classifier.last_image();
            let timing = Timing { ticks: u64::from(cycles), hz: SYSCLK_HZ, source: "DWT cycles, drawn" };
            let Ok(()) = screen::draw(panel, &View { image: &image, timing: Some(timing), ..view });
        }
        None => {
            let style = MonoTextStyle::new(&FONT_10X20, Rgb565::RED);
            let Ok(_) = Text::with_baseline("no digit", Point::new(214, 40), style, Baseline::Top).draw(panel);
        }
    }
    cortex_m::asm::delay(SYSCLK_HZ / 1000 * SHOW_MS);
}

/// A placeholder image for [`View::new`] before the classifier's own is read.
static BLANK: [u8; 28 * 28] = [0; 28 * 28];

/// A round brush dab at canvas (x, y).
fn ink(canvas: &mut [u8; CANVAS * CANVAS], x: i32, y: i32) {
    for dy in -BRUSH..=BRUSH {
        for dx in -BRUSH..=BRUSH {
            let (cx, cy) = (x + dx, y + dy);
            if dx * dx + dy * dy <= BRUSH * BRUSH
                && (0..CANVAS as i32).contains(&cx)
                && (0..CANVAS as i32).contains(&cy)
                && let Some(px) = canvas.get_mut(cy as usize * CANVAS + cx as usize)
            {
                *px = 255;
            }
        }
    }
}
