package dev.cnntoolkit.digits.app

import androidx.lifecycle.ViewModel
import androidx.lifecycle.viewModelScope
import dev.cnntoolkit.digits.jni.ClassifierException
import dev.cnntoolkit.digits.jni.FrameResult
import dev.cnntoolkit.digits.jni.Model
import dev.cnntoolkit.digits.logic.ClassifierSlot
import dev.cnntoolkit.digits.logic.InkRaster
import dev.cnntoolkit.digits.logic.PadPoint
import dev.cnntoolkit.digits.logic.Reading
import dev.cnntoolkit.digits.logic.Viewfinder
import kotlinx.coroutines.asCoroutineDispatcher
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.combine
import kotlinx.coroutines.flow.conflate
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.launch
import java.nio.ByteBuffer
import java.util.concurrent.Executors

/** Pen width of the draw pad as a fraction of its side: about an MNIST stroke for a pad-sized digit. */
const val PEN_WIDTH = 0.07f

/** Side of the gray square the draw pad is rendered into before the classifier's preprocessing. */
private const val PAD_PIXELS = 112

/** Shown about the loaded model. */
data class ModelInfo(val model: Model, val dataset: String, val kernels: String)

/**
 * Owns the classifier (one at a time, swapped when the user picks the other model), the camera
 * analyzer, and the draw pad's strokes. Survives rotation; closes the classifier when cleared.
 */
class DigitsViewModel : ViewModel() {
    val viewfinder = Viewfinder(side = 0.6f)
    private val slot = ClassifierSlot<LoadedModel>()

    private val selected = MutableStateFlow(Model.MNIST)
    val model: StateFlow<Model> = selected.asStateFlow()

    private val loaded = MutableStateFlow<ModelInfo?>(null)
    val info: StateFlow<ModelInfo?> = loaded.asStateFlow()

    private val failure = MutableStateFlow<String?>(null)
    val error: StateFlow<String?> = failure.asStateFlow()

    private val camera = MutableStateFlow<Reading?>(null)
    val cameraReading: StateFlow<Reading?> = camera.asStateFlow()

    private val drawing = MutableStateFlow<List<List<PadPoint>>>(emptyList())
    val strokes: StateFlow<List<List<PadPoint>>> = drawing.asStateFlow()

    private val pad = MutableStateFlow<Reading?>(null)
    val drawReading: StateFlow<Reading?> = pad.asStateFlow()

    val analyzer = DigitAnalyzer(slot, viewfinder, onReading = { camera.value = it }, onError = { failure.value = it })

    // Loading models in order on one thread: the last model picked is the one that stays.
    private val loader = Executors.newSingleThreadExecutor().asCoroutineDispatcher()

    // The draw pad is classified on its own thread; used only there, so no locking.
    private val padThread = Executors.newSingleThreadExecutor().asCoroutineDispatcher()
    private val raster = InkRaster(PAD_PIXELS, PEN_WIDTH)
    private val padPixels: ByteBuffer = ByteBuffer.allocateDirect(PAD_PIXELS * PAD_PIXELS)
    private val padResult = FrameResult()

    init {
        selectModel(Model.MNIST)
        // Conflated: strokes drawn while a drawing is being classified replace each other, and
        // only the newest is classified next (the draw pad drops drawings while busy).
        viewModelScope.launch(padThread) {
            combine(drawing, loaded) { strokes, info -> strokes to info }.conflate().collect { (strokes, info) ->
                pad.value = if (info == null) null else classifyDrawing(strokes)
            }
        }
    }

    fun selectModel(model: Model) {
        selected.value = model
        viewModelScope.launch(loader) {
            try {
                val next = LoadedModel.bundled(model)
                slot.replace(next)
                camera.value = null
                failure.value = null
                loaded.value = ModelInfo(model, next.dataset, next.kernels)
            } catch (e: ClassifierException) {
                failure.value = "cannot load $model: error ${e.code}: ${e.message}"
            }
        }
    }

    fun startStroke(p: PadPoint) = drawing.update { it + listOf(listOf(p)) }

    fun extendStroke(p: PadPoint) = drawing.update { strokes ->
        if (strokes.isEmpty()) listOf(listOf(p)) else strokes.dropLast(1) + listOf(strokes.last() + p)
    }

    fun clearPad() {
        drawing.value = emptyList()
    }

    /** Renders the strokes and classifies them as a gray frame: the camera's preprocessing, not a copy. */
    private fun classifyDrawing(strokes: List<List<PadPoint>>): Reading? {
        if (strokes.isEmpty()) return null
        raster.render(strokes, padPixels)
        return try {
            slot.use { model ->
                val start = System.nanoTime()
                model.classifier.classifyFrame(
                    padPixels, PAD_PIXELS, PAD_PIXELS, PAD_PIXELS, 1, 0,
                    0, 0, PAD_PIXELS, PAD_PIXELS, padResult,
                )
                padResult.toReading(model.labels, (System.nanoTime() - start) / 1_000, PAD_PIXELS, PAD_PIXELS)
            }
        } catch (e: ClassifierException) {
            failure.value = "classifier error ${e.code}: ${e.message}"
            null
        }
    }

    override fun onCleared() {
        slot.clear()
        loader.close()
        padThread.close()
    }
}
