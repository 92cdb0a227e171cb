package dev.cnntoolkit.digits.logic

import java.util.Locale

/** One of the three best classes, for a bar. */
data class Ranked(val label: String, val confidence: Float)

/**
 * What the screen shows for one classified frame or drawing: a copy of the classifier's
 * FrameResult (which is reused for the next frame) with the labels resolved.
 */
data class Reading(
    val label: String?,
    val confidence: Float,
    val top: List<Ranked>,
    val noDigit: String?,
    val inverted: Boolean,
    val preprocessMicros: Long,
    val inferenceMicros: Long,
    /** Wall time of the whole classify call as the app saw it (JNI crossing included). */
    val callMicros: Long,
    /** Digit's bounding box as fractions of the upright region of interest, or null. */
    val box: Box?,
) {
    /** A rectangle in fractions (0..1) of the upright region of interest. */
    data class Box(val left: Float, val top: Float, val width: Float, val height: Float)

    val hasDigit: Boolean get() = label != null

    /** "7  98.6 %", or the no-digit reason. */
    val headline: String get() = if (label != null) "$label  ${percent(confidence)}" else "no digit: $noDigit"

    /**
     * "412 µs in the classifier (preprocess 350 + inference 62), call 430 µs"; without the split
     * when the classifier timed both as one (preprocessMicros 0).
     */
    val latency: String
        get() {
            val split = if (preprocessMicros > 0) " (preprocess $preprocessMicros + inference $inferenceMicros)" else ""
            return "${preprocessMicros + inferenceMicros} µs in the classifier$split, call $callMicros µs"
        }

    companion object {
        /** The classifier's no-digit codes (FrameResult.noDigitReason) as words. */
        fun noDigitText(code: Int): String = when (code) {
            1 -> "low contrast"
            2 -> "no ink"
            3 -> "too small"
            else -> "reason $code"
        }

        /** 0.98612 -> "98.6 %", the same in every locale. */
        fun percent(confidence: Float): String = String.format(Locale.ROOT, "%.1f %%", confidence * 100f)

        /**
         * Builds a reading from the fields of a FrameResult (passed one by one so that this file
         * needs neither the JNI module nor Android). [roiWidth] x [roiHeight] is the upright region
         * of interest the box is measured in.
         */
        fun of(
            hasDigit: Boolean,
            noDigitReason: Int,
            classIndex: Int,
            confidence: Float,
            topClasses: IntArray,
            topConfidences: FloatArray,
            box: IntArray,
            inverted: Boolean,
            preprocessMicros: Long,
            inferenceMicros: Long,
            callMicros: Long,
            labels: List<String>,
            roiWidth: Int,
            roiHeight: Int,
        ): Reading {
            fun label(i: Int) = labels.getOrNull(i) ?: "class $i"
            if (!hasDigit) {
                return Reading(null, 0f, emptyList(), noDigitText(noDigitReason), inverted,
                    preprocessMicros, inferenceMicros, callMicros, null)
            }
            val top = topClasses.indices.map { Ranked(label(topClasses[it]), topConfidences[it]) }
            val fracBox = if (roiWidth > 0 && roiHeight > 0 && box.size >= 4) {
                Box(box[0].toFloat() / roiWidth, box[1].toFloat() / roiHeight,
                    box[2].toFloat() / roiWidth, box[3].toFloat() / roiHeight)
            } else {
                null
            }
            return Reading(label(classIndex), confidence, top, null, inverted,
                preprocessMicros, inferenceMicros, callMicros, fracBox)
        }
    }
}
