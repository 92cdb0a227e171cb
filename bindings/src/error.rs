//! One failure type for both boundaries: a core error with its stable code, or one of the
//! bindings' own (arguments only a boundary can get wrong, and caught panics).

use core::fmt;

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// `runtime-mobile` refused the model or the input.
    Core(runtime_mobile::Error),
    /// A rotation that is not a multiple of 90 degrees.
    BadRotation(i32),
    /// A pixel stride other than 1 (the Y plane of `YUV_420_888` always has 1).
    PixelStride(i32),
    /// A negative width, height, stride or crop coordinate, or a crop whose right/bottom edge
    /// is before its left/top.
    BadArgument(&'static str),
    /// The `ByteBuffer` is not direct (no address to read in place).
    NotDirectBuffer,
    /// The classifier was closed.
    Closed,
    /// The caller's result holder is too small for the model's classes.
    ResultTooSmall { needed: usize, got: usize },
    /// A panic was caught at the boundary (a bug).
    Panic(String),
}

/// Which typed exception a failure becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Model,
    Input,
    Internal,
}

impl Failure {
    /// The code carried across the boundary: `runtime-mobile`'s [`runtime_mobile::Error::code`]
    /// for its errors (1..=33, 99), and for the bindings' own: 100 bad rotation, 101 pixel
    /// stride, 102 negative or reversed argument, 103 not a direct buffer, 104 closed,
    /// 105 result holder too small; a caught panic is 99 (a bug, as the core's `Internal`).
    pub fn code(&self) -> u32 {
        match self {
            Failure::Core(e) => e.code(),
            Failure::BadRotation(_) => 100,
            Failure::PixelStride(_) => 101,
            Failure::BadArgument(_) => 102,
            Failure::NotDirectBuffer => 103,
            Failure::Closed => 104,
            Failure::ResultTooSmall { .. } => 105,
            Failure::Panic(_) => 99,
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Failure::Core(e) if e.is_model_error() => Kind::Model,
            Failure::Core(runtime_mobile::Error::Internal(_)) | Failure::Panic(_) => Kind::Internal,
            _ => Kind::Input,
        }
    }
}

impl From<runtime_mobile::Error> for Failure {
    fn from(e: runtime_mobile::Error) -> Self {
        Failure::Core(e)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Core(e) => e.fmt(f),
            Failure::BadRotation(d) => write!(f, "rotation {d} degrees is not a multiple of 90"),
            Failure::PixelStride(s) => write!(f, "pixel stride {s}: only 1 (a Y plane) is supported"),
            Failure::BadArgument(what) => write!(f, "bad argument: {what}"),
            Failure::NotDirectBuffer => f.write_str("the ByteBuffer is not direct (allocateDirect or a camera plane)"),
            Failure::Closed => f.write_str("the classifier is closed"),
            Failure::ResultTooSmall { needed, got } => {
                write!(f, "result holder has room for {got} values, the model needs {needed}")
            }
            Failure::Panic(what) => write!(f, "internal error in the bindings (a bug; please report it): {what}"),
        }
    }
}

impl std::error::Error for Failure {}

/// Runs `f`, turning a panic into [`Failure::Panic`]: every FFI entry point goes through this,
/// so no unwind reaches Kotlin, Swift, Python or the JVM.
pub fn guard<T>(f: impl FnOnce() -> Result<T, Failure>) -> Result<T, Failure> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_owned());
        Err(Failure::Panic(what))
    })
}
