//! The exported functions (see the crate docs for the call order). wasm32 only.
//!
//! State is in statics: the module is single-threaded (wasm32-unknown-unknown without the
//! `atomics` feature) and no export calls another, so each export's `&mut` to a static is the
//! only one alive while it runs, except the borrows the loaded classifier holds, which only
//! `model_buffer` ends (it drops the classifier before handing out the model's bytes).

use core::arch::wasm32::{memory_grow, memory_size};
use core::cell::UnsafeCell;
use core::ptr;

use runtime_mobile::classifier::FRAME_SCRATCH_BYTES;
use runtime_mobile::preprocess::{Frame, OUT_PIXELS, Options, Roi};
use runtime_mobile::{Classification, Classifier, Error, FrameOutcome, Model};

use crate::{Answer, MAX_CLASSES, kernel_table, no_digit_code, pixel_format};

/// Room for a model file (the committed ones are 123 KB).
const MODEL_CAP: usize = 256 * 1024;
/// Room for the session (packed weights plus working memory; the committed models need less).
const ARENA_CAP: usize = 192 * 1024;
const PAGE: usize = 65_536;

/// A static the single-threaded module mutates.
struct Global<T>(UnsafeCell<T>);

// SAFETY: wasm32-unknown-unknown without `atomics` runs one thread, so no two threads ever see
// a `Global`.
unsafe impl<T> Sync for Global<T> {}

impl<T> Global<T> {
    const fn new(v: T) -> Self {
        Global(UnsafeCell::new(v))
    }

    /// # Safety
    /// No other reference to this static is alive (see the module docs).
    #[allow(clippy::mut_from_ref)]
    unsafe fn get(&'static self) -> &'static mut T {
        // SAFETY: the caller guarantees exclusivity.
        unsafe { &mut *self.0.get() }
    }
}

static MODEL_BYTES: Global<[u8; MODEL_CAP]> = Global::new([0; MODEL_CAP]);
static ARENA: Global<[u8; ARENA_CAP]> = Global::new([0; ARENA_CAP]);
static SCRATCH: Global<[u8; FRAME_SCRATCH_BYTES]> = Global::new([0; FRAME_SCRATCH_BYTES]);
static IMAGE: Global<[u8; OUT_PIXELS]> = Global::new([0; OUT_PIXELS]);
static MODEL: Global<Option<Model<'static>>> = Global::new(None);
static CLASSIFIER: Global<Option<Classifier<'static, 'static>>> = Global::new(None);
static ANSWER: Global<Answer> = Global::new(Answer {
    status: 0,
    no_digit: 0,
    class: 0,
    confidence_q15: 0,
    n_top: 0,
    top_class: [0; 3],
    top_q15: [0; 3],
    inverted: 0,
    bbox: [0; 4],
    n_scores: 0,
    scores: [0; MAX_CLASSES],
});
/// The picture buffer: `[start, start + cap)` of linear memory grown for it, past everything
/// the module's statics and stack use.
static FRAME: Global<(usize, usize)> = Global::new((0, 0));

/// Records `e`'s code in the answer and returns its status. Only the code: formatting the
/// error's text would cost 7 KB of the module (web/README.md, Sizes), for errors a visitor
/// cannot cause (the page checks its input itself).
fn fail(e: Error) -> i32 {
    // SAFETY: exports call this last, holding no reference to ANSWER.
    let answer = unsafe { ANSWER.get() };
    *answer = Answer { status: -(e.code() as i32), ..Answer::default() };
    answer.status
}

/// Drops the loaded model and returns where to copy a model file of `len` bytes (null if it
/// does not fit).
#[unsafe(no_mangle)]
pub extern "C" fn model_buffer(len: usize) -> *mut u8 {
    // SAFETY: the classifier borrows the model, which borrows the bytes: dropped in that order
    // before the bytes are handed out.
    unsafe {
        *CLASSIFIER.get() = None;
        *MODEL.get() = None;
    }
    if len > MODEL_CAP {
        return ptr::null_mut();
    }
    // SAFETY: nothing borrows the bytes any more (above).
    unsafe { MODEL_BYTES.get().as_mut_ptr() }
}

/// Parses the `len` bytes copied to [`model_buffer`] and prepares the classifier.
#[unsafe(no_mangle)]
pub extern "C" fn load_model(len: usize) -> i32 {
    match load(len) {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}

fn load(len: usize) -> Result<(), Error> {
    // SAFETY: `model_buffer` ran before (the page's contract) and dropped every borrow of these
    // statics; the references taken here live on in MODEL and CLASSIFIER until the next one.
    unsafe {
        *CLASSIFIER.get() = None;
        *MODEL.get() = None;
        let bytes = MODEL_BYTES.get().get(..len).ok_or(Error::Truncated { needed: len as u64, got: MODEL_CAP })?;
        let model: &'static Model<'static> = MODEL.get().insert(Model::parse(bytes)?);
        // The session packs the weights when the arena has room for them (it does for the
        // committed models), else runs unpacked in `Model::arena_bytes`.
        *CLASSIFIER.get() = Some(Classifier::new(model, kernel_table(), ARENA.get(), SCRATCH.get())?);
    }
    Ok(())
}

/// Returns where to copy `len` bytes of pixels (null if memory cannot grow that far).
#[unsafe(no_mangle)]
pub extern "C" fn frame_buffer(len: usize) -> *mut u8 {
    // SAFETY: no other reference to FRAME is alive.
    let frame = unsafe { FRAME.get() };
    if frame.0 == 0 {
        frame.0 = memory_size(0) * PAGE;
    }
    if len > frame.1 {
        let need = (frame.0 + len).div_ceil(PAGE).saturating_sub(memory_size(0));
        if memory_grow(0, need) == usize::MAX {
            return ptr::null_mut();
        }
        frame.1 = memory_size(0) * PAGE - frame.0;
    }
    frame.0 as *mut u8
}

/// Classifies the `width x height` picture copied to [`frame_buffer`] (format 0 gray, 1 RGBA),
/// in its centred square of `viewfinder_percent`% of the shorter side (0: the whole picture).
#[unsafe(no_mangle)]
pub extern "C" fn classify_frame(width: usize, height: usize, format: u32, viewfinder_percent: usize) -> i32 {
    let Some(format) = pixel_format(format) else { return fail(Error::Internal("web: unknown pixel format")) };
    // SAFETY: FRAME's region is linear memory this module grew for it and lends to nothing else.
    let pixels = unsafe {
        let &mut (start, cap) = FRAME.get();
        if start == 0 { &[][..] } else { core::slice::from_raw_parts(start as *const u8, cap) }
    };
    let roi = (viewfinder_percent > 0).then(|| Roi::centre_square_percent(width, height, viewfinder_percent));
    let opts = Options { roi, ..Options::DEFAULT };
    let run = |c: &mut Classifier<'static, 'static>| -> Result<i32, Error> {
        let row = width.checked_mul(format.bytes_per_pixel()).ok_or(Error::FrameTooLarge { width, height })?;
        let frame = Frame::new(pixels, format, width, height, row)?;
        Ok(match c.classify_frame(&frame, &opts)? {
            FrameOutcome::Digit(d) => record(&d),
            FrameOutcome::NoDigit(why) => {
                // SAFETY: no other reference to ANSWER is alive.
                let answer = unsafe { ANSWER.get() };
                *answer = Answer { status: 1, no_digit: no_digit_code(why), ..Answer::default() };
                1
            }
        })
    };
    with_classifier(run)
}

/// Where to copy a 28x28 MNIST-style image (0 background, 255 ink) for [`classify_image`].
#[unsafe(no_mangle)]
pub extern "C" fn image_buffer() -> *mut u8 {
    // SAFETY: no other reference to IMAGE is alive.
    unsafe { IMAGE.get().as_mut_ptr() }
}

/// Classifies the image copied to [`image_buffer`].
#[unsafe(no_mangle)]
pub extern "C" fn classify_image() -> i32 {
    // SAFETY: no other reference to IMAGE is alive.
    let image = unsafe { IMAGE.get() };
    with_classifier(|c| Ok(record(&c.classify_image(image)?)))
}

fn with_classifier(run: impl FnOnce(&mut Classifier<'static, 'static>) -> Result<i32, Error>) -> i32 {
    // SAFETY: no other reference to CLASSIFIER is alive.
    let Some(c) = (unsafe { CLASSIFIER.get() }) else { return fail(Error::Internal("web: no model loaded")) };
    match run(c) {
        Ok(status) => status,
        Err(e) => fail(e),
    }
}

fn record(d: &Classification<'_, '_>) -> i32 {
    // SAFETY: no other reference to ANSWER is alive.
    let answer = unsafe { ANSWER.get() };
    *answer = Answer { class: d.class as i32, confidence_q15: d.confidence.q15() as i32, ..Answer::default() };
    for (i, r) in d.top().iter().enumerate().take(3) {
        answer.top_class[i] = r.class as i32;
        answer.top_q15[i] = r.confidence.q15() as i32;
        answer.n_top = i as i32 + 1;
    }
    for (slot, &s) in answer.scores.iter_mut().zip(d.scores) {
        *slot = s as i32;
        answer.n_scores += 1;
    }
    if let Some(info) = d.preprocess {
        answer.inverted = info.inverted as i32;
        answer.bbox = [info.bbox.x as i32, info.bbox.y as i32, info.bbox.width as i32, info.bbox.height as i32];
    }
    0
}

/// The answer block ([`Answer`]) of the last call.
#[unsafe(no_mangle)]
pub extern "C" fn result_ptr() -> *const Answer {
    ANSWER.0.get()
}

/// The 28x28 image the model saw last (null before a model is loaded).
#[unsafe(no_mangle)]
pub extern "C" fn input_ptr() -> *const u8 {
    // SAFETY: no other reference to CLASSIFIER is alive.
    unsafe { CLASSIFIER.get() }.as_ref().map_or(ptr::null(), |c| c.last_image().as_ptr())
}

fn model() -> Option<&'static Model<'static>> {
    // SAFETY: shared access only; no export mutates MODEL while this reference is used.
    unsafe { MODEL.get() }.as_ref()
}

#[unsafe(no_mangle)]
pub extern "C" fn num_classes() -> usize {
    model().map_or(0, |m| m.num_classes())
}

/// Class `i`'s label (UTF-8, `label_len(i)` bytes, in the model file).
#[unsafe(no_mangle)]
pub extern "C" fn label_ptr(i: usize) -> *const u8 {
    model().and_then(|m| m.label(i)).map_or(ptr::null(), str::as_ptr)
}

#[unsafe(no_mangle)]
pub extern "C" fn label_len(i: usize) -> usize {
    model().and_then(|m| m.label(i)).map_or(0, str::len)
}

/// The loaded model's `dataset` metadata (UTF-8, `dataset_len()` bytes).
#[unsafe(no_mangle)]
pub extern "C" fn dataset_ptr() -> *const u8 {
    model().and_then(|m| m.dataset()).map_or(ptr::null(), str::as_ptr)
}

#[unsafe(no_mangle)]
pub extern "C" fn dataset_len() -> usize {
    model().and_then(|m| m.dataset()).map_or(0, str::len)
}

/// 1 when the loaded classifier runs the packed conv path (the arena had room for it), else 0.
#[unsafe(no_mangle)]
pub extern "C" fn is_packed() -> i32 {
    // SAFETY: no other reference to CLASSIFIER is alive.
    unsafe { CLASSIFIER.get() }.as_ref().is_some_and(|c| c.is_packed()) as i32
}

/// The kernel table's name (UTF-8, `kernels_len()` bytes).
#[unsafe(no_mangle)]
pub extern "C" fn kernels_ptr() -> *const u8 {
    kernel_table().name.as_ptr()
}

#[unsafe(no_mangle)]
pub extern "C" fn kernels_len() -> usize {
    kernel_table().name.len()
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}
