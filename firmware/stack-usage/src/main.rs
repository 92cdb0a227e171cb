//! Cortex-M firmware that measures runtime-mobile's stack use and checks its answers (README.md).
//!
//! Paints the free stack (end of statics up to just below the current SP) with a pattern, runs
//! one phase, then finds the deepest word no longer holding the pattern (`firmware_common::stack`).
//! Phases: `Model::parse` of the embedded model, and `Classifier::classify_image` on every stored
//! digit, whose answer (class, Q15 confidence, every score, top 3) must equal the host's bit for
//! bit. Reports over semihosting; the exit status says how it went (see [`Exit`]).
#![no_std]
#![no_main]

use core::panic::PanicInfo;

// Links the critical-section implementation semihosting printing needs.
use cortex_m as _;
use cortex_m_rt::entry;
use cortex_m_semihosting::{heprintln, hprintln};
use firmware_common::check::{Mismatch, check};
use firmware_common::digits::{self, EXPECTED};
use firmware_common::stack::{self, high_water, paint, sp};
use firmware_common::{ARENA_BYTES, Buffers, MODEL, N_DIGITS};
use runtime_mobile::{Classifier, Error, Model};

mod board {
    include!(concat!(env!("OUT_DIR"), "/board.rs"));
}
use board::{BOARD, TARGET};

/// Stack budgets (bytes below the caller): regression guards just above the measured figures
/// (README.md). Parse: 1,940 bytes at most (v6m release). Classification: 1,544 at most (v6m
/// release); it was 1,280 for `Model::run` alone (1,112 measured), and the classifier's path
/// adds about 440 bytes on both targets: `classify_image` (inlined into this harness's loop,
/// a 380-byte frame holding the `Classification` and the check) above `Session::run`.
const PARSE_STACK_BUDGET: usize = 2048;
/// On thumbv7em the DSP table's conv path (`matvec4`, 4 pixels of a pool window per weight
/// word) holds the 4 pixels' sign-extended activations on the stack, 512 bytes where `matvec`
/// held 256: 2,048 bytes measured (3 December), hence its own budget.
#[cfg(not(dsp_kernels))]
const RUN_STACK_BUDGET: usize = 1664;
#[cfg(dsp_kernels)]
const RUN_STACK_BUDGET: usize = 2112;

/// Exit statuses (semihosting SYS_EXIT_EXTENDED reaches QEMU's exit code).
#[derive(Clone, Copy)]
enum Exit {
    Ok = 0,
    /// Some answer differs from the host's.
    Mismatch = 1,
    /// A phase used more than its budget ([`PARSE_STACK_BUDGET`], [`RUN_STACK_BUDGET`]).
    OverBudget = 2,
    /// The engine returned an error.
    Engine = 3,
    /// The stack reached the statics, or a phase stayed within the unpainted band.
    Measurement = 4,
    Panic = 101,
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

/// Classifies every stored digit and checks each answer against the host's; the first engine
/// error stops it.
#[inline(never)]
fn classify_phase(
    classifier: &mut Classifier<'_, '_>,
    outcomes: &mut [Option<Mismatch>; N_DIGITS],
) -> Result<(), (usize, Error)> {
    for (i, (expected, outcome)) in EXPECTED.iter().zip(outcomes.iter_mut()).enumerate() {
        let image = digits::digit(i).ok_or((i, Error::Internal("stored digit")))?;
        let c = classifier.classify_image(image).map_err(|e| (i, e))?;
        *outcome = check(&c, expected).err();
    }
    Ok(())
}

fn exit(code: Exit) -> ! {
    firmware_common::semihosting::exit(code as u8)
}

fn fail(code: Exit, what: &str, detail: &dyn core::fmt::Debug) -> ! {
    heprintln!("stack-usage: FAILED: {}: {:?}", what, detail);
    exit(code)
}

#[entry]
fn main() -> ! {
    // `#[entry]` turns these into `&'static mut` singletons in .bss: the arena, the scratch and
    // the results are statics, so the stack figures are the engine's own use.
    static mut BUFFERS: Buffers = Buffers::new();
    static mut OUTCOMES: [Option<Mismatch>; N_DIGITS] = [None; N_DIGITS];

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
    // The classifier (session, input quantizer, scratch borrows) lives in this frame, as in an
    // application's main loop; building it is not a per-image cost.
    let mut classifier =
        firmware_common::classifier(model, BUFFERS).unwrap_or_else(|e| fail(Exit::Engine, "Classifier::new", &e));

    // Phase 2: every digit, one painting (the maximum over all of them).
    let top = paint();
    let base_run = sp();
    let ran = classify_phase(&mut classifier, OUTCOMES);
    let run_stack = high_water(base_run, top);
    if let Err((i, e)) = ran {
        fail(Exit::Engine, "Classifier::classify_image", &(i, e));
    }
    let run_stack = run_stack.unwrap_or_else(|e| fail(Exit::Measurement, "classification", &e));

    let mut mismatches = 0;
    for (i, outcome) in OUTCOMES.iter().enumerate() {
        if let Some(m) = outcome {
            heprintln!("stack-usage: digit {}: differs from the host: {}", i, m);
            mismatches += 1;
        }
    }
    let correct = EXPECTED.iter().filter(|e| e.class == e.label).count();

    // Deepest point of either phase, counted from the top of RAM: the reset handler's, main's
    // (this harness's: it holds the `Result<Model, _>` and the classifier) and the phase's
    // frames together.
    let peak = stack::stack_start() - (base_parse - parse_stack).min(base_run - run_stack);
    let statics = stack::stack_end() - stack::ram_start();
    hprintln!("stack-usage: {} on QEMU {}, kernels '{}'", TARGET, BOARD, classifier.kernels().name);
    hprintln!(
        "  model file {} bytes (flash); arena {} bytes and scratch {} bytes (static); Result<Model, Error> {} bytes, Classifier {} bytes (caller's frame)",
        MODEL.len(),
        ARENA_BYTES,
        runtime_mobile::classifier::IMAGE_SCRATCH_BYTES,
        core::mem::size_of::<Result<Model<'_>, Error>>(),
        core::mem::size_of::<Classifier<'_, '_>>()
    );
    hprintln!(
        "  stack below the caller: parse {} bytes, classification {} bytes (budgets {} and {}; probe {} of {})",
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
        stack::stack_start() - stack::ram_start()
    );
    hprintln!(
        "  digits {}: {} bit-exact with the host (class, Q15 confidence, scores, top 3), {} classified correctly",
        N_DIGITS,
        N_DIGITS - mismatches,
        correct
    );
    // One line for scripts/ci-firmware.
    hprintln!(
        "RESULT target={} board={} arena={} parse={} inference={} ram={} statics={} peak={} images={} mismatches={}",
        TARGET,
        BOARD,
        ARENA_BYTES,
        parse_stack,
        run_stack,
        statics + peak,
        statics,
        peak,
        N_DIGITS,
        mismatches
    );
    if mismatches > 0 {
        fail(Exit::Mismatch, "answers differ from the host's", &mismatches);
    }
    if parse_stack > PARSE_STACK_BUDGET || run_stack > RUN_STACK_BUDGET {
        fail(Exit::OverBudget, "stack budget exceeded (parse, classification)", &(parse_stack, run_stack));
    }
    exit(Exit::Ok)
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    heprintln!("stack-usage: PANIC: {}", info);
    exit(Exit::Panic)
}
