//! The digit classifier on the STM32F429I-DISCO: cycles through the stored digits, classifies
//! each through `runtime_mobile::Classifier`, checks the answer against the host's, and shows the
//! result screen on the board's panel (LTDC, framebuffer in internal SRAM) with the inference's
//! CPU cycles from the DWT counter. Answers also go to the probe over RTT (`probe-rs run`
//! prints them).
#![no_std]
#![no_main]

mod panel;

use cortex_m::peripheral::DWT;
use cortex_m_rt::entry;
use embedded_graphics::pixelcolor::Rgb565;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
use firmware_common::check::check;
use firmware_common::digits::{self, EXPECTED};
use firmware_common::screen::{self, Timing, View};
use firmware_common::{Buffers, MODEL};
use panic_rtt_target as _;
use rtt_target::{rprintln, rtt_init_print};
use runtime_mobile::Model;
use stm32f4xx_hal::gpio::Speed;
use stm32f4xx_hal::ltdc::DisplayController;
use stm32f4xx_hal::pac;
use stm32f4xx_hal::prelude::*;
use stm32f4xx_hal::rcc::Config;
use stm32f4xx_hal::spi::{Mode, Phase, Polarity, Spi};

use panel::{Commands, PIXELS, Panel};

const SYSCLK_HZ: u32 = 180_000_000;
/// How long each digit's screen stays up.
const SHOW_MS: u32 = 2000;

#[entry]
fn main() -> ! {
    // `#[entry]` turns these into `&'static mut` singletons in .bss (internal SRAM: the 150 KB
    // framebuffer fits beside the classifier, so the board's SDRAM stays unused).
    static mut BUFFERS: Buffers = Buffers::new();
    static mut FRAMEBUFFER: [u16; PIXELS] = [0; PIXELS];

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

    // Borrowed, not moved out of the `Result`: moving would put a second `Model` (~3 KB) in
    // this frame (see stack-usage/README.md).
    let parsed = Model::parse(MODEL);
    let model = match &parsed {
        Ok(m) => m,
        Err(e) => panic!("Model::parse: {e}"),
    };
    let mut classifier = match firmware_common::classifier(model, BUFFERS) {
        Ok(c) => c,
        Err(e) => panic!("Classifier::new: {e}"),
    };
    rprintln!("stm32f429i-disco: {} stored digits, kernels '{}'", EXPECTED.len(), classifier.kernels().name);

    for (i, expected) in EXPECTED.iter().enumerate().cycle() {
        let Some(image) = digits::digit(i) else { continue };
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
        let Ok(()) = screen::draw(&mut panel, &view);
        if let Err(m) = verdict {
            rprintln!("  differs from the host: {}", m);
            // A red frame round the screen: this board's answer is not the host's.
            let frame = Rectangle::new(Point::zero(), panel.size()).into_styled(PrimitiveStyle::with_stroke(Rgb565::RED, 3));
            let Ok(()) = frame.draw(&mut panel);
        }
        cortex_m::asm::delay(SYSCLK_HZ / 1000 * SHOW_MS);
    }
    unreachable!("cycle() never ends")
}
