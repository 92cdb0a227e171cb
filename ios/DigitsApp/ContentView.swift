import SwiftUI
import UIKit

/// A model switch, then the camera and draw-pad tabs.
struct ContentView: View {
    @EnvironmentObject private var model: DigitsModel

    var body: some View {
        VStack(spacing: 0) {
            Picker("Model", selection: $model.selected) {
                Text("MNIST").tag(BundledModel.mnist)
                Text("Fashion-MNIST").tag(BundledModel.fashionMnist)
            }
            .pickerStyle(.segmented)
            .padding(.horizontal)
            Text(model.failure ?? model.status)
                .font(.caption)
                .foregroundStyle(model.failure == nil ? Color.secondary : Color.red)
                .padding(4)
            TabView {
                CameraTab()
                    .tabItem { Label("Camera", systemImage: "camera") }
                DrawTab()
                    .tabItem { Label("Draw", systemImage: "pencil.tip") }
            }
        }
    }
}

struct CameraTab: View {
    @EnvironmentObject private var model: DigitsModel
    @State private var access: Bool?

    var body: some View {
        VStack(spacing: 0) {
            switch access {
            case .some(true):
                ZStack {
                    CameraPreview(camera: model.camera)
                    ViewfinderOverlay(reading: model.cameraReading)
                }
                AnswerView(reading: model.cameraReading, hint: "Hold a handwritten digit inside the square")
            case .some(false):
                Spacer()
                Text("The camera tab needs camera access to classify what it sees. The draw pad works without it.")
                    .multilineTextAlignment(.center)
                    .padding()
                Button("Open Settings") {
                    if let url = URL(string: UIApplication.openSettingsURLString) { UIApplication.shared.open(url) }
                }
                Spacer()
            case .none:
                ProgressView()
            }
        }
        .task { access = await CameraController.requestAccess() }
        .onChange(of: access) { granted in
            if granted == true { model.camera.start() }
        }
        .onDisappear { model.camera.stop() }
        .onAppear { if access == true { model.camera.start() } }
    }
}

struct DrawTab: View {
    @EnvironmentObject private var model: DigitsModel

    var body: some View {
        VStack {
            DrawPadView(strokes: $model.strokes)
                .padding(.horizontal, 32)
                .padding(.top)
            Button("Clear") { model.clearPad() }
                .buttonStyle(.bordered)
            AnswerView(reading: model.drawReading, hint: "Draw a digit (or a piece of clothing) in the square")
            Spacer(minLength: 0)
        }
    }
}
