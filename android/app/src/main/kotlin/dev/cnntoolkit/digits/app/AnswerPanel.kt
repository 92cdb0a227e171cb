package dev.cnntoolkit.digits.app

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.height
import androidx.compose.foundation.layout.heightIn
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.layout.width
import androidx.compose.material3.LinearProgressIndicator
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.text.style.TextAlign
import androidx.compose.ui.text.style.TextOverflow
import androidx.compose.ui.unit.dp
import dev.cnntoolkit.digits.logic.Reading

/** The answer, its confidence, the top-3 bars and the latency; [hint] until there is a reading. */
@Composable
fun AnswerPanel(reading: Reading?, hint: String, modifier: Modifier = Modifier) {
    Column(
        modifier.fillMaxWidth().heightIn(min = 168.dp).padding(16.dp),
        verticalArrangement = Arrangement.spacedBy(6.dp),
    ) {
        if (reading == null) {
            Text(hint, style = MaterialTheme.typography.bodyLarge)
        } else {
            Answer(reading)
        }
    }
}

@Composable
private fun Answer(reading: Reading) {
    Column(Modifier.fillMaxWidth(), verticalArrangement = Arrangement.spacedBy(6.dp)) {
        Text(reading.headline, style = MaterialTheme.typography.headlineMedium)
        for (ranked in reading.top) {
            Row(verticalAlignment = Alignment.CenterVertically) {
                Text(ranked.label, Modifier.width(104.dp), maxLines = 1, overflow = TextOverflow.Ellipsis)
                LinearProgressIndicator(
                    progress = { ranked.confidence },
                    modifier = Modifier.weight(1f).height(10.dp),
                )
                Text(Reading.percent(ranked.confidence), Modifier.width(72.dp), textAlign = TextAlign.End)
            }
        }
        Text(
            reading.latency + if (reading.inverted) ", dark ink on light" else "",
            style = MaterialTheme.typography.bodySmall,
            color = MaterialTheme.colorScheme.onSurfaceVariant,
        )
    }
}
