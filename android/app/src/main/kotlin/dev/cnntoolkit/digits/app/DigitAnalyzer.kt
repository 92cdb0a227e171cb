package dev.cnntoolkit.digits.app

import androidx.camera.core.ImageAnalysis
import androidx.camera.core.ImageProxy
import dev.cnntoolkit.digits.jni.ClassifierException
import dev.cnntoolkit.digits.jni.FrameResult
import dev.cnntoolkit.digits.logic.ClassifierSlot
import dev.cnntoolkit.digits.logic.PixelRect
import dev.cnntoolkit.digits.logic.Reading
import dev.cnntoolkit.digits.logic.Viewfinder

/**
 * Classifies the viewfinder square of each camera frame through JNI, reading the Y plane in place.
 *
 * CameraX calls [analyze] on one thread and, with STRATEGY_KEEP_ONLY_LATEST, keeps only the newest
 * frame while a call runs, so frames are dropped while the classifier is busy; a frame that
 * arrives while the model is being swapped is dropped too ([ClassifierSlot.tryUse]). The JNI call
 * itself allocates nothing: it writes into the one [FrameResult] below.
 */
class DigitAnalyzer(
    private val slot: ClassifierSlot<LoadedModel>,
    private val viewfinder: Viewfinder,
    private val onReading: (Reading) -> Unit,
    private val onError: (String) -> Unit,
) : ImageAnalysis.Analyzer {
    private val result = FrameResult()

    override fun analyze(image: ImageProxy) {
        // The buffer is the camera's own memory: classify before closing the image.
        image.use { classify(it) }
    }

    private fun classify(image: ImageProxy) {
        val y = image.planes[0]
        val rotation = image.imageInfo.rotationDegrees
        val c = image.cropRect
        val crop = viewfinder.inFrame(PixelRect(c.left, c.top, c.right, c.bottom), rotation)
        val upright = viewfinder.inUpright(PixelRect(c.left, c.top, c.right, c.bottom), rotation)
        val reading = try {
            slot.tryUse { model ->
                val start = System.nanoTime()
                model.classifier.classifyFrame(
                    y.buffer, image.width, image.height, y.rowStride, y.pixelStride, rotation,
                    crop.left, crop.top, crop.right, crop.bottom, result,
                )
                val micros = (System.nanoTime() - start) / 1_000
                result.toReading(model.labels, micros, upright.width, upright.height)
            }
        } catch (e: ClassifierException) {
            onError("classifier error ${e.code}: ${e.message}")
            null
        }
        if (reading != null) onReading(reading)
    }
}
