package dev.cnntoolkit.digits.app

import dev.cnntoolkit.digits.jni.FrameResult
import dev.cnntoolkit.digits.jni.JniClassifier
import dev.cnntoolkit.digits.jni.Model
import dev.cnntoolkit.digits.logic.Reading

/** A classifier with what the screen shows about it, read once when the model is loaded. */
class LoadedModel(val classifier: JniClassifier) : AutoCloseable {
    val labels: List<String> = classifier.labels
    val dataset: String = classifier.dataset
    val kernels: String = classifier.kernels

    override fun close() = classifier.close()

    companion object {
        fun bundled(model: Model) = LoadedModel(JniClassifier.bundled(model))
    }
}

/**
 * Copies the reused [FrameResult] into an immutable [Reading] for the UI. [roiWidth] x
 * [roiHeight] is the upright region of interest the result's box is measured in.
 */
fun FrameResult.toReading(labels: List<String>, callMicros: Long, roiWidth: Int, roiHeight: Int): Reading =
    Reading.of(
        hasDigit = hasDigit,
        noDigitReason = noDigitReason,
        classIndex = classIndex,
        confidence = confidence,
        topClasses = topClasses,
        topConfidences = topConfidences,
        box = box,
        inverted = inverted,
        preprocessMicros = preprocessMicros,
        inferenceMicros = inferenceMicros,
        callMicros = callMicros,
        labels = labels,
        roiWidth = roiWidth,
        roiHeight = roiHeight,
    )
