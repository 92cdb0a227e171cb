import SwiftUI

@main
struct DigitsApp: App {
    @StateObject private var model = DigitsModel()

    var body: some Scene {
        WindowGroup {
            ContentView()
                .environmentObject(model)
        }
    }
}
