import CoreGraphics
import Foundation
import SwiftUI

/// Draw-pad strokes are points in fractions (0...1) of the pad's side.
enum DrawPad {
    /// Pen width as a fraction of the pad's side: about an MNIST stroke for a pad-sized digit.
    static let penWidth: CGFloat = 0.07
    /// Side of the gray square the strokes are rendered into before the classifier's preprocessing.
    static let pixels = 112

    /// Renders the strokes as ink 255 on 0 (as MNIST) into an 8-bit gray square. Centring and
    /// scaling to 28x28 are the classifier's own preprocessing, the same as for camera frames.
    static func render(_ strokes: [[CGPoint]]) -> Data {
        let side = pixels
        var gray = [UInt8](repeating: 0, count: side * side)
        gray.withUnsafeMutableBytes { raw in
            guard let ctx = CGContext(
                data: raw.baseAddress, width: side, height: side, bitsPerComponent: 8, bytesPerRow: side,
                space: CGColorSpaceCreateDeviceGray(), bitmapInfo: CGImageAlphaInfo.none.rawValue)
            else { return }
            // Core Graphics puts the origin bottom-left; the pad's row 0 is its top.
            ctx.translateBy(x: 0, y: CGFloat(side))
            ctx.scaleBy(x: 1, y: -1)
            ctx.setStrokeColor(gray: 1, alpha: 1)
            ctx.setFillColor(gray: 1, alpha: 1)
            let pen = penWidth * CGFloat(side)
            ctx.setLineWidth(pen)
            ctx.setLineCap(.round)
            ctx.setLineJoin(.round)
            for stroke in strokes {
                let points = stroke.map { CGPoint(x: $0.x * CGFloat(side), y: $0.y * CGFloat(side)) }
                guard let first = points.first else { continue }
                if points.count == 1 {
                    ctx.fillEllipse(in: CGRect(x: first.x - pen / 2, y: first.y - pen / 2, width: pen, height: pen))
                } else {
                    ctx.addLines(between: points)
                    ctx.strokePath()
                }
            }
        }
        return Data(gray)
    }

    /// Classifies a drawing as a gray frame, with no crop and no rotation.
    static func classify(_ strokes: [[CGPoint]], with classifier: Classifier) throws -> Reading {
        let bytes = render(strokes)
        let side = UInt32(pixels)
        let start = DispatchTime.now().uptimeNanoseconds
        let answer = try classifier.classifyFrame(
            bytes: bytes, width: side, height: side, rowStride: side, format: .gray8,
            rotationDegrees: 0, roi: nil)
        return Reading(answer: answer, callMicros: microsSince(start), roiWidth: pixels, roiHeight: pixels)
    }
}

/// A square to draw on with a finger; what it shows is what `DrawPad.render` classifies.
struct DrawPadView: View {
    @Binding var strokes: [[CGPoint]]
    @State private var drawing = false

    var body: some View {
        GeometryReader { geo in
            let side = min(geo.size.width, geo.size.height)
            Canvas { context, _ in
                let pen = DrawPad.penWidth * side
                for stroke in strokes {
                    let points = stroke.map { CGPoint(x: $0.x * side, y: $0.y * side) }
                    guard let first = points.first else { continue }
                    if points.count == 1 {
                        let dot = CGRect(x: first.x - pen / 2, y: first.y - pen / 2, width: pen, height: pen)
                        context.fill(Path(ellipseIn: dot), with: .color(.black))
                    } else {
                        var path = Path()
                        path.addLines(points)
                        context.stroke(path, with: .color(.black),
                                       style: StrokeStyle(lineWidth: pen, lineCap: .round, lineJoin: .round))
                    }
                }
            }
            .frame(width: side, height: side)
            .background(Color.white)
            .clipShape(RoundedRectangle(cornerRadius: 12))
            .contentShape(Rectangle())
            .gesture(
                DragGesture(minimumDistance: 0)
                    .onChanged { drag in
                        let p = CGPoint(x: drag.location.x / side, y: drag.location.y / side)
                        if drawing, !strokes.isEmpty {
                            strokes[strokes.count - 1].append(p)
                        } else {
                            drawing = true
                            strokes.append([p])
                        }
                    }
                    .onEnded { _ in drawing = false }
            )
        }
        .aspectRatio(1, contentMode: .fit)
    }
}
