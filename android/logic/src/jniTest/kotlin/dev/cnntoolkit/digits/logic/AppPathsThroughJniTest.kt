package dev.cnntoolkit.digits.logic

import dev.cnntoolkit.digits.jni.FrameResult
import dev.cnntoolkit.digits.jni.JniClassifier
import dev.cnntoolkit.digits.jni.Model
import org.junit.AfterClass
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import java.io.DataInputStream
import java.io.File
import java.nio.ByteBuffer
import java.util.zip.GZIPInputStream

/**
 * The app's two paths through the real classifier (host libbindings.so, loaded by the JNI module):
 * the camera path's viewfinder crop for every rotation, and the draw pad's rendering. Not part of
 * the Gradle build (it needs a host build of the Rust library and the MNIST test set); run by
 * scripts/ci-android-logic with -Ddev.cnntoolkit.digits.library and -Ddev.cnntoolkit.digits.mnist.
 */
class AppPathsThroughJniTest {
    companion object {
        private val classifier = JniClassifier.bundled(Model.MNIST)

        @JvmStatic
        @AfterClass
        fun close() = classifier.close()

        /** The first [n] MNIST test images, 28x28 bytes each. */
        fun mnist(n: Int): List<ByteArray> {
            val path = System.getProperty("dev.cnntoolkit.digits.mnist")
                ?: error("set -Ddev.cnntoolkit.digits.mnist=<t10k-images-idx3-ubyte.gz>")
            val file = File(path)
            check(file.isFile) { "missing $path (the MNIST test images; .ci/run links ../shared/data to data/)" }
            DataInputStream(GZIPInputStream(file.inputStream()).buffered()).use { input ->
                check(input.readInt() == 2051) { "$path is not an IDX image file" }
                val count = input.readInt()
                check(input.readInt() == 28 && input.readInt() == 28)
                return List(minOf(n, count)) { ByteArray(784).also { input.readFully(it) } }
            }
        }
    }

    private fun FrameResult.snapshot() = listOf(
        hasDigit, noDigitReason, classIndex, confidence, topClasses.toList(), topConfidences.toList(),
        scores.toList(), box.toList(), inverted,
    )

    /**
     * An upright scene (uw x uh): a dim background, a bright block outside the viewfinder (it
     * would change the answer if the crop were wrong) and the digit scaled into the viewfinder.
     */
    private fun scene(uw: Int, uh: Int, square: PixelRect, digit: ByteArray): Array<IntArray> {
        val up = Array(uh) { IntArray(uw) { 30 } }
        for (y in 2 until 60) for (x in 2 until 60) up[y][x] = 250
        for (y in square.top until square.bottom) for (x in square.left until square.right) {
            val d = digit[(y - square.top) * 28 / square.height * 28 + (x - square.left) * 28 / square.width].toInt() and 0xFF
            up[y][x] = 30 + d * 200 / 255
        }
        return up
    }

    @Test
    fun viewfinderCropEqualsClassifyingTheUprightSquareForEveryRotation() {
        val (width, height, rowStride) = Triple(640, 480, 704)
        val crop = PixelRect(20, 10, 620, 470)
        // The app's centred square, and one off centre: a centred square looks the same after any
        // turn, so only the second tells the rotations apart.
        for (viewfinder in listOf(Viewfinder(0.6f), Viewfinder(0.5f, 0.4f, 0.35f))) {
            cropMatchesUprightSquare(viewfinder, width, height, rowStride, crop)
        }
    }

    private fun cropMatchesUprightSquare(viewfinder: Viewfinder, width: Int, height: Int, rowStride: Int, crop: PixelRect) {
        val frame = ByteBuffer.allocateDirect(rowStride * height)
        val got = FrameResult()
        val want = FrameResult()
        var digits = 0
        for ((i, digit) in mnist(60).withIndex()) {
            for (degrees in listOf(0, 90, 180, 270)) {
                val turns = Viewfinder.quarterTurns(degrees)
                val (uw, uh) = if (turns % 2 == 1) crop.height to crop.width else crop.width to crop.height
                val square = viewfinder.inUpright(crop, degrees)
                val up = scene(uw, uh, square, digit)
                // The camera's buffer: the scene turned back, so that a clockwise turn by `degrees`
                // (frame pixel (x, y) of a W x H crop goes to upright (H-1-y, x) per quarter turn)
                // makes it upright again. Written pixel by pixel from the forward rule.
                for (i0 in 0 until frame.capacity()) frame.put(i0, 7)
                for (sy in 0 until crop.height) for (sx in 0 until crop.width) {
                    var x = sx
                    var y = sy
                    var w = crop.width
                    var h = crop.height
                    repeat(turns) {
                        val nx = h - 1 - y
                        y = x
                        x = nx
                        val t = w
                        w = h
                        h = t
                    }
                    frame.put((crop.top + sy) * rowStride + crop.left + sx, up[y][x].toByte())
                }
                val f = viewfinder.inFrame(crop, degrees)
                classifier.classifyFrame(frame, width, height, rowStride, 1, degrees, f.left, f.top, f.right, f.bottom, got)

                val s = square.width
                val alone = ByteBuffer.allocateDirect(s * s)
                for (y in 0 until s) for (x in 0 until s) alone.put(y * s + x, up[square.top + y][square.left + x].toByte())
                classifier.classifyFrame(alone, s, s, s, 1, 0, 0, 0, s, s, want)
                assertEquals("$viewfinder: digit $i at $degrees degrees", want.snapshot(), got.snapshot())
            }
            if (want.hasDigit) digits++
        }
        assertTrue("most test digits are found ($digits of 60)", digits >= 55)
    }

    private fun drawn(strokes: List<List<PadPoint>>): FrameResult {
        val side = 112
        val raster = InkRaster(side, 0.07f) // the app's pad size and pen width
        val pixels = ByteBuffer.allocateDirect(side * side)
        raster.render(strokes, pixels)
        return FrameResult().also { classifier.classifyFrame(pixels, side, side, side, 1, 0, 0, 0, side, side, it) }
    }

    private fun arc(cx: Float, cy: Float, rx: Float, ry: Float, from: Double, to: Double, n: Int = 40) =
        (0..n).map {
            val a = from + (to - from) * it / n
            PadPoint(cx + rx * Math.cos(a).toFloat(), cy + ry * Math.sin(a).toFloat())
        }

    @Test
    fun drawnDigitsAreRecognised() {
        val one = listOf(listOf(PadPoint(0.52f, 0.15f), PadPoint(0.5f, 0.85f)))
        val seven = listOf(listOf(PadPoint(0.28f, 0.2f), PadPoint(0.72f, 0.2f), PadPoint(0.42f, 0.85f)))
        val zero = listOf(arc(0.5f, 0.5f, 0.22f, 0.33f, 0.0, 2 * Math.PI))
        val three = listOf(
            arc(0.48f, 0.33f, 0.2f, 0.16f, -Math.PI * 0.9, Math.PI * 0.5) +
                arc(0.48f, 0.66f, 0.22f, 0.17f, -Math.PI * 0.5, Math.PI * 0.9),
        )
        val cases = mapOf("1" to one, "7" to seven, "0" to zero, "3" to three)
        for ((label, strokes) in cases) {
            val r = drawn(strokes)
            assertTrue("a drawn $label is found", r.hasDigit)
            assertEquals("a drawn $label", label, classifier.labels[r.classIndex])
        }
        assertEquals(false, drawn(emptyList()).hasDigit)
    }

    @Test
    fun theResultIsReusedAndReadsAsTheScreenShowsIt() {
        val r = drawn(listOf(listOf(PadPoint(0.52f, 0.15f), PadPoint(0.5f, 0.85f))))
        val reading = Reading.of(
            r.hasDigit, r.noDigitReason, r.classIndex, r.confidence, r.topClasses, r.topConfidences, r.box,
            r.inverted, r.preprocessMicros, r.inferenceMicros, 0, classifier.labels, 112, 112,
        )
        assertEquals("1", reading.label)
        assertEquals(3, reading.top.size)
        assertArrayEquals(intArrayOf(r.classIndex), intArrayOf(r.topClasses[0]))
        assertTrue(reading.headline, reading.headline.startsWith("1  "))
    }
}
