package dev.cnntoolkit.digits.logic

import kotlin.math.min
import kotlin.math.roundToInt

/** A rectangle in pixels; right and bottom are exclusive (android.graphics.Rect's convention). */
data class PixelRect(val left: Int, val top: Int, val right: Int, val bottom: Int) {
    val width: Int get() = right - left
    val height: Int get() = bottom - top
}

/** A rectangle in view coordinates (floats, as Compose and Android views draw). */
data class ViewRect(val left: Float, val top: Float, val right: Float, val bottom: Float) {
    val width: Float get() = right - left
    val height: Float get() = bottom - top
}

/**
 * The viewfinder square: the region of interest the user aims at the digit.
 *
 * It is placed in the visible preview, whose content is exactly the analysis image's crop
 * rectangle made upright (Preview and ImageAnalysis share the PreviewView's ViewPort, so CameraX
 * gives both the same field of view). The same object draws the overlay ([inView]) and computes
 * the crop handed to the classifier ([inFrame]), so the two cannot disagree.
 *
 * @param side side of the square as a fraction of the preview's shorter side, in (0, 1].
 * @param centreX horizontal centre as a fraction of the preview's width.
 * @param centreY vertical centre as a fraction of the preview's height.
 */
data class Viewfinder(val side: Float = 0.6f, val centreX: Float = 0.5f, val centreY: Float = 0.5f) {
    init {
        require(side > 0f && side <= 1f) { "side must be in (0, 1], got $side" }
        require(centreX in 0f..1f && centreY in 0f..1f) { "centre must lie in the preview" }
    }

    /** The square in a preview of [width] x [height] view pixels, kept inside the preview. */
    fun inView(width: Float, height: Float): ViewRect {
        val s = side * min(width, height)
        val left = (centreX * width - s / 2).coerceIn(0f, width - s)
        val top = (centreY * height - s / 2).coerceIn(0f, height - s)
        return ViewRect(left, top, left + s, top + s)
    }

    /**
     * The square in the upright crop (the crop rotated by [rotationDegrees] clockwise), in upright
     * pixels: the preview shows the upright crop scaled uniformly to fill the view, so fractions of
     * the preview are fractions of the upright crop.
     */
    fun inUpright(crop: PixelRect, rotationDegrees: Int): PixelRect {
        val swaps = quarterTurns(rotationDegrees) % 2 == 1
        val w = if (swaps) crop.height else crop.width
        val h = if (swaps) crop.width else crop.height
        val s = (side * min(w, h)).roundToInt().coerceIn(1, min(w, h))
        val left = (centreX * w - s / 2f).roundToInt().coerceIn(0, w - s)
        val top = (centreY * h - s / 2f).roundToInt().coerceIn(0, h - s)
        return PixelRect(left, top, left + s, top + s)
    }

    /**
     * The square in frame (buffer) pixels before rotation, as the classifier's crop argument:
     * [crop] is the ImageProxy's cropRect, [rotationDegrees] its imageInfo.rotationDegrees
     * (the clockwise turn that makes the buffer upright).
     */
    fun inFrame(crop: PixelRect, rotationDegrees: Int): PixelRect =
        uprightToFrame(inUpright(crop, rotationDegrees), crop, rotationDegrees)

    companion object {
        /** 0, 90, 180 or 270 degrees as 0..3 clockwise quarter turns. */
        fun quarterTurns(rotationDegrees: Int): Int {
            require(rotationDegrees % 90 == 0) { "rotation must be a multiple of 90, got $rotationDegrees" }
            return Math.floorMod(rotationDegrees / 90, 4)
        }

        /**
         * Maps a rectangle of the upright crop back to frame pixels. A clockwise quarter turn
         * takes frame pixel (x, y) of a W x H crop to upright (H-1-y, x); this is its inverse,
         * on rectangles with exclusive ends.
         */
        fun uprightToFrame(r: PixelRect, crop: PixelRect, rotationDegrees: Int): PixelRect {
            val w = crop.width
            val h = crop.height
            val local = when (quarterTurns(rotationDegrees)) {
                0 -> r
                1 -> PixelRect(r.top, h - r.right, r.bottom, h - r.left)
                2 -> PixelRect(w - r.right, h - r.bottom, w - r.left, h - r.top)
                else -> PixelRect(w - r.bottom, r.left, w - r.top, r.right)
            }
            return PixelRect(local.left + crop.left, local.top + crop.top, local.right + crop.left, local.bottom + crop.top)
        }
    }
}
