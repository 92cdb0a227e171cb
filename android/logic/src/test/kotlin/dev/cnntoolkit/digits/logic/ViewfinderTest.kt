package dev.cnntoolkit.digits.logic

import org.junit.Assert.assertEquals
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Test

class ViewfinderTest {
    /**
     * Turns the crop of a frame upright by the forward rule (a clockwise quarter turn takes frame
     * pixel (x, y) of a W x H crop to upright (H-1-y, x)), independently of the code under test,
     * and returns the frame pixel index found at each upright pixel.
     */
    private fun upright(frameWidth: Int, crop: PixelRect, degrees: Int): Array<IntArray> {
        var w = crop.width
        var h = crop.height
        var grid = Array(h) { y -> IntArray(w) { x -> (crop.top + y) * frameWidth + crop.left + x } }
        repeat(Viewfinder.quarterTurns(degrees)) {
            val turned = Array(w) { IntArray(h) }
            for (y in 0 until h) for (x in 0 until w) turned[x][h - 1 - y] = grid[y][x]
            grid = turned
            val t = w
            w = h
            h = t
        }
        return grid
    }

    private fun pixelsIn(grid: Array<IntArray>, r: PixelRect): Set<Int> =
        (r.top until r.bottom).flatMap { y -> (r.left until r.right).map { x -> grid[y][x] } }.toSet()

    private fun frameIds(frameWidth: Int, r: PixelRect): Set<Int> =
        (r.top until r.bottom).flatMap { y -> (r.left until r.right).map { x -> y * frameWidth + x } }.toSet()

    @Test
    fun cropCoversExactlyTheViewfinderPixelsForEveryRotation() {
        val frameWidth = 64
        val crops = listOf(PixelRect(0, 0, 64, 48), PixelRect(10, 3, 50, 45), PixelRect(7, 0, 40, 48))
        val finders = listOf(Viewfinder(), Viewfinder(0.5f, 0.3f, 0.7f), Viewfinder(1f), Viewfinder(0.25f, 0f, 1f))
        for (crop in crops) for (degrees in listOf(0, 90, 180, 270)) for (vf in finders) {
            val grid = upright(frameWidth, crop, degrees)
            val wanted = pixelsIn(grid, vf.inUpright(crop, degrees))
            val got = vf.inFrame(crop, degrees)
            assertEquals("crop $crop, $degrees deg, $vf", wanted, frameIds(frameWidth, got))
            assertTrue(got.left >= crop.left && got.top >= crop.top && got.right <= crop.right && got.bottom <= crop.bottom)
        }
    }

    @Test
    fun centredSquareOnAVgaFrameIsCentredWhateverTheRotation() {
        val crop = PixelRect(0, 0, 640, 480)
        for (degrees in listOf(0, 90, 180, 270)) {
            assertEquals(PixelRect(176, 96, 464, 384), Viewfinder(0.6f).inFrame(crop, degrees))
        }
    }

    @Test
    fun uprightTopIsTheFramesLeftSideAt90Degrees() {
        // The sensor of most phones is landscape: the top of the upright picture is the buffer's left.
        val r = Viewfinder(0.5f, 0.5f, 0.25f).inFrame(PixelRect(0, 0, 640, 480), 90)
        assertEquals(PixelRect(40, 120, 280, 360), r)
        val l = Viewfinder(0.5f, 0.5f, 0.25f).inFrame(PixelRect(0, 0, 640, 480), 270)
        assertEquals(PixelRect(360, 120, 600, 360), l)
    }

    @Test
    fun viewRectIsTheSameFractionAsTheFrameRect() {
        val v = Viewfinder(0.6f).inView(1080f, 1440f)
        assertEquals(ViewRect(216f, 396f, 864f, 1044f), v)
        val near = Viewfinder(0.6f, 0.95f, 0.5f).inView(100f, 200f)
        assertEquals(40f, near.left, 1e-3f) // kept inside the preview
        assertEquals(100f, near.right, 1e-3f)
    }

    @Test
    fun rotationsAreQuarterTurns() {
        assertEquals(3, Viewfinder.quarterTurns(-90))
        assertEquals(0, Viewfinder.quarterTurns(360))
        assertThrows(IllegalArgumentException::class.java) { Viewfinder.quarterTurns(45) }
        assertThrows(IllegalArgumentException::class.java) { Viewfinder(0f) }
    }
}
