import AVFoundation
import SwiftUI
import UIKit

/// The live preview (aspect fill) that also tells the camera where the viewfinder square is in
/// frame coordinates, converted by the preview layer itself (gravity, crop and orientation).
struct CameraPreview: UIViewRepresentable {
    let camera: CameraController

    func makeUIView(context: Context) -> PreviewView {
        let view = PreviewView()
        view.camera = camera
        view.previewLayer.session = camera.session
        view.previewLayer.videoGravity = .resizeAspectFill
        return view
    }

    func updateUIView(_ view: PreviewView, context: Context) {}

    final class PreviewView: UIView {
        weak var camera: CameraController?
        private var observer: NSObjectProtocol?

        override class var layerClass: AnyClass { AVCaptureVideoPreviewLayer.self }
        var previewLayer: AVCaptureVideoPreviewLayer { layer as! AVCaptureVideoPreviewLayer }

        override init(frame: CGRect) {
            super.init(frame: frame)
            // The conversion is only meaningful once the session runs.
            observer = NotificationCenter.default.addObserver(
                forName: AVCaptureSession.didStartRunningNotification, object: nil, queue: .main
            ) { [weak self] _ in
                Task { @MainActor in self?.reportRegion() }
            }
        }

        required init?(coder: NSCoder) { fatalError("not used from a storyboard") }

        deinit {
            if let observer { NotificationCenter.default.removeObserver(observer) }
        }

        override func layoutSubviews() {
            super.layoutSubviews()
            reportRegion()
        }

        private func reportRegion() {
            guard bounds.width > 0, bounds.height > 0, previewLayer.connection != nil else { return }
            let square = Viewfinder.rect(in: bounds.size)
            camera?.setNormalizedRegion(previewLayer.metadataOutputRectConverted(fromLayerRect: square))
        }
    }
}

/// Dims everything but the viewfinder square and outlines the digit found in it.
struct ViewfinderOverlay: View {
    let reading: Reading?

    var body: some View {
        GeometryReader { geo in
            let square = Viewfinder.rect(in: geo.size)
            ZStack {
                Path { p in
                    p.addRect(CGRect(origin: .zero, size: geo.size))
                    p.addRect(square)
                }
                .fill(Color.black.opacity(0.45), style: FillStyle(eoFill: true))
                Path { $0.addRect(square) }
                    .stroke(Color.white, lineWidth: 3)
                if let box = reading?.box {
                    Path {
                        $0.addRect(CGRect(
                            x: square.minX + box.minX * square.width, y: square.minY + box.minY * square.height,
                            width: box.width * square.width, height: box.height * square.height))
                    }
                    .stroke(Color.green, lineWidth: 2)
                }
            }
        }
        .allowsHitTesting(false)
    }
}
