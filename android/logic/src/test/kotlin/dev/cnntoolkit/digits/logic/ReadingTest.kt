package dev.cnntoolkit.digits.logic

import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNull
import org.junit.Test
import java.util.Locale

class ReadingTest {
    private val digits = (0..9).map { it.toString() }

    @Test
    fun digitReadingResolvesLabelsAndBox() {
        val r = Reading.of(
            hasDigit = true, noDigitReason = 0, classIndex = 7, confidence = 0.98612f,
            topClasses = intArrayOf(7, 1, 9), topConfidences = floatArrayOf(0.98612f, 0.01f, 0.002f),
            box = intArrayOf(10, 20, 30, 40), inverted = true,
            preprocessMicros = 350, inferenceMicros = 62, callMicros = 430,
            labels = digits, roiWidth = 100, roiHeight = 200,
        )
        assertEquals("7  98.6 %", r.headline)
        assertEquals(listOf(Ranked("7", 0.98612f), Ranked("1", 0.01f), Ranked("9", 0.002f)), r.top)
        assertEquals(Reading.Box(0.1f, 0.1f, 0.3f, 0.2f), r.box)
        assertEquals("412 µs in the classifier (preprocess 350 + inference 62), call 430 µs", r.latency)
    }

    @Test
    fun noDigitIsAReadingWithAReason() {
        val r = Reading.of(
            hasDigit = false, noDigitReason = 2, classIndex = 0, confidence = 0f,
            topClasses = IntArray(3), topConfidences = FloatArray(3), box = IntArray(4), inverted = false,
            preprocessMicros = 90, inferenceMicros = 0, callMicros = 95,
            labels = digits, roiWidth = 100, roiHeight = 100,
        )
        assertFalse(r.hasDigit)
        assertEquals("no digit: no ink", r.headline)
        assertNull(r.box)
        assertEquals(emptyList<Ranked>(), r.top)
        assertEquals("90 µs in the classifier (preprocess 90 + inference 0), call 95 µs", r.latency)
        assertEquals("7 µs in the classifier, call 9 µs", r.copy(preprocessMicros = 0, inferenceMicros = 7, callMicros = 9).latency)
    }

    @Test
    fun percentIgnoresTheLocale() {
        val saved = Locale.getDefault()
        try {
            Locale.setDefault(Locale.GERMANY)
            assertEquals("100.0 %", Reading.percent(1f))
            assertEquals("0.1 %", Reading.percent(0.00149f))
        } finally {
            Locale.setDefault(saved)
        }
    }

    @Test
    fun fashionLabelsAndUnknownClasses() {
        val fashion = listOf("T-shirt/top", "Trouser")
        val r = Reading.of(
            hasDigit = true, noDigitReason = 0, classIndex = 1, confidence = 0.5f,
            topClasses = intArrayOf(1, 0, 5), topConfidences = floatArrayOf(0.5f, 0.3f, 0.2f),
            box = intArrayOf(0, 0, 1, 1), inverted = false,
            preprocessMicros = 1, inferenceMicros = 2, callMicros = 3,
            labels = fashion, roiWidth = 0, roiHeight = 0,
        )
        assertEquals("Trouser", r.label)
        assertEquals("class 5", r.top[2].label)
        assertNull(r.box)
        assertEquals("reason 9", Reading.noDigitText(9))
    }
}
