package dev.cnntoolkit.digits.app

import android.Manifest
import android.content.Context
import android.content.Intent
import android.content.pm.PackageManager
import android.net.Uri
import android.provider.Settings
import androidx.activity.compose.rememberLauncherForActivityResult
import androidx.activity.result.contract.ActivityResultContracts
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.Preview
import androidx.camera.core.UseCaseGroup
import androidx.camera.core.resolutionselector.AspectRatioStrategy
import androidx.camera.core.resolutionselector.ResolutionSelector
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.camera.view.PreviewView
import androidx.compose.foundation.Canvas
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Box
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.material3.Button
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.DisposableEffect
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.saveable.rememberSaveable
import androidx.compose.runtime.setValue
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.geometry.Offset
import androidx.compose.ui.geometry.Size
import androidx.compose.ui.graphics.Color
import androidx.compose.ui.graphics.drawscope.Stroke
import androidx.compose.ui.platform.LocalContext
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.unit.dp
import androidx.compose.ui.viewinterop.AndroidView
import androidx.core.content.ContextCompat
import androidx.core.view.doOnLayout
import androidx.lifecycle.Lifecycle
import androidx.lifecycle.LifecycleOwner
import androidx.lifecycle.compose.LifecycleEventEffect
import androidx.lifecycle.compose.LocalLifecycleOwner
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import dev.cnntoolkit.digits.logic.Reading
import dev.cnntoolkit.digits.logic.Viewfinder
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/** Live preview with the viewfinder square, classified frame by frame, and the answer below. */
@Composable
fun CameraTab(vm: DigitsViewModel, modifier: Modifier = Modifier) {
    val context = LocalContext.current
    var granted by remember { mutableStateOf(hasCameraPermission(context)) }
    var asked by rememberSaveable { mutableStateOf(false) }
    val request = rememberLauncherForActivityResult(ActivityResultContracts.RequestPermission()) {
        granted = it
        asked = true
    }
    // Granted in the system settings while the app was in the background.
    LifecycleEventEffect(Lifecycle.Event.ON_RESUME) { granted = hasCameraPermission(context) }
    LaunchedEffect(Unit) {
        if (!granted && !asked) request.launch(Manifest.permission.CAMERA)
    }
    if (!granted) {
        PermissionRationale(
            onAsk = { request.launch(Manifest.permission.CAMERA) },
            onSettings = { openAppSettings(context) },
            modifier = modifier,
        )
        return
    }

    val reading by vm.cameraReading.collectAsStateWithLifecycle()
    var cameraError by remember { mutableStateOf<String?>(null) }
    Column(modifier) {
        Box(Modifier.weight(1f).fillMaxWidth()) {
            CameraPreview(vm.analyzer, onError = { cameraError = it }, modifier = Modifier.fillMaxSize())
            ViewfinderOverlay(vm.viewfinder, reading, Modifier.fillMaxSize())
        }
        AnswerPanel(reading, cameraError ?: stringResource(R.string.camera_hint))
    }
}

/**
 * A CameraX preview whose ImageAnalysis shares the PreviewView's ViewPort: the analysis frames'
 * cropRect is then exactly the part of the sensor the preview shows, which is what [Viewfinder]
 * maps the square into.
 */
@Composable
private fun CameraPreview(analyzer: ImageAnalysis.Analyzer, onError: (String) -> Unit, modifier: Modifier = Modifier) {
    val context = LocalContext.current
    val lifecycleOwner = LocalLifecycleOwner.current
    val previewView = remember {
        PreviewView(context).apply {
            // A TextureView composes correctly with the overlay and the tab animation.
            implementationMode = PreviewView.ImplementationMode.COMPATIBLE
            scaleType = PreviewView.ScaleType.FILL_CENTER
        }
    }
    DisposableEffect(lifecycleOwner, analyzer) {
        val executor = Executors.newSingleThreadExecutor()
        val future = ProcessCameraProvider.getInstance(context)
        var provider: ProcessCameraProvider? = null
        var disposed = false
        future.addListener({
            if (disposed) return@addListener
            val p = future.get()
            provider = p
            // The ViewPort needs the view's size: bind once it is laid out.
            previewView.doOnLayout {
                if (!disposed) bindUseCases(p, lifecycleOwner, previewView, analyzer, executor, onError)
            }
        }, ContextCompat.getMainExecutor(context))
        onDispose {
            disposed = true
            provider?.unbindAll()
            executor.shutdown()
        }
    }
    AndroidView(factory = { previewView }, modifier = modifier)
}

private fun bindUseCases(
    provider: ProcessCameraProvider,
    owner: LifecycleOwner,
    view: PreviewView,
    analyzer: ImageAnalysis.Analyzer,
    executor: ExecutorService,
    onError: (String) -> Unit,
) {
    val viewPort = view.viewPort ?: return
    val fourByThree = ResolutionSelector.Builder()
        .setAspectRatioStrategy(AspectRatioStrategy.RATIO_4_3_FALLBACK_AUTO_STRATEGY)
        .build()
    val preview = Preview.Builder().setResolutionSelector(fourByThree).build()
    preview.setSurfaceProvider(view.surfaceProvider)
    val analysis = ImageAnalysis.Builder()
        .setResolutionSelector(fourByThree)
        .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
        .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_YUV_420_888)
        .build()
    analysis.setAnalyzer(executor, analyzer)
    val group = UseCaseGroup.Builder()
        .setViewPort(viewPort)
        .addUseCase(preview)
        .addUseCase(analysis)
        .build()
    try {
        provider.unbindAll()
        provider.bindToLifecycle(owner, CameraSelector.DEFAULT_BACK_CAMERA, group)
    } catch (e: IllegalArgumentException) {
        onError("no back camera: ${e.message}") // an emulator without a camera, for instance
    } catch (e: IllegalStateException) {
        onError("cannot open the camera: ${e.message}")
    }
}

/** Dims everything but the viewfinder square and outlines the digit found in it. */
@Composable
private fun ViewfinderOverlay(viewfinder: Viewfinder, reading: Reading?, modifier: Modifier = Modifier) {
    Canvas(modifier) {
        val r = viewfinder.inView(size.width, size.height)
        val dim = Color.Black.copy(alpha = 0.45f)
        drawRect(dim, Offset.Zero, Size(size.width, r.top))
        drawRect(dim, Offset(0f, r.bottom), Size(size.width, size.height - r.bottom))
        drawRect(dim, Offset(0f, r.top), Size(r.left, r.height))
        drawRect(dim, Offset(r.right, r.top), Size(size.width - r.right, r.height))
        drawRect(Color.White, Offset(r.left, r.top), Size(r.width, r.height), style = Stroke(3.dp.toPx()))
        reading?.box?.let { b ->
            drawRect(
                Color(0xFF4CAF50),
                Offset(r.left + b.left * r.width, r.top + b.top * r.height),
                Size(b.width * r.width, b.height * r.height),
                style = Stroke(2.dp.toPx()),
            )
        }
    }
}

@Composable
private fun PermissionRationale(onAsk: () -> Unit, onSettings: () -> Unit, modifier: Modifier = Modifier) {
    Column(
        modifier.padding(24.dp),
        verticalArrangement = Arrangement.spacedBy(12.dp, Alignment.CenterVertically),
        horizontalAlignment = Alignment.CenterHorizontally,
    ) {
        Text(stringResource(R.string.camera_permission))
        Button(onClick = onAsk) { Text(stringResource(R.string.allow_camera)) }
        // After "don't ask again" the request returns at once: only the settings can grant it.
        OutlinedButton(onClick = onSettings) { Text(stringResource(R.string.open_settings)) }
    }
}

private fun hasCameraPermission(context: Context) =
    ContextCompat.checkSelfPermission(context, Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED

private fun openAppSettings(context: Context) {
    val intent = Intent(Settings.ACTION_APPLICATION_DETAILS_SETTINGS, Uri.fromParts("package", context.packageName, null))
    context.startActivity(intent.addFlags(Intent.FLAG_ACTIVITY_NEW_TASK))
}
