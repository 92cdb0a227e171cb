import AVFoundation
import CoreGraphics
import Foundation

/// Runs the capture session and classifies the viewfinder square of every frame it can.
///
/// Frames arrive on one serial queue and `alwaysDiscardsLateVideoFrames` is on, so frames that
/// come while a frame is being classified are dropped, never queued.
final class CameraController: NSObject, AVCaptureVideoDataOutputSampleBufferDelegate {
    let session = AVCaptureSession()
    var onReading: ((Reading) -> Void)?
    var onError: ((String) -> Void)?

    private let sessionQueue = DispatchQueue(label: "dev.cnntoolkit.digits.session")
    private let frameQueue = DispatchQueue(label: "dev.cnntoolkit.digits.frames")
    private let lock = NSLock()
    private var classifier: Classifier?
    /// The viewfinder square in the frame's own (unrotated) coordinates, as fractions.
    private var normalizedRegion: CGRect?
    private var configured = false

    /// The back camera's frames are landscape; the app is portrait-only, where a quarter turn
    /// clockwise makes them upright (what Vision calls `.right`).
    private let rotationDegrees: Int32 = 90

    func setClassifier(_ c: Classifier) {
        lock.lock()
        classifier = c
        lock.unlock()
    }

    /// Set by the preview from `metadataOutputRectConverted(fromLayerRect:)`.
    func setNormalizedRegion(_ r: CGRect?) {
        lock.lock()
        normalizedRegion = r
        lock.unlock()
    }

    /// Asks for camera access if needed; false when refused.
    static func requestAccess() async -> Bool {
        switch AVCaptureDevice.authorizationStatus(for: .video) {
        case .authorized: return true
        case .notDetermined: return await AVCaptureDevice.requestAccess(for: .video)
        default: return false
        }
    }

    func start() {
        sessionQueue.async { [self] in
            if !configured {
                do {
                    try configure()
                    configured = true
                } catch {
                    onError?("\(error)")
                    return
                }
            }
            if !session.isRunning { session.startRunning() }
        }
    }

    func stop() {
        sessionQueue.async { [self] in
            if session.isRunning { session.stopRunning() }
        }
    }

    private func configure() throws {
        guard let device = AVCaptureDevice.default(.builtInWideAngleCamera, for: .video, position: .back) else {
            throw CameraError.noCamera
        }
        let input = try AVCaptureDeviceInput(device: device)
        session.beginConfiguration()
        defer { session.commitConfiguration() }
        session.sessionPreset = .hd1280x720
        guard session.canAddInput(input) else { throw CameraError.cannotUse("the camera input") }
        session.addInput(input)
        let output = AVCaptureVideoDataOutput()
        // Bi-planar full-range YUV: plane 0 is the luma the classifier reads, no conversion.
        output.videoSettings = [kCVPixelBufferPixelFormatTypeKey as String: kCVPixelFormatType_420YpCbCr8BiPlanarFullRange]
        output.alwaysDiscardsLateVideoFrames = true
        output.setSampleBufferDelegate(self, queue: frameQueue)
        guard session.canAddOutput(output) else { throw CameraError.cannotUse("the video output") }
        session.addOutput(output)
    }

    func captureOutput(_ output: AVCaptureOutput, didOutput sampleBuffer: CMSampleBuffer, from connection: AVCaptureConnection) {
        guard let pixels = CMSampleBufferGetImageBuffer(sampleBuffer) else { return }
        lock.lock()
        let classifier = self.classifier
        let region = normalizedRegion
        lock.unlock()
        guard let classifier else { return }

        CVPixelBufferLockBaseAddress(pixels, .readOnly)
        defer { CVPixelBufferUnlockBaseAddress(pixels, .readOnly) }
        guard let base = CVPixelBufferGetBaseAddressOfPlane(pixels, 0) else { return }
        let width = CVPixelBufferGetWidthOfPlane(pixels, 0)
        let height = CVPixelBufferGetHeightOfPlane(pixels, 0)
        let stride = CVPixelBufferGetBytesPerRowOfPlane(pixels, 0)
        // Wraps the luma plane without copying it; uniffi hands the bytes to Rust.
        let luma = Data(bytesNoCopy: base, count: stride * height, deallocator: .none)
        let roi = Self.frameRegion(region, width: width, height: height)
        do {
            let start = DispatchTime.now().uptimeNanoseconds
            let answer = try classifier.classifyFrame(
                bytes: luma, width: UInt32(width), height: UInt32(height), rowStride: UInt32(stride),
                format: .yuv420Y, rotationDegrees: rotationDegrees, roi: roi)
            // A quarter turn swaps the region's sides when made upright.
            onReading?(Reading(answer: answer, callMicros: microsSince(start),
                               roiWidth: Int(roi.height), roiHeight: Int(roi.width)))
        } catch {
            onError?("classifier error: \(error)")
        }
    }

    /// The normalized region in frame pixels, kept inside the frame; the centred square of 60 %
    /// of the shorter side until the preview has reported where the viewfinder is.
    static func frameRegion(_ r: CGRect?, width: Int, height: Int) -> Region {
        guard let r, r.width > 0, r.height > 0 else {
            let side = Int(Viewfinder.side * CGFloat(min(width, height)))
            return Region(left: UInt32((width - side) / 2), top: UInt32((height - side) / 2),
                          width: UInt32(side), height: UInt32(side))
        }
        let left = max(0, min(width - 1, Int((r.minX * CGFloat(width)).rounded())))
        let top = max(0, min(height - 1, Int((r.minY * CGFloat(height)).rounded())))
        let right = max(left + 1, min(width, Int((r.maxX * CGFloat(width)).rounded())))
        let bottom = max(top + 1, min(height, Int((r.maxY * CGFloat(height)).rounded())))
        return Region(left: UInt32(left), top: UInt32(top), width: UInt32(right - left), height: UInt32(bottom - top))
    }
}

enum CameraError: Error, CustomStringConvertible {
    case noCamera
    case cannotUse(String)

    var description: String {
        switch self {
        case .noCamera: return "no back camera (the simulator has none): use the draw pad"
        case .cannotUse(let what): return "cannot use \(what)"
        }
    }
}
