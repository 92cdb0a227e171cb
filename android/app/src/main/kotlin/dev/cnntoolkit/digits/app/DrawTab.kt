package dev.cnntoolkit.digits.app

import androidx.compose.foundation.Canvas
import androidx.compose.foundation.background
import androidx.compose.foundation.gestures.detectDragGestures
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.aspectRatio
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.shape.RoundedCornerShape
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.draw.clip
import androidx.compose.ui.geometry.Offset
import androidx.compose.ui.graphics.Color
import androidx.compose.ui.graphics.Path
import androidx.compose.ui.graphics.StrokeCap
import androidx.compose.ui.graphics.StrokeJoin
import androidx.compose.ui.graphics.drawscope.Stroke
import androidx.compose.ui.input.pointer.pointerInput
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.unit.IntSize
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import dev.cnntoolkit.digits.logic.PadPoint

/** A square pad to draw on; every stroke is classified through the same classifier as the camera. */
@Composable
fun DrawTab(vm: DigitsViewModel, modifier: Modifier = Modifier) {
    val strokes by vm.strokes.collectAsStateWithLifecycle()
    val reading by vm.drawReading.collectAsStateWithLifecycle()
    Column(modifier.padding(16.dp), horizontalAlignment = Alignment.CenterHorizontally) {
        DrawPad(strokes, vm, Modifier.fillMaxWidth(0.85f).aspectRatio(1f))
        OutlinedButton(onClick = vm::clearPad, modifier = Modifier.padding(top = 8.dp)) {
            Text(stringResource(R.string.clear))
        }
        AnswerPanel(reading, stringResource(R.string.draw_hint))
    }
}

@Composable
private fun DrawPad(strokes: List<List<PadPoint>>, vm: DigitsViewModel, modifier: Modifier = Modifier) {
    Canvas(
        modifier
            .clip(RoundedCornerShape(12.dp))
            .background(Color.White)
            .pointerInput(vm) {
                detectDragGestures(
                    onDragStart = { vm.startStroke(it.toPad(size)) },
                    onDrag = { change, _ ->
                        change.consume()
                        vm.extendStroke(change.position.toPad(size))
                    },
                )
            },
    ) {
        // What the user sees is what InkRaster renders: the same points and pen width.
        val pen = PEN_WIDTH * size.minDimension
        for (stroke in strokes) {
            val first = stroke.firstOrNull() ?: continue
            if (stroke.size == 1) {
                drawCircle(Color.Black, pen / 2, Offset(first.x * size.width, first.y * size.height))
                continue
            }
            val path = Path().apply {
                moveTo(first.x * size.width, first.y * size.height)
                for (p in stroke.drop(1)) lineTo(p.x * size.width, p.y * size.height)
            }
            drawPath(path, Color.Black, style = Stroke(width = pen, cap = StrokeCap.Round, join = StrokeJoin.Round))
        }
    }
}

private fun Offset.toPad(size: IntSize) = PadPoint(x / size.width, y / size.height)
