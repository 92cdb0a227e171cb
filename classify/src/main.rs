//! `classify IMAGE...`: the phone pipeline on the desktop. Images are decoded with the `image`
//! crate, then go through exactly what an app calls — `runtime_mobile::preprocess` and
//! `Model::run` — so a wrong answer here reproduces a wrong answer on the device.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use image::DynamicImage;
use runtime_mobile::preprocess::{self, Frame, Info, InputQuantizer, Options, PixelFormat, OUT_DIM, OUT_PIXELS};
use runtime_mobile::Model;

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
Output, one line per image:\n  IMAGE: LABEL (int8 score S, P%)\n\
S is the model's raw int8 output for the winning class; P is the softmax of the dequantized \
scores, computed here for display only (the device never needs it).\n\n\
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

struct Classifier<'m> {
    model: Model<'m>,
    quantizer: InputQuantizer,
}

impl<'m> Classifier<'m> {
    fn new(bytes: &'m [u8]) -> Result<Self, String> {
        let model = Model::parse(bytes).map_err(|e| format!("invalid model file: {e}"))?;
        preprocess::check_input_shape(model.input_shape()).map_err(|e| e.to_string())?;
        let quantizer = InputQuantizer::new(model.input_quant()).map_err(|e| e.to_string())?;
        Ok(Classifier { model, quantizer })
    }

    /// Classifies one image; returns the text to print.
    fn classify_file(&self, path: &Path, debug: bool) -> Result<String, String> {
        let img = image::ImageReader::open(path)
            .map_err(|e| format!("cannot open: {e}"))?
            .with_guessed_format()
            .map_err(|e| format!("cannot read: {e}"))?
            .decode()
            .map_err(|e| format!("cannot decode image: {e}"))?;
        let (pixels, info) = preprocess_image(&img)?;

        let mut input = [0i8; OUT_PIXELS];
        self.quantizer.quantize(&pixels, &mut input);
        let mut arena = vec![0u8; self.model.arena_bytes()];
        let p = self.model.run(&input, &mut arena).map_err(|e| format!("inference failed: {e}"))?;
        let label = self.model.label(p.class).map(|l| l.to_string()).unwrap_or_else(|| p.class.to_string());
        let prob = softmax(p.scores, self.model.output_quant())[p.class] * 100.0;

        let mut out = format!("{}: {label} (int8 score {}, {prob:.1}%)\n", path.display(), p.score);
        if debug {
            let dest = debug_png_path(path);
            image::GrayImage::from_raw(OUT_DIM as u32, OUT_DIM as u32, pixels.to_vec())
                .expect("28x28 buffer")
                .save(&dest)
                .map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
            let _ = writeln!(
                out,
                "  {} ink, bbox {}x{} at ({}, {}), {}; input written to {}",
                if info.inverted { "dark" } else { "light" },
                info.bbox.width,
                info.bbox.height,
                info.bbox.x,
                info.bbox.y,
                scores_text(&self.model, p.scores),
                dest.display()
            );
            out.push_str(&ascii_art(&pixels));
        }
        Ok(out)
    }
}

/// Grayscale images go in as 8-bit luma; anything with colour or alpha as RGBA, so the luma
/// conversion and alpha handling are the library's (as on the phone), not the decoder's.
fn preprocess_image(img: &DynamicImage) -> Result<([u8; OUT_PIXELS], Info), String> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (data, format) = if img.color().has_color() || img.color().has_alpha() {
        (img.to_rgba8().into_raw(), PixelFormat::Rgba8888)
    } else {
        (img.to_luma8().into_raw(), PixelFormat::Gray8)
    };
    let frame = Frame::new(&data, format, w, h, w * format.bytes_per_pixel()).map_err(|e| e.to_string())?;
    let mut scratch = vec![0u8; preprocess::SCRATCH_BYTES];
    let mut pixels = [0u8; OUT_PIXELS];
    match preprocess::preprocess(&frame, &Options::DEFAULT, &mut scratch, &mut pixels).map_err(|e| e.to_string())? {
        preprocess::Preprocessed::Digit(info) => Ok((pixels, info)),
        preprocess::Preprocessed::NoDigit(reason) => Err(reason.to_string()),
    }
}

/// Softmax of the dequantized scores (host-side display only).
fn softmax(scores: &[i8], q: runtime_mobile::Quant) -> Vec<f64> {
    let real: Vec<f64> = scores.iter().map(|&s| q.scale as f64 * (s as i32 - q.zero_point) as f64).collect();
    let max = real.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = real.iter().map(|r| (r - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.iter().map(|e| e / sum).collect()
}

fn scores_text(model: &Model<'_>, scores: &[i8]) -> String {
    let parts: Vec<String> = scores
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{}={s}", model.label(i).map(|l| l.to_string()).unwrap_or_else(|| i.to_string())))
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
