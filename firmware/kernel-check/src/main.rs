//! On-target check of runtime-mobile's Cortex-M4 DSP kernel table (README.md):
//! 1. every kernel of `kernels::armv7em_dsp()` against the scalar reference on random and
//!    edge-case inputs ([`kernel_cases`]);
//! 2. the committed MNIST digits through `Classifier` with the scalar table and with the DSP
//!    table: every score, class, confidence and top-3 entry must equal the host's (build.rs).
//!
//! Each classification is bracketed by calls of [`insn_count_mark`], where the TCG plugin in
//! `../tools/insn-count` reads its instruction counter. Reports over semihosting; the exit
//! status says how it went ([`Exit`]).
#![no_std]
#![no_main]

mod kernel_cases;

use core::panic::PanicInfo;

// Links the critical-section implementation semihosting printing needs.
use cortex_m as _;
use cortex_m_rt::entry;
use cortex_m_semihosting::{heprintln, hprintln};
use runtime_mobile::classifier::IMAGE_SCRATCH_BYTES;
use runtime_mobile::kernels::{self, Kernels, scalar};
use runtime_mobile::{Classification, Classifier, Model};

mod generated {
    include!(concat!(env!("OUT_DIR"), "/consts.rs"));
}
use generated::{ARENA_BYTES, N_CLASSES, N_DIGITS, RECORD};

const PIXELS: usize = 28 * 28;

static MODEL: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/mnist.int8.safetensors"));
/// Raw pixels (0 = background), digit after digit.
static DIGITS: &[u8; N_DIGITS * PIXELS] = include_bytes!(concat!(env!("OUT_DIR"), "/digits.bin"));
/// MNIST's true labels, for the report only.
static LABELS: &[u8; N_DIGITS] = include_bytes!(concat!(env!("OUT_DIR"), "/labels.bin"));
/// The host's answers (build.rs): scores, class, confidence Q15 (LE), top 3 as (class, Q15).
static EXPECTED: &[u8; N_DIGITS * RECORD] = include_bytes!(concat!(env!("OUT_DIR"), "/expected.bin"));

/// Exit statuses (semihosting SYS_EXIT_EXTENDED reaches QEMU's exit code).
#[derive(Clone, Copy)]
enum Exit {
    Ok = 0,
    /// A DSP kernel differs from the scalar reference.
    Kernel = 1,
    /// A digit's answer on the target differs from the host's.
    Answer = 2,
    /// runtime-mobile returned an error.
    Engine = 3,
    Panic = 101,
}

/// Where `../tools/insn-count` samples its counter (by this symbol's address): called right
/// before and right after each classification. The empty `asm!` is a side effect, so the calls
/// are kept.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn insn_count_mark() {
    // SAFETY: an empty instruction sequence; touches nothing.
    unsafe { core::arch::asm!("", options(nomem, nostack, preserves_flags)) };
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
    heprintln!("kernel-check: FAILED: {}: {:?}", what, detail);
    exit(code)
}

/// Whether `a` is exactly the host's record `want`.
fn same_answer(a: &Classification<'_, '_>, want: &[u8]) -> bool {
    let q15 = |at: usize| want.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let scores_ok = a.scores.len() == N_CLASSES && a.scores.iter().zip(want).all(|(&s, &w)| s as u8 == w);
    let top_ok = a.top().iter().enumerate().all(|(i, r)| {
        let at = N_CLASSES + 3 + 3 * i;
        want.get(at) == Some(&(r.class as u8)) && q15(at + 1) == Some(r.confidence.q15())
    });
    scores_ok
        && want.get(N_CLASSES) == Some(&(a.class as u8))
        && q15(N_CLASSES + 1) == Some(a.confidence.q15())
        && top_ok
        && RECORD == N_CLASSES + 3 + 3 * a.top().len()
}

/// Classifies every digit with `table`, each call bracketed by [`insn_count_mark`]; returns
/// (answers differing from the host's, correct labels).
fn classify_all(model: &Model<'_>, table: &Kernels, arena: &mut [u8], scratch: &mut [u8]) -> (usize, usize) {
    let mut c = Classifier::new(model, table, arena, scratch).unwrap_or_else(|e| fail(Exit::Engine, "Classifier::new", &e));
    let (mut mismatches, mut correct) = (0, 0);
    for (i, (img, want)) in DIGITS.chunks_exact(PIXELS).zip(EXPECTED.chunks_exact(RECORD)).enumerate() {
        let Ok(img) = <&[u8; PIXELS]>::try_from(img) else { fail(Exit::Engine, "digit size", &i) };
        insn_count_mark();
        let a = c.classify_image(img);
        insn_count_mark();
        let a = a.unwrap_or_else(|e| fail(Exit::Engine, "classify_image", &(i, e)));
        if !same_answer(&a, want) {
            heprintln!(
                "kernel-check: '{}' digit {}: class {} scores {:?} confidence {} differ from the host's {:?}",
                table.name,
                i,
                a.class,
                a.scores,
                a.confidence.q15(),
                want
            );
            mismatches += 1;
        }
        correct += usize::from(LABELS.get(i) == Some(&(a.class as u8)));
    }
    (mismatches, correct)
}

#[entry]
fn main() -> ! {
    static mut ARENA: [u8; ARENA_BYTES] = [0; ARENA_BYTES];
    static mut SCRATCH: [u8; IMAGE_SCRATCH_BYTES] = [0; IMAGE_SCRATCH_BYTES];

    static mut BUFFERS: kernel_cases::Buffers = kernel_cases::Buffers::ZERO;

    let dsp = kernels::armv7em_dsp();
    let cases = kernel_cases::run(dsp, BUFFERS);
    hprintln!(
        "kernel-check: '{}' against '{}': {} kernel cases, {} differ",
        dsp.name,
        scalar::KERNELS.name,
        cases.total,
        cases.failed
    );

    let model = Model::parse(MODEL).unwrap_or_else(|e| fail(Exit::Engine, "Model::parse", &e));
    let mut report = [(0, 0); 2];
    for (r, table) in report.iter_mut().zip([&scalar::KERNELS, dsp]) {
        *r = classify_all(&model, table, &mut ARENA[..], &mut SCRATCH[..]);
        hprintln!(
            "kernel-check: '{}': {} digits, {} answers differ from the host's, {} classified correctly",
            table.name,
            N_DIGITS,
            r.0,
            r.1
        );
    }
    // One line for scripts/ci-dsp.
    hprintln!(
        "RESULT kernel_cases={} kernel_mismatches={} digits={} scalar_mismatches={} dsp_mismatches={} arena={}",
        cases.total,
        cases.failed,
        N_DIGITS,
        report[0].0,
        report[1].0,
        ARENA_BYTES
    );
    if cases.failed > 0 || cases.total == 0 {
        fail(Exit::Kernel, "DSP kernels differ from the scalar reference (cases)", &cases.failed);
    }
    if report[0].0 + report[1].0 > 0 {
        fail(Exit::Answer, "answers differ from the host's (scalar, dsp)", &(report[0].0, report[1].0));
    }
    exit(Exit::Ok)
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    heprintln!("kernel-check: PANIC: {}", info);
    exit(Exit::Panic)
}
