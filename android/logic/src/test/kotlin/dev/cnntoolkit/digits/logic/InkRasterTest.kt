package dev.cnntoolkit.digits.logic

import org.junit.Assert.assertEquals
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Test
import java.nio.ByteBuffer
import kotlin.math.PI

class InkRasterTest {
    private fun ByteBuffer.at(side: Int, x: Int, y: Int) = get(y * side + x).toInt() and 0xFF

    @Test
    fun nothingDrawnIsBlankAndOldInkIsErased() {
        val raster = InkRaster(32, 0.1f)
        val buf = ByteBuffer.allocateDirect(32 * 32)
        raster.render(listOf(listOf(PadPoint(0.5f, 0.5f))), buf)
        raster.render(emptyList(), buf)
        for (i in 0 until 32 * 32) assertEquals(0, buf.get(i).toInt())
        assertEquals(0, buf.position())
    }

    @Test
    fun horizontalStrokeHasThePensWidth() {
        val side = 100
        val raster = InkRaster(side, 0.1f) // 10 pixels wide
        val buf = ByteBuffer.allocate(side * side)
        raster.render(listOf(listOf(PadPoint(0.2f, 0.5f), PadPoint(0.8f, 0.5f))), buf)
        assertEquals(255, buf.at(side, 50, 50))
        assertEquals(255, buf.at(side, 50, 46))
        assertEquals(0, buf.at(side, 50, 40))
        assertEquals(0, buf.at(side, 10, 50))
        val column = (0 until side).count { buf.at(side, 50, it) >= 128 }
        assertEquals(10, column)
    }

    @Test
    fun aDotIsADiscOfThePensArea() {
        val side = 200
        val raster = InkRaster(side, 0.2f) // radius 20
        val buf = ByteBuffer.allocate(side * side)
        raster.render(listOf(listOf(PadPoint(0.5f, 0.5f))), buf)
        val inked = (0 until side * side).sumOf { (buf.get(it).toInt() and 0xFF) / 255.0 }
        assertEquals(PI * 20 * 20, inked, 0.03 * PI * 20 * 20)
    }

    @Test
    fun strokesNearTheEdgeAreClipped() {
        val raster = InkRaster(16, 0.5f)
        val buf = ByteBuffer.allocate(16 * 16)
        raster.render(listOf(listOf(PadPoint(-0.5f, 0f), PadPoint(1.5f, 1f))), buf)
        assertTrue(buf.at(16, 8, 8) == 255)
    }

    @Test
    fun tooSmallABufferIsRefused() {
        assertThrows(IllegalArgumentException::class.java) { InkRaster(28, 0.1f).render(emptyList(), ByteBuffer.allocate(100)) }
    }
}
