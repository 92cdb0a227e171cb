//! Input frames: pixel formats, strides, crop and rotation, validated once so that pixel reads
//! in the pipeline cannot go out of bounds.

use crate::error::Error;

/// Largest accepted frame width/height. Keeps every intermediate sum of the area sampler inside
/// `u64` (see `resample`) and far above any camera or screen size.
pub const MAX_FRAME_DIM: usize = 65_535;

/// Layout of the pixel bytes. Only luminance is used, so the YUV formats read just their Y plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// 1 byte per pixel, 0 = black.
    Gray8,
    /// 4 bytes per pixel, R G B A in memory order (Android `Bitmap.Config.ARGB_8888`, PNG RGBA).
    /// Luma is BT.601 in integers; pixels with alpha < 255 are composited over white (drawing
    /// apps export ink on a transparent canvas).
    Rgba8888,
    /// 4 bytes per pixel, B G R A in memory order (iOS `kCVPixelFormatType_32BGRA`). Same rules.
    Bgra8888,
    /// Android NV21 (camera1 preview): a full-resolution Y plane (`row_stride` bytes per row,
    /// `height` rows) followed by interleaved V/U, which is ignored. Pass the whole buffer.
    Nv21,
    /// Android `YUV_420_888` (camera2 / CameraX `ImageProxy`): pass `planes[0]`'s buffer and its
    /// `rowStride`. The Y plane's pixel stride is always 1 on Android, so it is not a parameter.
    Yuv420Y,
}

impl PixelFormat {
    /// Bytes per pixel of the plane that is read.
    pub const fn bytes_per_pixel(self) -> usize {
        match self {
            PixelFormat::Gray8 | PixelFormat::Nv21 | PixelFormat::Yuv420Y => 1,
            PixelFormat::Rgba8888 | PixelFormat::Bgra8888 => 4,
        }
    }
}

/// A borrowed image buffer. Construct with [`Frame::new`], which checks that every pixel of the
/// `width x height` image lies inside `data`.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    data: &'a [u8],
    format: PixelFormat,
    width: usize,
    height: usize,
    row_stride: usize,
}

impl<'a> Frame<'a> {
    /// `row_stride` is in bytes (>= `width * bytes_per_pixel`); padding bytes are never read.
    /// `data` must hold at least `(height - 1) * row_stride + width * bytes_per_pixel` bytes (the
    /// last row need not be padded, as with Android `Image` planes).
    pub fn new(data: &'a [u8], format: PixelFormat, width: usize, height: usize, row_stride: usize) -> Result<Self, Error> {
        if width == 0 || height == 0 {
            return Err(Error::FrameZeroSize);
        }
        if width > MAX_FRAME_DIM || height > MAX_FRAME_DIM {
            return Err(Error::FrameTooLarge { width, height });
        }
        // Cannot overflow: width <= 65535, bpp <= 4.
        let row_bytes = width * format.bytes_per_pixel();
        if row_stride < row_bytes {
            return Err(Error::StrideTooSmall { row_stride, min: row_bytes });
        }
        let needed = (height - 1)
            .checked_mul(row_stride)
            .and_then(|n| n.checked_add(row_bytes))
            .ok_or(Error::BufferTooShort { needed: usize::MAX, got: data.len() })?;
        if data.len() < needed {
            return Err(Error::BufferTooShort { needed, got: data.len() });
        }
        Ok(Frame { data, format, width, height, row_stride })
    }

    /// A tightly packed 8-bit grayscale image.
    pub fn gray(data: &'a [u8], width: usize, height: usize) -> Result<Self, Error> {
        Self::new(data, PixelFormat::Gray8, width, height, width)
    }

    pub fn width(&self) -> usize {
        self.width
    }
    pub fn height(&self) -> usize {
        self.height
    }
    pub fn format(&self) -> PixelFormat {
        self.format
    }
    pub fn row_stride(&self) -> usize {
        self.row_stride
    }
}

/// Clockwise rotation that makes the frame upright: Android's `ImageInfo.getRotationDegrees()`
/// / camera `SENSOR_ORIENTATION` convention. A portrait phone with a landscape sensor usually
/// reports 90.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rotation {
    #[default]
    R0,
    R90,
    R180,
    R270,
}

impl Rotation {
    /// `degrees` modulo 360 (negative allowed); `None` unless a multiple of 90.
    pub const fn from_degrees(degrees: i32) -> Option<Rotation> {
        match degrees.rem_euclid(360) {
            0 => Some(Rotation::R0),
            90 => Some(Rotation::R90),
            180 => Some(Rotation::R180),
            270 => Some(Rotation::R270),
            _ => None,
        }
    }

    const fn swaps_axes(self) -> bool {
        matches!(self, Rotation::R90 | Rotation::R270)
    }
}

/// A rectangle in frame (buffer) coordinates, before rotation: it moves with the sensor, not
/// with the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roi {
    pub x: usize,
    pub y: usize,
    pub width: usize,
    pub height: usize,
}

impl Roi {
    /// The largest centred square of a `width x height` frame (the usual viewfinder guide box;
    /// it is rotation-invariant, so no coordinate mapping is needed).
    pub const fn centre_square(width: usize, height: usize) -> Roi {
        let side = if width < height { width } else { height };
        Roi { x: (width - side) / 2, y: (height - side) / 2, width: side, height: side }
    }

    /// A centred square of `percent`% (1..=100, clamped) of the shorter side, at least 1 pixel
    /// (an empty frame gives an empty ROI, which [`crate::preprocess::preprocess`] rejects like
    /// any other). Exact for every `usize` size.
    pub const fn centre_square_percent(width: usize, height: usize, percent: usize) -> Roi {
        let p = if percent == 0 {
            1
        } else if percent > 100 {
            100
        } else {
            percent
        };
        let short = if width < height { width } else { height };
        // floor(short * p / 100) without overflowing: short = 100q + r.
        let s = short / 100 * p + short % 100 * p / 100;
        let side = if s == 0 && short > 0 { 1 } else { s };
        Roi { x: (width - side) / 2, y: (height - side) / 2, width: side, height: side }
    }
}

/// Reads upright luma pixels of the ROI of a validated frame.
pub(crate) struct Source<'a> {
    frame: Frame<'a>,
    roi: Roi,
    rotation: Rotation,
    /// Upright (rotated) ROI size.
    pub(crate) width: usize,
    pub(crate) height: usize,
}

impl<'a> Source<'a> {
    pub(crate) fn new(frame: Frame<'a>, roi: Option<Roi>, rotation: Rotation) -> Result<Self, Error> {
        let roi = roi.unwrap_or(Roi { x: 0, y: 0, width: frame.width, height: frame.height });
        let fits = |start: usize, len: usize, total: usize| len > 0 && start < total && len <= total - start;
        if !fits(roi.x, roi.width, frame.width) || !fits(roi.y, roi.height, frame.height) {
            return Err(Error::BadRoi);
        }
        let (width, height) = if rotation.swaps_axes() { (roi.height, roi.width) } else { (roi.width, roi.height) };
        Ok(Source { frame, roi, rotation, width, height })
    }

    /// Luma of upright pixel (`ux`, `uy`), `ux < width`, `uy < height`.
    #[inline]
    pub(crate) fn luma(&self, ux: usize, uy: usize) -> u8 {
        let (rw, rh) = (self.roi.width, self.roi.height);
        // Inverse of the clockwise rotation: where the upright pixel sits in the ROI.
        let (sx, sy) = match self.rotation {
            Rotation::R0 => (ux, uy),
            Rotation::R90 => (uy, rh - 1 - ux),
            Rotation::R180 => (rw - 1 - ux, rh - 1 - uy),
            Rotation::R270 => (rw - 1 - uy, ux),
        };
        let f = &self.frame;
        let i = (self.roi.y + sy) * f.row_stride + (self.roi.x + sx) * f.format.bytes_per_pixel();
        // `get` keeps the no-panic guarantee even if a bug slipped past validation.
        let px = |k: usize| f.data.get(i + k).copied().unwrap_or(0) as u32;
        match f.format {
            PixelFormat::Gray8 | PixelFormat::Nv21 | PixelFormat::Yuv420Y => px(0) as u8,
            PixelFormat::Rgba8888 => rgba_luma(px(0), px(1), px(2), px(3)),
            PixelFormat::Bgra8888 => rgba_luma(px(2), px(1), px(0), px(3)),
        }
    }
}

/// BT.601 luma with 8-bit integer weights (77 + 150 + 29 = 256, so gray stays exact), then
/// "over white" for translucent pixels.
#[inline]
pub(crate) fn rgba_luma(r: u32, g: u32, b: u32, a: u32) -> u8 {
    let y = (77 * r + 150 * g + 29 * b + 128) >> 8;
    if a == 255 {
        return y as u8;
    }
    ((y * a + 255 * (255 - a) + 127) / 255) as u8
}
