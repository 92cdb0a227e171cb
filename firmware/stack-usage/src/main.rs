//! Cortex-M firmware that measures runtime-mobile's stack use and checks its answers (README.md).
//!
//! Paints the free stack (end of statics up to just below the current SP) with a pattern, runs
//! one phase, then finds the deepest word no longer holding the pattern. Phases: `Model::parse`
//! of the embedded model, and `Model::run` on every embedded MNIST test image, whose scores must
//! equal the host's (build.rs) bit for bit. Reports over semihosting; the exit status says how it
//! went (see [`Exit`]).
#![no_std]
#![no_main]

use core::panic::PanicInfo;

// Links the critical-section implementation semihosting printing needs.
use cortex_m as _;
use cortex_m_rt::entry;
use cortex_m_semihosting::{heprintln, hprintln};
use runtime_mobile::{Error, Model, kernels};

mod generated {
    include!(concat!(env!("OUT_DIR"), "/consts.rs"));
}
use generated::{ARENA_BYTES, BOARD, INPUT_LEN, N_CLASSES, N_IMAGES, TARGET};

/// Stack budgets (bytes below the caller): regression guards just above the measured figures
/// (README.md). Parse: 1,908 bytes at most (v6m release). Inference: 1,112 at most, but it moved
/// between 860 and 1,228 while the kernels were reworked, so its guard sits above that range.
const PARSE_STACK_BUDGET: usize = 2048;
const RUN_STACK_BUDGET: usize = 1280;

static MODEL: &[u8] =
    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/mnist.int8.safetensors"));
/// The host quantized these (the model's own input table); int8 bytes, image after image.
static INPUTS: [i8; N_IMAGES * INPUT_LEN] = to_i8(include_bytes!(concat!(env!("OUT_DIR"), "/inputs.bin")));
/// The host's scores (scalar kernels), `N_CLASSES` per image.
static HOST_SCORES: [i8; N_IMAGES * N_CLASSES] =
    to_i8(include_bytes!(concat!(env!("OUT_DIR"), "/scores.bin")));
/// MNIST's true labels, for the report only.
static LABELS: &[u8; N_IMAGES] = include_bytes!(concat!(env!("OUT_DIR"), "/labels.bin"));

const fn to_i8<const N: usize>(b: &[u8; N]) -> [i8; N] {
    let mut out = [0i8; N];
    let mut i = 0;
    while i < N {
        out[i] = b[i] as i8;
        i += 1;
    }
    out
}

/// Exit statuses (semihosting SYS_EXIT_EXTENDED reaches QEMU's exit code).
#[derive(Clone, Copy)]
enum Exit {
    Ok = 0,
    /// Some score differs from the host's.
    Mismatch = 1,
    /// A phase used more than its budget ([`PARSE_STACK_BUDGET`], [`RUN_STACK_BUDGET`]).
    OverBudget = 2,
    /// The engine returned an error.
    Engine = 3,
    /// The stack reached the statics, or a phase stayed within the unpainted band.
    Measurement = 4,
    Panic = 101,
}

/// Written over the free stack; a word that no longer holds it was used.
const PAINT: u32 = 0xC5AC_5EED;
/// Left unpainted below the painter's own SP: room for its frame's spills and calls.
const GAP: usize = 64;

unsafe extern "C" {
    /// End of the statics (.data, .bss, .uninit) = lowest stack address (cortex-m-rt's link.x).
    static _stack_end: u32;
    /// Top of RAM = initial SP.
    static _stack_start: u32;
    /// Start of RAM (statics begin here).
    static _ram_start: u32;
}

fn stack_end() -> usize {
    &raw const _stack_end as usize
}

fn stack_start() -> usize {
    &raw const _stack_start as usize
}

fn ram_start() -> usize {
    &raw const _ram_start as usize
}

fn sp() -> usize {
    cortex_m::register::msp::read() as usize
}

/// Paints `[stack_end, SP - GAP)`; returns the painted range's top.
#[inline(never)]
fn paint() -> usize {
    let hi = (sp() - GAP) & !3;
    let mut a = stack_end();
    while a < hi {
        // SAFETY: `a` is word-aligned RAM between the end of the statics and below the live stack
        // (this frame and its callers sit above `hi`): no Rust object lives there, and with no
        // interrupts enabled nothing else touches it while we write.
        unsafe { core::ptr::write_volatile(a as *mut u32, PAINT) };
        a += 4;
    }
    hi
}

/// Deepest stack use since [`paint`], in bytes below `base` (the caller's SP at the phase call).
#[inline(never)]
fn high_water(base: usize, painted_top: usize) -> Result<usize, &'static str> {
    let lo = stack_end();
    let mut a = lo;
    while a < painted_top {
        // SAFETY: the same free, word-aligned RAM `paint` wrote; reading it races with nothing.
        if unsafe { core::ptr::read_volatile(a as *const u32) } != PAINT {
            if a == lo {
                return Err("the stack reached the end of the statics (overflow)");
            }
            return Ok(base - a);
        }
        a += 4;
    }
    Err("the phase stayed within the unpainted band below the painter: no measurement")
}

/// Bytes [`probe`] writes on the stack: the measurement's own check.
const PROBE_BYTES: usize = 1024;

/// Writes a `PROBE_BYTES` local array, so a correct measurement reports at least that much and at
/// most that plus this frame's small overhead.
#[inline(never)]
fn probe() {
    let mut buf = [0u8; PROBE_BYTES];
    core::hint::black_box(&mut buf);
}

/// `Model::parse` as an application calls it: the `Result<Model, _>` lands in the caller's frame
/// (reported separately), what is measured is parsing's own use below it.
#[inline(never)]
fn parse_phase(file: &'static [u8]) -> Result<Model<'static>, Error> {
    Model::parse(file)
}

#[inline(never)]
fn run_phase(model: &Model<'_>, input: &[i8], arena: &mut [u8], out: &mut [i8]) -> Result<usize, Error> {
    let p = model.run(input, arena)?;
    out.copy_from_slice(p.scores);
    Ok(p.class)
}

fn exit(code: Exit) -> ! {
    const SYS_EXIT_EXTENDED: usize = 0x20;
    const ADP_STOPPED_APPLICATION_EXIT: usize = 0x20026;
    let block = [ADP_STOPPED_APPLICATION_EXIT, code as usize];
    // SAFETY: SYS_EXIT_EXTENDED takes a pointer to a two-word block (reason, exit code).
    unsafe { cortex_m_semihosting::syscall(SYS_EXIT_EXTENDED, &block) };
    loop {
        cortex_m::asm::bkpt();
    }
}

fn fail(code: Exit, what: &str, detail: &dyn core::fmt::Debug) -> ! {
    heprintln!("stack-usage: FAILED: {}: {:?}", what, detail);
    exit(code)
}

#[entry]
fn main() -> ! {
    // `#[entry]` turns these into `&'static mut` singletons in .bss: the arena and the results
    // are statics, so the stack figures are the engine's own use.
    static mut ARENA: [u8; ARENA_BYTES] = [0; ARENA_BYTES];
    static mut SCORES: [i8; N_IMAGES * N_CLASSES] = [0; N_IMAGES * N_CLASSES];
    static mut CLASSES: [usize; N_IMAGES] = [0; N_IMAGES];

    // Check the method on a known frame first: a painting or scan that is off fails here.
    let top = paint();
    let base_probe = sp();
    probe();
    let probe_stack = high_water(base_probe, top).unwrap_or_else(|e| fail(Exit::Measurement, "probe", &e));
    if !(PROBE_BYTES..=PROBE_BYTES + 64).contains(&probe_stack) {
        fail(Exit::Measurement, "probe of a 1024-byte frame measured", &probe_stack);
    }

    // Phase 1: parse. Nothing may run between painting and the phase call.
    let top = paint();
    let base_parse = sp();
    let parsed = parse_phase(MODEL);
    let parse_stack = high_water(base_parse, top);
    // Borrowed, not moved out: moving would put a second `Model` (~3 KB) in this frame.
    let model = match &parsed {
        Ok(m) => m,
        Err(e) => fail(Exit::Engine, "Model::parse", e),
    };
    let parse_stack = parse_stack.unwrap_or_else(|e| fail(Exit::Measurement, "parse", &e));
    if model.arena_bytes() != ARENA_BYTES {
        fail(Exit::Engine, "arena size differs from the host's plan", &(model.arena_bytes(), ARENA_BYTES));
    }

    // Phase 2: every image, one painting (the maximum over all runs).
    let top = paint();
    let base_run = sp();
    let mut error = None;
    for i in 0..N_IMAGES {
        let input = &INPUTS[i * INPUT_LEN..(i + 1) * INPUT_LEN];
        let out = &mut SCORES[i * N_CLASSES..(i + 1) * N_CLASSES];
        match run_phase(model, input, &mut ARENA[..], out) {
            Ok(c) => CLASSES[i] = c,
            Err(e) => {
                error = Some((i, e));
                break;
            }
        }
    }
    let run_stack = high_water(base_run, top);
    if let Some((i, e)) = error {
        fail(Exit::Engine, "Model::run", &(i, e));
    }
    let run_stack = run_stack.unwrap_or_else(|e| fail(Exit::Measurement, "inference", &e));

    let mut mismatches = 0;
    for i in 0..N_IMAGES {
        let range = i * N_CLASSES..(i + 1) * N_CLASSES;
        if SCORES[range.clone()] != HOST_SCORES[range.clone()] {
            heprintln!(
                "stack-usage: image {}: target scores {:?} != host {:?}",
                i,
                &SCORES[range.clone()],
                &HOST_SCORES[range]
            );
            mismatches += 1;
        }
    }
    let correct = (0..N_IMAGES).filter(|&i| CLASSES[i] == LABELS[i] as usize).count();

    // Deepest point of either phase, counted from the top of RAM: the reset handler's, main's
    // (this harness's: it holds the `Result<Model, _>`) and the phase's frames together.
    let peak = stack_start() - (base_parse - parse_stack).min(base_run - run_stack);
    let statics = stack_end() - ram_start();
    hprintln!("stack-usage: {} on QEMU {}, kernels '{}'", TARGET, BOARD, kernels::best().name);
    hprintln!(
        "  model file {} bytes (flash); arena {} bytes (static); Result<Model, Error> {} bytes (caller's frame)",
        MODEL.len(),
        ARENA_BYTES,
        core::mem::size_of::<Result<Model<'_>, Error>>()
    );
    hprintln!(
        "  stack below the caller: parse {} bytes, inference {} bytes (budgets {} and {}; probe {} of {})",
        parse_stack,
        run_stack,
        PARSE_STACK_BUDGET,
        RUN_STACK_BUDGET,
        probe_stack,
        PROBE_BYTES
    );
    hprintln!(
        "  RAM: statics {} bytes + deepest stack from the top {} bytes = {} bytes ({} bytes on this board)",
        statics,
        peak,
        statics + peak,
        stack_start() - ram_start()
    );
    hprintln!(
        "  images {}: {} bit-exact with the host, {} classified correctly",
        N_IMAGES,
        N_IMAGES - mismatches,
        correct
    );
    // One line for scripts/stack-usage.
    hprintln!(
        "RESULT target={} board={} arena={} parse={} inference={} ram={} images={} mismatches={}",
        TARGET,
        BOARD,
        ARENA_BYTES,
        parse_stack,
        run_stack,
        statics + peak,
        N_IMAGES,
        mismatches
    );
    if mismatches > 0 {
        fail(Exit::Mismatch, "scores differ from the host's", &mismatches);
    }
    if parse_stack > PARSE_STACK_BUDGET || run_stack > RUN_STACK_BUDGET {
        fail(Exit::OverBudget, "stack budget exceeded (parse, inference)", &(parse_stack, run_stack));
    }
    exit(Exit::Ok)
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    heprintln!("stack-usage: PANIC: {}", info);
    exit(Exit::Panic)
}
