import CoreGraphics
import Foundation

/// App state: the classifier for the chosen model, the camera, the draw pad and their readings.
@MainActor
final class DigitsModel: ObservableObject {
    @Published var selected: BundledModel = .mnist {
        didSet { if selected != oldValue { load(selected) } }
    }
    @Published private(set) var status = "loading the model..."
    @Published private(set) var failure: String?
    @Published private(set) var cameraReading: Reading?
    @Published private(set) var drawReading: Reading?
    @Published var strokes: [[CGPoint]] = [] {
        didSet { classifyDrawing() }
    }

    let camera = CameraController()
    private var classifier: Classifier?
    private var drawBusy = false
    private var drawPending = false

    init() {
        camera.onReading = { [weak self] reading in
            Task { @MainActor in self?.cameraReading = reading }
        }
        camera.onError = { [weak self] message in
            Task { @MainActor in self?.failure = message }
        }
        load(selected)
    }

    private func load(_ model: BundledModel) {
        do {
            // Parsing a bundled model takes well under a millisecond: no need to leave the main thread.
            let c = try Classifier.bundled(model: model)
            classifier = c
            camera.setClassifier(c)
            status = "\(c.dataset()) model, kernels: \(c.kernels())"
            failure = nil
            cameraReading = nil
            classifyDrawing()
        } catch {
            failure = "cannot load the model: \(error)"
        }
    }

    func clearPad() {
        strokes = []
    }

    /// Classifies the drawing off the main thread; strokes drawn meanwhile are classified next,
    /// only the newest of them (the pad drops intermediate drawings while busy).
    private func classifyDrawing() {
        guard !drawBusy else {
            drawPending = true
            return
        }
        guard let classifier, !strokes.isEmpty else {
            drawReading = nil
            return
        }
        drawBusy = true
        let strokes = self.strokes
        Task.detached(priority: .userInitiated) { [weak self] in
            let result: Result<Reading, Error> = Result { try DrawPad.classify(strokes, with: classifier) }
            await self?.finishDrawing(result)
        }
    }

    private func finishDrawing(_ result: Result<Reading, Error>) {
        drawBusy = false
        switch result {
        case .success(let reading): drawReading = strokes.isEmpty ? nil : reading
        case .failure(let error): failure = "classifier error: \(error)"
        }
        if drawPending {
            drawPending = false
            classifyDrawing()
        }
    }
}
