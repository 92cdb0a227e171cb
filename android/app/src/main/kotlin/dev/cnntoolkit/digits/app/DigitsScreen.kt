package dev.cnntoolkit.digits.app

import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.material3.ExperimentalMaterial3Api
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.PrimaryTabRow
import androidx.compose.material3.Scaffold
import androidx.compose.material3.SegmentedButton
import androidx.compose.material3.SegmentedButtonDefaults
import androidx.compose.material3.SingleChoiceSegmentedButtonRow
import androidx.compose.material3.Tab
import androidx.compose.material3.Text
import androidx.compose.material3.TopAppBar
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableIntStateOf
import androidx.compose.runtime.saveable.rememberSaveable
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import androidx.lifecycle.viewmodel.compose.viewModel
import dev.cnntoolkit.digits.jni.Model

/** The app: a model switch, then the camera and draw-pad tabs. */
@OptIn(ExperimentalMaterial3Api::class)
@Composable
fun DigitsScreen(vm: DigitsViewModel = viewModel()) {
    val model by vm.model.collectAsStateWithLifecycle()
    val info by vm.info.collectAsStateWithLifecycle()
    val error by vm.error.collectAsStateWithLifecycle()
    var tab by rememberSaveable { mutableIntStateOf(0) }

    Scaffold(topBar = { TopAppBar(title = { Text(stringResource(R.string.app_name)) }) }) { padding ->
        Column(Modifier.padding(padding).fillMaxSize()) {
            ModelSwitch(model, vm::selectModel, Modifier.fillMaxWidth().padding(horizontal = 16.dp))
            val status = error ?: info?.let { "${it.dataset} model, kernels: ${it.kernels}" } ?: "loading the model..."
            Text(
                status,
                style = MaterialTheme.typography.bodySmall,
                color = if (error != null) MaterialTheme.colorScheme.error else MaterialTheme.colorScheme.onSurfaceVariant,
                modifier = Modifier.padding(horizontal = 16.dp, vertical = 4.dp),
            )
            PrimaryTabRow(selectedTabIndex = tab) {
                Tab(selected = tab == 0, onClick = { tab = 0 }, text = { Text(stringResource(R.string.tab_camera)) })
                Tab(selected = tab == 1, onClick = { tab = 1 }, text = { Text(stringResource(R.string.tab_draw)) })
            }
            // Leaving the camera tab disposes the preview, which unbinds the camera.
            when (tab) {
                0 -> CameraTab(vm, Modifier.fillMaxSize())
                else -> DrawTab(vm, Modifier.fillMaxSize())
            }
        }
    }
}

@OptIn(ExperimentalMaterial3Api::class)
@Composable
private fun ModelSwitch(model: Model, onSelect: (Model) -> Unit, modifier: Modifier = Modifier) {
    val choices = listOf(Model.MNIST to "MNIST", Model.FASHION_MNIST to "Fashion-MNIST")
    SingleChoiceSegmentedButtonRow(modifier) {
        choices.forEachIndexed { i, (m, name) ->
            SegmentedButton(
                selected = model == m,
                onClick = { onSelect(m) },
                shape = SegmentedButtonDefaults.itemShape(index = i, count = choices.size),
            ) { Text(name) }
        }
    }
}
