import SwiftUI

/// The answer, its confidence, the top-3 bars and the latency; `hint` until there is a reading.
struct AnswerView: View {
    let reading: Reading?
    let hint: String

    var body: some View {
        VStack(alignment: .leading, spacing: 6) {
            if let reading {
                Text(reading.headline).font(.title.bold())
                ForEach(reading.bars, id: \.self) { bar in
                    HStack {
                        Text(bar.label).lineLimit(1).frame(width: 110, alignment: .leading)
                        ProgressView(value: Double(bar.confidence))
                        Text(Reading.percent(bar.confidence)).monospacedDigit().frame(width: 70, alignment: .trailing)
                    }
                }
                Text(reading.latency + (reading.inverted ? ", dark ink on light" : ""))
                    .font(.caption)
                    .foregroundStyle(.secondary)
            } else {
                Text(hint).font(.body)
            }
        }
        .frame(maxWidth: .infinity, minHeight: 150, alignment: .topLeading)
        .padding()
    }
}
