package dev.cnntoolkit.digits.jni

import java.nio.ByteBuffer

/** The models shipped inside libbindings. */
enum class Model { MNIST, FASHION_MNIST }

/**
 * Thrown for bad model bytes or bad arguments; [code] is runtime-mobile's `Error::code()`
 * (1..33, 99 for a bug) or the bindings' own: 100 rotation not a multiple of 90, 101 pixel
 * stride not 1, 102 negative or reversed argument, 103 not a direct ByteBuffer, 104 closed,
 * 105 FrameResult too small for the model's classes.
 */
class ClassifierException(val code: Int, message: String) : Exception(message)

/** The natives of libbindings (`bindings/src/jni.rs`). */
internal object Natives {
    init {
        // Host tests and tools name the library file; an app lets the system find it in its APK.
        val path = System.getProperty("dev.cnntoolkit.digits.library")
        if (path != null) System.load(path) else System.loadLibrary("bindings")
    }

    @JvmStatic external fun nativeBundled(model: Int): Long

    @JvmStatic external fun nativeFromBytes(bytes: ByteArray): Long

    @JvmStatic external fun nativeFree(handle: Long)

    /** what: 0 labels joined by '\n', 1 dataset, 2 kernel table. */
    @JvmStatic external fun nativeInfo(handle: Long, what: Int): String

    @JvmStatic external fun nativeClassifyFrame(
        handle: Long, yPlane: ByteBuffer, width: Int, height: Int, rowStride: Int, pixelStride: Int,
        rotationDegrees: Int, cropLeft: Int, cropTop: Int, cropRight: Int, cropBottom: Int, out: IntArray,
    )

    @JvmStatic external fun nativeClassifyImage(handle: Long, pixels: ByteArray, out: IntArray)
}

/**
 * A digit classifier over one model, for the camera path: no allocation per frame on either side
 * of JNI. Calls are serialised (one native classifier, one lock); [close] frees the native side.
 */
class JniClassifier private constructor(private var handle: Long) : AutoCloseable {
    companion object {
        @JvmStatic
        fun bundled(model: Model): JniClassifier = JniClassifier(Natives.nativeBundled(model.ordinal))

        @JvmStatic
        fun fromBytes(bytes: ByteArray): JniClassifier = JniClassifier(Natives.nativeFromBytes(bytes))
    }

    val labels: List<String> = Natives.nativeInfo(handle, 0).split('\n')
    val dataset: String = Natives.nativeInfo(handle, 1)

    /** The kernel table chosen at run time (e.g. `neon-dotprod`). */
    val kernels: String = Natives.nativeInfo(handle, 2)

    /** A result holder sized for this model's classes: allocate once, reuse for every frame. */
    fun newResult(): FrameResult = FrameResult(labels.size)

    /**
     * Finds and classifies the digit in a camera frame's Y plane.
     *
     * [yPlane]: a DIRECT ByteBuffer (CameraX `ImageProxy.planes[0].buffer`), read in place from
     * its start (its position is ignored); its capacity must hold `(height - 1) * rowStride +
     * width` bytes (the last row may be short). The crop is CameraX's `cropRect` / the viewfinder
     * square as left, top, right, bottom in frame pixels (before rotation); pass 0, 0, width,
     * height for the whole frame. [rotationDegrees]: `imageInfo.rotationDegrees`. [pixelStride]
     * must be 1 (always so for a Y plane). The answer is written into [out].
     */
    @Synchronized
    fun classifyFrame(
        yPlane: ByteBuffer, width: Int, height: Int, rowStride: Int, pixelStride: Int, rotationDegrees: Int,
        cropLeft: Int, cropTop: Int, cropRight: Int, cropBottom: Int, out: FrameResult,
    ) {
        Natives.nativeClassifyFrame(
            handle, yPlane, width, height, rowStride, pixelStride, rotationDegrees,
            cropLeft, cropTop, cropRight, cropBottom, out.packed,
        )
        out.unpack()
    }

    /** Classifies a 28x28 MNIST-style image (784 bytes, row-major, 0 = background). */
    @Synchronized
    fun classifyImage(pixels: ByteArray, out: FrameResult) {
        Natives.nativeClassifyImage(handle, pixels, out.packed)
        out.unpack()
    }

    @Synchronized
    override fun close() {
        val h = handle
        handle = 0
        if (h != 0L) Natives.nativeFree(h)
    }
}
