package dev.cnntoolkit.digits.logic

import java.nio.ByteBuffer
import kotlin.math.ceil
import kotlin.math.floor
import kotlin.math.sqrt

/** A point on the draw pad in fractions (0..1) of the pad's side. */
data class PadPoint(val x: Float, val y: Float)

/**
 * Renders draw-pad strokes into an 8-bit gray square: ink 255 on 0, like MNIST, with
 * anti-aliased round pens. This only draws what the user drew; centring and scaling to 28x28 are
 * the classifier's preprocessing, which the camera path uses too.
 *
 * @param side the square's side in pixels.
 * @param penWidth the pen's width as a fraction of the side (also what the pad shows).
 */
class InkRaster(val side: Int, val penWidth: Float) {
    init {
        require(side > 0) { "side must be positive" }
        require(penWidth > 0f) { "penWidth must be positive" }
    }

    /** Writes the strokes into [out] (absolute puts: position and limit are untouched). */
    fun render(strokes: List<List<PadPoint>>, out: ByteBuffer) {
        require(out.capacity() >= side * side) { "buffer holds ${out.capacity()} bytes, needs ${side * side}" }
        for (i in 0 until side * side) out.put(i, 0)
        val r = penWidth * side / 2
        for (stroke in strokes) {
            if (stroke.isEmpty()) continue
            for (i in stroke.indices) {
                val a = stroke[i]
                val b = stroke[if (i + 1 < stroke.size) i + 1 else i]
                segment(a.x * side, a.y * side, b.x * side, b.y * side, r, out)
            }
        }
    }

    private fun segment(ax: Float, ay: Float, bx: Float, by: Float, r: Float, out: ByteBuffer) {
        val x0 = floor(minOf(ax, bx) - r - 1).toInt().coerceAtLeast(0)
        val x1 = ceil(maxOf(ax, bx) + r + 1).toInt().coerceAtMost(side - 1)
        val y0 = floor(minOf(ay, by) - r - 1).toInt().coerceAtLeast(0)
        val y1 = ceil(maxOf(ay, by) + r + 1).toInt().coerceAtMost(side - 1)
        for (y in y0..y1) {
            for (x in x0..x1) {
                val d = distance(x + 0.5f, y + 0.5f, ax, ay, bx, by)
                // One pixel of linear fall-off at the pen's edge.
                val ink = ((r + 0.5f - d).coerceIn(0f, 1f) * 255f).toInt()
                val i = y * side + x
                if (ink > (out.get(i).toInt() and 0xFF)) out.put(i, ink.toByte())
            }
        }
    }

    private fun distance(px: Float, py: Float, ax: Float, ay: Float, bx: Float, by: Float): Float {
        val dx = bx - ax
        val dy = by - ay
        val len2 = dx * dx + dy * dy
        val t = if (len2 == 0f) 0f else (((px - ax) * dx + (py - ay) * dy) / len2).coerceIn(0f, 1f)
        val ex = px - (ax + t * dx)
        val ey = py - (ay + t * dy)
        return sqrt(ex * ex + ey * ey)
    }
}
