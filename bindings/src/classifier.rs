//! [`Engine`]: owns what `runtime_mobile::Classifier` borrows (model bytes, parsed model, arena,
//! scratch) and serialises calls with a `Mutex`. The core's classifier is built once (its
//! session packs the weights), so a call costs what the core's call costs plus a lock and two
//! clock reads, and allocates nothing.

use std::ptr::NonNull;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use runtime_mobile::classifier::{Classification, FRAME_SCRATCH_BYTES};
use runtime_mobile::preprocess::{Frame, OUT_PIXELS, Options, PixelFormat, Roi, Rotation};
use runtime_mobile::{Classifier, FrameOutcome, Model, kernels};

use crate::error::Failure;

/// The models shipped inside the library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bundled {
    Mnist,
    FashionMnist,
}

impl Bundled {
    pub fn bytes(self) -> &'static [u8] {
        match self {
            Bundled::Mnist => include_bytes!("../../models/mnist.int8.safetensors"),
            Bundled::FashionMnist => include_bytes!("../../models/fashion-mnist.int8.safetensors"),
        }
    }
}

/// Wall time of one call's two phases, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timing {
    /// Finding the digit in a frame (crop, rotation, lighting, centring); 0 for a 28x28 image,
    /// which needs none.
    pub preprocess_micros: u64,
    /// The rest: quantizing the 28x28 input, the network, the label, confidence and top 3.
    pub inference_micros: u64,
}

/// What a classify call hands to its closure: the core's answer, borrowed for the call only.
#[derive(Debug)]
pub struct Answered<'x> {
    pub outcome: FrameOutcome<'x, 'x>,
    pub timing: Timing,
}

/// A frame as a boundary receives it (all checks are the core's, except the rotation's).
#[derive(Debug, Clone, Copy)]
pub struct FrameArgs<'b> {
    pub data: &'b [u8],
    pub format: PixelFormat,
    pub width: usize,
    pub height: usize,
    pub row_stride: usize,
    pub rotation_degrees: i32,
    /// In frame pixels, before rotation; `None`: the whole frame.
    pub roi: Option<Roi>,
}

/// A heap value whose lifetime the owner manages: the core's classifier borrows it as
/// `'static` while [`State`] keeps it alive. Freed on drop.
struct Owned<T: ?Sized>(NonNull<T>);

impl<T: ?Sized> Owned<T> {
    fn new(value: Box<T>) -> Self {
        Owned(NonNull::from(Box::leak(value)))
    }

    /// A borrow that outlives `self` as far as the compiler knows.
    ///
    /// # Safety
    /// The caller must stop using the borrow before `self` is dropped, and must not hold two
    /// borrows at once.
    unsafe fn borrow_static(&self) -> &'static mut T {
        // SAFETY: the pointer came from `Box::leak`, so it is valid and aligned until `drop`
        // frees it; the caller's contract keeps the borrow unique and within that time.
        unsafe { &mut *self.0.as_ptr() }
    }
}

impl<T: ?Sized> Drop for Owned<T> {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `Box::leak` in `new` and is freed only here, once;
        // `State`'s field order drops the classifier (the only borrower) first.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

/// The core's classifier and everything it borrows. Fields drop in declaration order: the
/// classifier goes first, then what it borrowed.
struct State {
    classifier: Classifier<'static, 'static>,
    _model: Owned<Model<'static>>,
    _arena: Owned<[u8]>,
    _scratch: Owned<[u8]>,
    _bytes: Option<Owned<[u8]>>,
}

// SAFETY: the `Owned` pointers are unique heap allocations reachable only through this
// `State` (the classifier's borrows point into them); moving the whole to another thread moves
// sole ownership with it. Every part is itself `Send` data (bytes, the parsed model's borrows,
// `fn` pointers of the kernel table).
unsafe impl Send for State {}

impl State {
    fn new(bundled: Option<&'static [u8]>, heap: Option<Vec<u8>>) -> Result<Self, Failure> {
        let bytes_owner = heap.map(|v| Owned::new(v.into_boxed_slice()));
        let bytes: &'static [u8] = match (&bytes_owner, bundled) {
            // SAFETY: only shared borrows of the bytes exist (the model's), and they live in
            // `State`, which drops them before `_bytes`.
            (Some(owner), _) => unsafe { owner.borrow_static() },
            (None, Some(b)) => b,
            (None, None) => return Err(Failure::BadArgument("no model bytes")),
        };
        let model = Owned::new(Box::new(Model::parse(bytes)?));
        // SAFETY: the one borrow of the model, kept by the classifier, which drops first.
        let model_ref: &'static Model<'static> = unsafe { model.borrow_static() };
        let arena = Owned::new(vec![0u8; model_ref.session_arena_bytes()].into_boxed_slice());
        let scratch = Owned::new(vec![0u8; FRAME_SCRATCH_BYTES].into_boxed_slice());
        // SAFETY: the only borrows of arena and scratch, handed to the classifier, which drops
        // before them (field order of `State`).
        let (arena_ref, scratch_ref) = unsafe { (arena.borrow_static(), scratch.borrow_static()) };
        let classifier = Classifier::new(model_ref, kernels::best(), arena_ref, scratch_ref)?;
        Ok(State { classifier, _model: model, _arena: arena, _scratch: scratch, _bytes: bytes_owner })
    }
}

/// A classifier that owns its model: `Send + Sync`, calls serialised by a `Mutex`.
pub struct Engine {
    state: Mutex<State>,
}

// Not derived: formatting must not take the lock (it may be held by the caller's closure).
impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

impl Engine {
    /// One of the models shipped inside the library (no copy of its bytes).
    pub fn bundled(model: Bundled) -> Result<Self, Failure> {
        Ok(Engine { state: Mutex::new(State::new(Some(model.bytes()), None)?) })
    }

    /// A model file's bytes (a `runtime-mobile` int8 safetensors file).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, Failure> {
        Ok(Engine { state: Mutex::new(State::new(None, Some(bytes))?) })
    }

    /// Runs `f` on the locked state. A poisoned lock is taken over: the core keeps no state
    /// between calls that a panic could leave half-written (arena and scratch are rewritten by
    /// every call).
    fn with_state<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }

    /// Classifies a 28x28 MNIST-style image (0 = background); `f` sees the answer.
    pub fn classify_image<R>(&self, pixels: &[u8], f: impl for<'x> FnOnce(Answered<'x>) -> R) -> Result<R, Failure> {
        let image: &[u8; OUT_PIXELS] =
            pixels.try_into().map_err(|_| runtime_mobile::Error::InputSize { expected: OUT_PIXELS, got: pixels.len() })?;
        self.with_state(|s| {
            let start = Instant::now();
            let c: Classification<'_, '_> = s.classifier.classify_image(image)?;
            let timing = Timing { preprocess_micros: 0, inference_micros: micros(start, Instant::now()) };
            Ok(f(Answered { outcome: FrameOutcome::Digit(c), timing }))
        })
    }

    /// Finds and classifies the digit in a frame; `f` sees the answer ("no digit" included).
    pub fn classify_frame<R>(&self, args: &FrameArgs<'_>, f: impl for<'x> FnOnce(Answered<'x>) -> R) -> Result<R, Failure> {
        let rotation = Rotation::from_degrees(args.rotation_degrees).ok_or(Failure::BadRotation(args.rotation_degrees))?;
        let frame = Frame::new(args.data, args.format, args.width, args.height, args.row_stride)?;
        let opts = Options { rotation, roi: args.roi, ..Options::DEFAULT };
        self.with_state(|s| {
            let start = Instant::now();
            let mut preprocessed = None;
            let outcome = s.classifier.classify_frame_marked(&frame, &opts, || preprocessed = Some(Instant::now()))?;
            let end = Instant::now();
            let split = preprocessed.unwrap_or(end);
            let timing = Timing { preprocess_micros: micros(start, split), inference_micros: micros(split, end) };
            Ok(f(Answered { outcome, timing }))
        })
    }

    pub fn labels(&self) -> Vec<String> {
        self.with_state(|s| s.classifier.model().labels().map(str::to_owned).collect())
    }

    pub fn num_classes(&self) -> usize {
        self.with_state(|s| s.classifier.model().num_classes())
    }

    /// The model's `dataset` metadata ("" when absent).
    pub fn dataset(&self) -> String {
        self.with_state(|s| s.classifier.model().dataset().unwrap_or_default().to_owned())
    }

    /// The kernel table chosen at run time for this CPU (e.g. `neon-dotprod`).
    pub fn kernels(&self) -> &'static str {
        self.with_state(|s| s.classifier.kernels().name)
    }
}

fn micros(from: Instant, to: Instant) -> u64 {
    u64::try_from(to.saturating_duration_since(from).as_micros()).unwrap_or(u64::MAX)
}
