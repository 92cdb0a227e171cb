import CoreGraphics
import Foundation

/// One of the three best classes, for a bar.
struct Bar: Hashable {
    let label: String
    let confidence: Float
}

/// What the screen shows for one classified frame or drawing, built from the classifier's `Answer`.
struct Reading {
    let label: String?
    let confidence: Float
    let bars: [Bar]
    let noDigit: String?
    let inverted: Bool
    let preprocessMicros: UInt64
    let inferenceMicros: UInt64
    /// Wall time of the whole `classifyFrame` call as the app saw it (the copy into Rust included).
    let callMicros: UInt64
    /// The digit's bounding box in fractions (0...1) of the upright region of interest.
    let box: CGRect?

    /// [roiWidth] x [roiHeight]: the upright region of interest the answer's box is measured in.
    init(answer: Answer, callMicros: UInt64, roiWidth: Int, roiHeight: Int) {
        label = answer.digit?.label
        confidence = answer.digit?.confidence ?? 0
        bars = (answer.digit?.top ?? []).map { Bar(label: $0.label, confidence: $0.confidence) }
        noDigit = answer.noDigitReason
        inverted = answer.inverted
        preprocessMicros = answer.preprocessMicros
        inferenceMicros = answer.inferenceMicros
        self.callMicros = callMicros
        if let b = answer.boundingBox, answer.digit != nil, roiWidth > 0, roiHeight > 0 {
            box = CGRect(
                x: CGFloat(b.left) / CGFloat(roiWidth), y: CGFloat(b.top) / CGFloat(roiHeight),
                width: CGFloat(b.width) / CGFloat(roiWidth), height: CGFloat(b.height) / CGFloat(roiHeight))
        } else {
            box = nil
        }
    }

    /// "7  98.6 %", or the reason no digit was found.
    var headline: String {
        if let label { return "\(label)  \(Reading.percent(confidence))" }
        return "no digit: \(noDigit ?? "unknown")"
    }

    /// "412 µs in the classifier (preprocess 350 + inference 62), call 430 µs"; without the split
    /// when the classifier timed both as one (preprocessMicros 0).
    var latency: String {
        let split = preprocessMicros > 0 ? " (preprocess \(preprocessMicros) + inference \(inferenceMicros))" : ""
        return "\(preprocessMicros + inferenceMicros) µs in the classifier\(split), call \(callMicros) µs"
    }

    /// 0.98612 -> "98.6 %", the same in every locale.
    static func percent(_ confidence: Float) -> String {
        String(format: "%.1f %%", locale: Locale(identifier: "en_US_POSIX"), Double(confidence) * 100)
    }
}

/// Microseconds since `start` (a `DispatchTime.now().uptimeNanoseconds`).
func microsSince(_ start: UInt64) -> UInt64 {
    (DispatchTime.now().uptimeNanoseconds - start) / 1_000
}
