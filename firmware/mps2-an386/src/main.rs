//! The digit classifier on QEMU's MPS2 AN386 (Cortex-M4F): classifies every stored digit through
//! `runtime_mobile::Classifier`, prints each answer, checks it against the host's bit for bit
//! (class, Q15 confidence, scores, top 3), draws its result screen into a framebuffer in RAM and
//! writes the first [`SCREENS`] screens to the host as `screen-NN.ppm` (QEMU's working folder).
//!
//! Exit status (semihosting): 0 all equal the host's; 1 some answer differs; 3 the engine
//! failed; 4 the stack measurement failed; 5 a screen could not be written; 101 a panic.
#![no_std]
#![no_main]

use core::panic::PanicInfo;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::{entry, exception};
use cortex_m_semihosting::{heprintln, hprintln};
use firmware_common::digits::{self, EXPECTED};
use firmware_common::screen::{self, Framebuffer, Timing, View};
use firmware_common::semihosting::{exit, write_ppm};
use firmware_common::{Buffers, N_DIGITS, stack};
use runtime_mobile::{Classification, Model};

/// Screens written to the host (the first digits'); each is a 230 KB PPM.
const SCREENS: usize = 10;
/// The clock QEMU's MPS2 boards give the CPU and so SysTick (25 MHz). QEMU models no cycles:
/// SysTick follows the host's clock, so these times say how fast the host emulated, nothing
/// about a real Cortex-M4 (the STM32F429 binary shows DWT cycles).
const SYSCLK_HZ: u32 = 25_000_000;
const SYST_RELOAD: u32 = 0x00FF_FFFF;

/// SysTick wraps so far (its counter has 24 bits: 0.67 s at 25 MHz).
static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}

/// SysTick ticks since it started (wraps included).
fn ticks() -> u64 {
    loop {
        let before = WRAPS.load(Ordering::Relaxed);
        let down = SYST::get_current();
        if WRAPS.load(Ordering::Relaxed) == before {
            return u64::from(before) * u64::from(SYST_RELOAD + 1) + u64::from(SYST_RELOAD - down);
        }
    }
}

#[entry]
fn main() -> ! {
    // `#[entry]` turns these into `&'static mut` singletons in .bss.
    static mut BUFFERS: Buffers = Buffers::new();
    static mut FRAMEBUFFER: Framebuffer = Framebuffer::new();

    let top = stack::paint();
    let base = stack::sp();
    let Some(mut core) = cortex_m::Peripherals::take() else { fail(3, "cortex_m::Peripherals::take", &"taken") };
    core.SYST.set_clock_source(SystClkSource::Core);
    core.SYST.set_reload(SYST_RELOAD);
    core.SYST.clear_current();
    core.SYST.enable_interrupt();
    core.SYST.enable_counter();

    // Borrowed, not moved out of the `Result`: moving would put a second `Model` (~3 KB) in
    // this frame (see stack-usage/README.md).
    let parsed = Model::parse(firmware_common::MODEL);
    let model = match &parsed {
        Ok(m) => m,
        Err(e) => fail(3, "Model::parse", &e),
    };
    let mut classifier = match firmware_common::classifier(model, BUFFERS) {
        Ok(c) => c,
        Err(e) => fail(3, "Classifier::new", &e),
    };
    hprintln!(
        "mps2-an386: {} stored digits, kernels '{}', arena {} bytes",
        N_DIGITS,
        classifier.kernels().name,
        firmware_common::ARENA_BYTES
    );

    let (mut mismatches, mut correct) = (0, 0);
    for (i, expected) in EXPECTED.iter().enumerate() {
        let Some(image) = digits::digit(i) else { fail(3, "stored digit", &i) };
        let t0 = ticks();
        let c = match classifier.classify_image(image) {
            Ok(c) => c,
            Err(e) => fail(3, "classify_image", &(i, e)),
        };
        let timing = Timing { ticks: ticks() - t0, hz: SYSCLK_HZ, source: "SysTick, QEMU" };
        print_answer(i, expected.label, &c, timing.ticks);
        if let Err(m) = firmware_common::check::check(&c, expected) {
            heprintln!("mps2-an386: digit {:02}: differs from the host: {}", i, m);
            mismatches += 1;
        }
        correct += usize::from(c.class == usize::from(expected.label));
        let view = View { index: Some(i), label: Some(expected.label), timing: Some(timing), ..View::new(image, &c) };
        show(i, &view, FRAMEBUFFER);
    }
    let stack_bytes = match stack::high_water(base, top) {
        Ok(b) => b,
        Err(e) => fail(4, "stack high-water mark", &e),
    };
    let statics = stack::stack_end() - stack::ram_start();
    hprintln!(
        "RESULT board=mps2-an386 digits={} mismatches={} correct={} stack={} statics={} framebuffer={} screens={}",
        N_DIGITS,
        mismatches,
        correct,
        stack_bytes + (stack::stack_start() - base),
        statics,
        core::mem::size_of::<Framebuffer>(),
        SCREENS
    );
    if mismatches > 0 {
        fail(1, "answers differ from the host's", &mismatches);
    }
    exit(0)
}

/// One line per digit, read by the end-to-end test: index, label, answer, Q15 confidence,
/// scores, top 3 (class:Q15), SysTick ticks.
// Out of line, like the screen steps: their locals would otherwise sit in `main`'s frame,
// which is on the stack at the deepest point (parsing).
#[inline(never)]
fn print_answer(i: usize, label: u8, c: &Classification<'_, '_>, ticks: u64) {
    let s = c.scores;
    let t = c.top();
    let top = |k: usize| t.get(k).map_or((usize::MAX, 0), |r| (r.class, r.confidence.q15()));
    let (t0, t1, t2) = (top(0), top(1), top(2));
    hprintln!(
        "digit {:02} label {} answer {} ({}) confidence_q15 {} scores {},{},{},{},{},{},{},{},{},{} top {}:{},{}:{},{}:{} ticks {}",
        i,
        label,
        c.class,
        c.label,
        c.confidence.q15(),
        s[0],
        s[1],
        s[2],
        s[3],
        s[4],
        s[5],
        s[6],
        s[7],
        s[8],
        s[9],
        t0.0,
        t0.1,
        t1.0,
        t1.1,
        t2.0,
        t2.1,
        ticks
    );
}

/// Draws `view` and, for the first [`SCREENS`] digits, writes it to the host.
#[inline(never)]
fn show(i: usize, view: &View<'_>, framebuffer: &mut Framebuffer) {
    // Infallible: the framebuffer is RAM.
    let Ok(()) = screen::draw(framebuffer, view);
    if i < SCREENS {
        let name = screen_name(i);
        if write_ppm(&name, framebuffer).is_err() {
            fail(5, "writing the screen to the host", &core::str::from_utf8(&name));
        }
    }
}

/// `screen-NN.ppm\0`.
fn screen_name(i: usize) -> [u8; 14] {
    let mut name = *b"screen-00.ppm\0";
    name[7] = b'0' + (i / 10 % 10) as u8;
    name[8] = b'0' + (i % 10) as u8;
    name
}

fn fail(code: u8, what: &str, detail: &dyn core::fmt::Debug) -> ! {
    heprintln!("mps2-an386: FAILED: {}: {:?}", what, detail);
    exit(code)
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    heprintln!("mps2-an386: PANIC: {}", info);
    exit(101)
}
