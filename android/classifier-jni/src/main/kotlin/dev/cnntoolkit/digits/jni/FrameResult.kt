package dev.cnntoolkit.digits.jni

/**
 * Filled in place by every classify call: allocate once ([JniClassifier.newResult]), reuse for
 * every frame. [classes] is the model's class count (10 for both bundled models).
 */
class FrameResult(classes: Int = 10) {
    var hasDigit: Boolean = false

    /** 0 none (a digit), 1 low contrast, 2 no ink, 3 too small. */
    var noDigitReason: Int = 0

    /** -1 without a digit. */
    var classIndex: Int = -1

    /** 0..1: the core's Q15 confidence / 32768 (exact). */
    var confidence: Float = 0f

    /** The 3 best classes, best first (-1 past the model's class count). */
    val topClasses: IntArray = IntArray(3)
    val topConfidences: FloatArray = FloatArray(3)

    /** The model's int8 scores. */
    val scores: ByteArray = ByteArray(classes)

    /** left, top, width, height of the digit in upright region-of-interest pixels (0 for images). */
    val box: IntArray = IntArray(4)
    var inverted: Boolean = false

    /** Finding the digit in the frame (0 for [JniClassifier.classifyImage]: nothing to find). */
    var preprocessMicros: Long = 0

    /** Quantizing, the network, the label, confidence and top 3. */
    var inferenceMicros: Long = 0

    /** What the native side writes (layout: `bindings/src/convert.rs`, module `packed`). */
    internal val packed: IntArray = IntArray(HEADER + classes)

    internal fun unpack() {
        val p = packed
        hasDigit = p[0] != 0
        noDigitReason = p[1]
        classIndex = p[2]
        confidence = p[3] / Q15_ONE
        for (k in 0 until 3) {
            topClasses[k] = p[4 + k]
            topConfidences[k] = p[7 + k] / Q15_ONE
        }
        for (k in 0 until 4) box[k] = p[10 + k]
        inverted = p[14] != 0
        preprocessMicros = p[15].toLong()
        inferenceMicros = p[16].toLong()
        val n = minOf(p[17], scores.size)
        for (k in scores.indices) scores[k] = if (k < n) p[HEADER + k].toByte() else 0
    }

    private companion object {
        const val HEADER = 18
        const val Q15_ONE = 32768f
    }
}
