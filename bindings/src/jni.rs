//! JNI natives for `dev.cnntoolkit.digits.jni.Natives` (android/classifier-jni/): the camera
//! path. A classifier is a `jlong` handle (a leaked `Box<Engine>`); a frame's Y plane is read
//! in place from its direct `ByteBuffer`; the answer is written into the caller's `int[]`
//! (unpacked by `FrameResult`), so a frame allocates nothing on either side.
//!
//! Every native runs inside `EnvUnowned::with_env` (which catches unwinds) and [`guard`]
//! (which turns a panic into a `ClassifierException` with code 99): no panic reaches the JVM.

use jni::errors::ThrowRuntimeExAndDefault;
use jni::objects::{JByteArray, JByteBuffer, JClass, JIntArray, JObject, JThrowable};
use jni::sys::{jint, jlong};
use jni::{Env, EnvUnowned, JValue, jni_sig, jni_str};
use runtime_mobile::preprocess::{OUT_PIXELS, PixelFormat, Roi};

use crate::classifier::{Bundled, Engine, FrameArgs};
use crate::convert::{self, packed};
use crate::error::{Failure, guard};

/// Throws `dev.cnntoolkit.digits.jni.ClassifierException(code, message)`.
fn throw(env: &mut Env<'_>, failure: &Failure) -> jni::errors::Result<()> {
    let message = env.new_string(failure.to_string())?;
    let code = jint::try_from(failure.code()).unwrap_or(jint::MAX);
    let exception = env.new_object(
        jni_str!("dev/cnntoolkit/digits/jni/ClassifierException"),
        jni_sig!("(ILjava/lang/String;)V"),
        &[JValue::Int(code), JValue::Object(&message)],
    )?;
    let exception = JThrowable::cast_local(env, exception)?;
    env.throw(exception)
}

/// Runs `body` under [`guard`]; a failure becomes a pending `ClassifierException` and the
/// native returns `T::default()`.
fn run<T: Default>(env: &mut Env<'_>, body: impl FnOnce(&mut Env<'_>) -> Result<T, Failure>) -> jni::errors::Result<T> {
    match guard(|| body(env)) {
        Ok(v) => Ok(v),
        Err(f) => throw(env, &f).map(|()| T::default()),
    }
}

/// The engine behind a handle.
///
/// # Safety
/// `handle` must be 0 or a value from [`into_handle`] not yet passed to `nativeFree`; the
/// Kotlin class guarantees this (handle reset to 0 on close, all calls synchronised).
unsafe fn engine<'h>(handle: jlong) -> Result<&'h Engine, Failure> {
    let ptr = handle as usize as *const Engine;
    // SAFETY: per the contract, a non-null handle points to a live `Engine` from `Box::into_raw`.
    unsafe { ptr.as_ref() }.ok_or(Failure::Closed)
}

fn into_handle(engine: Engine) -> jlong {
    Box::into_raw(Box::new(engine)) as usize as jlong
}

fn non_negative(v: jint, what: &'static str) -> Result<usize, Failure> {
    usize::try_from(v).map_err(|_| Failure::BadArgument(what))
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_cnntoolkit_digits_jni_Natives_nativeBundled<'caller>(
    mut unowned: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    model: jint,
) -> jlong {
    unowned
        .with_env(|env| {
            run(env, |_| {
                let which = match model {
                    0 => Bundled::Mnist,
                    1 => Bundled::FashionMnist,
                    _ => return Err(Failure::BadArgument("unknown bundled model")),
                };
                Engine::bundled(which).map(into_handle)
            })
        })
        .resolve::<ThrowRuntimeExAndDefault>()
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_cnntoolkit_digits_jni_Natives_nativeFromBytes<'caller>(
    mut unowned: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    bytes: JByteArray<'caller>,
) -> jlong {
    unowned
        .with_env(|env| {
            let bytes = env.convert_byte_array(&bytes)?;
            run(env, |_| Engine::from_bytes(bytes).map(into_handle))
        })
        .resolve::<ThrowRuntimeExAndDefault>()
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_cnntoolkit_digits_jni_Natives_nativeFree<'caller>(
    mut unowned: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    handle: jlong,
) {
    unowned
        .with_env(|env| {
            run(env, |_| {
                if handle != 0 {
                    // SAFETY: a live handle from `into_handle` (the Kotlin class frees it once,
                    // then forgets it), so this is the `Box` it came from.
                    drop(unsafe { Box::from_raw(handle as usize as *mut Engine) });
                }
                Ok(())
            })
        })
        .resolve::<ThrowRuntimeExAndDefault>()
}

/// 0: the labels joined by '\n'; 1: dataset; 2: kernel table name.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_cnntoolkit_digits_jni_Natives_nativeInfo<'caller>(
    mut unowned: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    handle: jlong,
    what: jint,
) -> JObject<'caller> {
    unowned
        .with_env(|env| -> jni::errors::Result<JObject<'caller>> {
            let text = run(env, |_| {
                // SAFETY: the handle contract of `engine` (upheld by the Kotlin class).
                let e = unsafe { engine(handle) }?;
                Ok(match what {
                    0 => e.labels().join("\n"),
                    1 => e.dataset(),
                    _ => e.kernels().to_owned(),
                })
            })?;
            Ok(env.new_string(text)?.into())
        })
        .resolve::<ThrowRuntimeExAndDefault>()
}

/// Writes the answer into `out` ([`packed`] layout, at most `HEADER + MAX_SCORES` ints).
fn write_packed(env: &Env<'_>, out: &JIntArray<'_>, a: &crate::Answered<'_>) -> Result<(), Failure> {
    let mut buf = [0i32; packed::HEADER + packed::MAX_SCORES];
    let n = convert::pack(a, &mut buf)?;
    let got = out.len(env).map_err(|_| Failure::BadArgument("result array"))?;
    if got < n {
        return Err(Failure::ResultTooSmall { needed: n, got });
    }
    out.set_region(env, 0, buf.get(..n).unwrap_or(&buf)).map_err(|_| Failure::BadArgument("result array"))
}

/// `yPlane` is read in place: its capacity is the slice the core validates (`Frame::new`:
/// `(height - 1) * rowStride + width` bytes, the last row may be short).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)] // one JNI call per frame: CameraX's values as they come
pub extern "system" fn Java_dev_cnntoolkit_digits_jni_Natives_nativeClassifyFrame<'caller>(
    mut unowned: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    handle: jlong,
    y_plane: JByteBuffer<'caller>,
    width: jint,
    height: jint,
    row_stride: jint,
    pixel_stride: jint,
    rotation_degrees: jint,
    crop_left: jint,
    crop_top: jint,
    crop_right: jint,
    crop_bottom: jint,
    out: JIntArray<'caller>,
) {
    unowned
        .with_env(|env| {
            run(env, |env| {
                // SAFETY: the handle contract of `engine` (upheld by the Kotlin class).
                let engine = unsafe { engine(handle) }?;
                if pixel_stride != 1 {
                    return Err(Failure::PixelStride(pixel_stride));
                }
                let roi = crop_to_roi([crop_left, crop_top, crop_right, crop_bottom])?;
                let addr = env.get_direct_buffer_address(&y_plane).map_err(|_| Failure::NotDirectBuffer)?;
                let capacity = env.get_direct_buffer_capacity(&y_plane).map_err(|_| Failure::NotDirectBuffer)?;
                if addr.is_null() {
                    return Err(Failure::NotDirectBuffer);
                }
                // SAFETY: a direct buffer's address is valid for `capacity` bytes while the
                // buffer object is reachable, which `y_plane` (a local reference) ensures for
                // this call; the bytes are only read, and the JVM does not move direct memory.
                let data = unsafe { std::slice::from_raw_parts(addr.cast_const(), capacity) };
                let args = FrameArgs {
                    data,
                    format: PixelFormat::Yuv420Y,
                    width: non_negative(width, "width")?,
                    height: non_negative(height, "height")?,
                    row_stride: non_negative(row_stride, "rowStride")?,
                    rotation_degrees,
                    roi: Some(roi),
                };
                engine.classify_frame(&args, |a| write_packed(env, &out, &a))?
            })
        })
        .resolve::<ThrowRuntimeExAndDefault>()
}

/// CameraX's crop rectangle (left, top, right, bottom; frame pixels) as the core's region.
fn crop_to_roi([left, top, right, bottom]: [jint; 4]) -> Result<Roi, Failure> {
    let x = non_negative(left, "crop left")?;
    let y = non_negative(top, "crop top")?;
    let right = non_negative(right, "crop right")?;
    let bottom = non_negative(bottom, "crop bottom")?;
    let width = right.checked_sub(x).ok_or(Failure::BadArgument("crop right < left"))?;
    let height = bottom.checked_sub(y).ok_or(Failure::BadArgument("crop bottom < top"))?;
    Ok(Roi { x, y, width, height })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_cnntoolkit_digits_jni_Natives_nativeClassifyImage<'caller>(
    mut unowned: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    handle: jlong,
    pixels: JByteArray<'caller>,
    out: JIntArray<'caller>,
) {
    unowned
        .with_env(|env| {
            run(env, |env| {
                // SAFETY: the handle contract of `engine` (upheld by the Kotlin class).
                let engine = unsafe { engine(handle) }?;
                let got = pixels.len(env).map_err(|_| Failure::BadArgument("pixels"))?;
                if got != OUT_PIXELS {
                    return Err(runtime_mobile::Error::InputSize { expected: OUT_PIXELS, got }.into());
                }
                let mut signed = [0i8; OUT_PIXELS];
                pixels.get_region(env, 0, &mut signed).map_err(|_| Failure::BadArgument("pixels"))?;
                let image: [u8; OUT_PIXELS] = signed.map(|p| p.cast_unsigned());
                engine.classify_image(&image, |a| write_packed(env, &out, &a))?
            })
        })
        .resolve::<ThrowRuntimeExAndDefault>()
}
