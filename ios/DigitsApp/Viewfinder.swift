import CoreGraphics

/// The viewfinder square: the region of interest, centred, 60 % of the preview's shorter side.
/// The overlay draws it and the camera converts the same rectangle to frame pixels.
enum Viewfinder {
    static let side: CGFloat = 0.6

    static func rect(in size: CGSize) -> CGRect {
        let s = side * min(size.width, size.height)
        return CGRect(x: (size.width - s) / 2, y: (size.height - s) / 2, width: s, height: s)
    }
}
