//! `classify IMAGE...`: the phone pipeline on the desktop. Images are decoded with the `image`
//! crate, then go through exactly what an app calls — `runtime_mobile::Classifier` — so a wrong
//! answer here reproduces a wrong answer on the device.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use runtime_mobile::classifier::{FRAME_SCRATCH_BYTES, IMAGE_SCRATCH_BYTES};
use runtime_mobile::preprocess::{Frame, OUT_DIM, OUT_PIXELS, Options, PixelFormat};
use runtime_mobile::{FrameOutcome, Model, kernels};

/// Exit status when some image could not be classified (the others are still reported).
const EXIT_IMAGE: u8 = 1;
/// Exit status when the model is unusable (nothing is classified).
const EXIT_MODEL: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Classify handwritten digits in images with a runtime-mobile int8 model",
    long_about = "Classify handwritten digits in images with a runtime-mobile int8 model.\n\n\
Each image (PNG or JPEG, any size, one digit, dark-on-light or light-on-dark) is preprocessed \
exactly as on the phone: converted to luminance, inverted if the page is light, lighting \
flattened, the digit's bounding box scaled into 20x20 and centred by mass in 28x28 (MNIST \
style). Then the int8 model runs on it.\n\n\
Output, per image:\n  IMAGE: LABEL (int8 score S, P%)\n    top 3: LABEL P%, LABEL P%, LABEL P%\n\
S is the model's raw int8 output for the winning class; P is the confidence, the softmax of the \
dequantized scores computed in fixed point by the runtime (the same on a phone or a board).\n\n\
Exit status: 0 if every image was classified, 1 if some image failed (unreadable, or no digit \
found; the rest are still reported), 2 if the model cannot be used, 2 for usage errors."
)]
struct Cli {
    /// Images to classify (PNG or JPEG; the format is detected from the content).
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<PathBuf>,

    /// Model file in the runtime-mobile format (see runtime-mobile/FORMAT.md).
    #[arg(long, value_name = "PATH", default_value = "models/mnist.int8.safetensors")]
    model: PathBuf,

    /// Also print the 28x28 model input as ASCII art and write it as `<image stem>.input.png`
    /// next to each image.
    #[arg(long)]
    debug: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let bytes = match std::fs::read(&cli.model) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot read model {}: {e}", cli.model.display());
            return ExitCode::from(EXIT_MODEL);
        }
    };
    let classifier = match Classifier::new(&bytes) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: model {}: {e}", cli.model.display());
            return ExitCode::from(EXIT_MODEL);
        }
    };
    let mut status = ExitCode::SUCCESS;
    for path in &cli.images {
        match classifier.classify_file(path, cli.debug) {
            Ok(report) => {
                print!("{report}");
                let _ = std::io::stdout().flush();
            }
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                status = ExitCode::from(EXIT_IMAGE);
            }
        }
    }
    status
}

/// The runtime's classifier over buffers this program owns (one image at a time).
struct Classifier<'m> {
    model: Model<'m>,
}

impl<'m> Classifier<'m> {
    fn new(bytes: &'m [u8]) -> Result<Self, String> {
        let model = Model::parse(bytes).map_err(|e| format!("invalid model file: {e}"))?;
        // Fail on an unusable model before any image is read.
        let mut arena = vec![0u8; model.arena_bytes()];
        let mut scratch = vec![0u8; IMAGE_SCRATCH_BYTES];
        runtime_mobile::Classifier::new(&model, kernels::best(), &mut arena, &mut scratch).map_err(|e| e.to_string())?;
        Ok(Classifier { model })
    }

    /// Classifies one image through the runtime's front door; returns the text to print.
    fn classify_file(&self, path: &Path, debug: bool) -> Result<String, String> {
        let img = image::ImageReader::open(path)
            .map_err(|e| format!("cannot open: {e}"))?
            .with_guessed_format()
            .map_err(|e| format!("cannot read: {e}"))?
            .decode()
            .map_err(|e| format!("cannot decode image: {e}"))?;
        // Grayscale images go in as 8-bit luma; anything with colour or alpha as RGBA, so the
        // luma conversion and alpha handling are the library's (as on the phone), not the decoder's.
        let (w, h) = (img.width() as usize, img.height() as usize);
        let (data, format) = if img.color().has_color() || img.color().has_alpha() {
            (img.to_rgba8().into_raw(), PixelFormat::Rgba8888)
        } else {
            (img.to_luma8().into_raw(), PixelFormat::Gray8)
        };
        let frame = Frame::new(&data, format, w, h, w * format.bytes_per_pixel()).map_err(|e| e.to_string())?;

        let mut arena = vec![0u8; self.model.session_arena_bytes()];
        let mut scratch = vec![0u8; FRAME_SCRATCH_BYTES];
        let mut classifier =
            runtime_mobile::Classifier::new(&self.model, kernels::best(), &mut arena, &mut scratch).map_err(|e| e.to_string())?;
        let c = match classifier.classify_frame(&frame, &Options::DEFAULT).map_err(|e| format!("inference failed: {e}"))? {
            FrameOutcome::Digit(c) => c,
            FrameOutcome::NoDigit(reason) => return Err(reason.to_string()),
        };
        let pct = |conf: runtime_mobile::Confidence| conf.fraction() * 100.0;
        let score = c.scores.get(c.class).copied().unwrap_or_default();
        let mut out = format!("{}: {} (int8 score {score}, {:.1}%)\n", path.display(), c.label, pct(c.confidence));
        let top: Vec<String> = c.top().iter().map(|r| format!("{} {:.1}%", r.label, pct(r.confidence))).collect();
        let _ = writeln!(out, "  top 3: {}", top.join(", "));
        if debug {
            let info = c.preprocess.ok_or("no preprocessing information")?;
            let scores = scores_text(&self.model, c.scores);
            let pixels = *classifier.last_image();
            let dest = debug_png_path(path);
            image::GrayImage::from_raw(OUT_DIM as u32, OUT_DIM as u32, pixels.to_vec())
                .ok_or("28x28 buffer")?
                .save(&dest)
                .map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
            let _ = writeln!(
                out,
                "  {} ink, bbox {}x{} at ({}, {}), {scores}; input written to {}",
                if info.inverted { "dark" } else { "light" },
                info.bbox.width,
                info.bbox.height,
                info.bbox.x,
                info.bbox.y,
                dest.display()
            );
            out.push_str(&ascii_art(&pixels));
        }
        Ok(out)
    }
}

fn scores_text(model: &Model<'_>, scores: &[i8]) -> String {
    let parts: Vec<String> = scores
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{}={s}", model.label(i).map_or_else(|| i.to_string(), str::to_owned)))
        .collect();
    format!("scores [{}]", parts.join(" "))
}

/// `dir/name.ext` -> `dir/name.input.png`.
fn debug_png_path(path: &Path) -> PathBuf {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "image".into());
    path.with_file_name(format!("{stem}.input.png"))
}

/// Two characters per pixel so the digit keeps its aspect ratio in a terminal.
fn ascii_art(pixels: &[u8; OUT_PIXELS]) -> String {
    const RAMP: &[u8] = b" .:-=+*#%@";
    let mut s = String::new();
    for row in pixels.chunks(OUT_DIM) {
        s.push_str("  |");
        for &v in row {
            let c = RAMP[v as usize * RAMP.len() / 256] as char;
            s.push(c);
            s.push(c);
        }
        s.push_str("|\n");
    }
    s
}
