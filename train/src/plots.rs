//! The run's pictures: `curves.png` (loss and accuracy by epoch), `confusion.png` (test-set
//! confusion matrix with counts) and `samples.png` (test images the model got wrong).
//!
//! Text is drawn with the DejaVu font embedded by the `dejavu` crate, so plotting needs no
//! system font library.

use std::path::Path;
use std::sync::Once;

use anyhow::{Context, Result, anyhow};
use image::ImageEncoder;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::data::{CLASSES, DatasetKind, IMAGE_SIDE, Split};
use crate::metrics::EpochMetrics;

const FONT: &str = "sans-serif";

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
            .unwrap_or_else(|_| panic!("the embedded DejaVu font is valid"));
    });
}

/// plotters' errors borrow the backend; turn them into owned errors naming the file.
fn plot_err(path: &Path) -> impl Fn(&dyn std::fmt::Debug) -> anyhow::Error + '_ {
    move |e| anyhow!("drawing {}: {e:?}", path.display())
}

pub fn write_all(out_dir: &Path, history: &[EpochMetrics], test: &Split, predictions: &[u8], kind: DatasetKind) -> Result<()> {
    register_font();
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    curves(&out_dir.join("curves.png"), history)?;
    confusion(&out_dir.join("confusion.png"), &confusion_matrix(&test.labels, predictions), kind)?;
    samples(&out_dir.join("samples.png"), test, predictions, kind)?;
    Ok(())
}

/// Renders into memory, then writes the PNG atomically.
fn render_png(
    path: &Path,
    (w, h): (u32, u32),
    draw: impl FnOnce(DrawingArea<BitMapBackend, plotters::coord::Shift>) -> Result<()>,
) -> Result<()> {
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(path)(&e))?;
        draw(root.clone())?;
        root.present().map_err(|e| plot_err(path)(&e))?;
    }
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(&rgb, w, h, image::ExtendedColorType::Rgb8)
        .with_context(|| format!("encoding {}", path.display()))?;
    crate::atomic::write_atomically(path, &png).with_context(|| format!("writing {}", path.display()))
}

/// One panel of `curves`: its title and two lines, each a label and the value it plots.
type Panel<'a> = (&'a str, [(&'a str, fn(&EpochMetrics) -> f64); 2]);

fn curves(path: &Path, history: &[EpochMetrics]) -> Result<()> {
    render_png(path, (1000, 420), |root| {
        let e = plot_err(path);
        let panels = root.split_evenly((1, 2));
        let last = history.last().map_or(1, |m| m.epoch) as f64;
        let series: [Panel; 2] = [
            ("loss", [("train", |m| m.train_loss), ("test", |m| m.test_loss)]),
            ("accuracy (%)", [("train", |m| m.train_accuracy * 100.0), ("test", |m| m.test_accuracy * 100.0)]),
        ];
        for (panel, (title, lines)) in panels.iter().zip(series) {
            let values: Vec<f64> = lines.iter().flat_map(|(_, f)| history.iter().map(f)).collect();
            let lo = values.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let pad = ((hi - lo) * 0.1).max(1e-3);
            let mut chart = ChartBuilder::on(panel)
                .caption(title, (FONT, 22))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .build_cartesian_2d(0.8..last + 0.2, (lo - pad)..(hi + pad))
                .map_err(|x| e(&x))?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .x_labels(history.len().max(2))
                .x_label_formatter(&|v| if (v - v.round()).abs() < 1e-6 { format!("{v:.0}") } else { String::new() })
                .label_style((FONT, 14))
                .draw()
                .map_err(|x| e(&x))?;
            for ((name, f), color) in lines.iter().zip([BLUE, RED]) {
                let points: Vec<(f64, f64)> = history.iter().map(|m| (m.epoch as f64, f(m))).collect();
                chart
                    .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                    .map_err(|x| e(&x))?
                    .label(*name)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
                chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, color.filled()))).map_err(|x| e(&x))?;
            }
            chart
                .configure_series_labels()
                .border_style(BLACK)
                .background_style(WHITE.mix(0.8))
                .label_font((FONT, 14))
                .draw()
                .map_err(|x| e(&x))?;
        }
        Ok(())
    })
}

/// `matrix[true][predicted]` counts.
pub fn confusion_matrix(labels: &[u8], predictions: &[u8]) -> [[u32; CLASSES]; CLASSES] {
    let mut m = [[0u32; CLASSES]; CLASSES];
    for (&t, &p) in labels.iter().zip(predictions) {
        m[t as usize][p as usize] += 1;
    }
    m
}

fn confusion(path: &Path, matrix: &[[u32; CLASSES]; CLASSES], kind: DatasetKind) -> Result<()> {
    let names = kind.class_names();
    render_png(path, (760, 720), |root| {
        let e = plot_err(path);
        let total: u32 = matrix.iter().flatten().sum();
        let correct: u32 = (0..CLASSES).map(|i| matrix[i][i]).sum();
        let title = format!("{kind} test set: {correct}/{total} correct");
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 22))
            .margin(12)
            .x_label_area_size(70)
            .y_label_area_size(90)
            // Cell (predicted p, true t) is centred on (p, 9 - t): labels at integers sit mid-cell
            // and the diagonal runs from top left to bottom right.
            .build_cartesian_2d(-0.5..CLASSES as f64 - 0.5, -0.5..CLASSES as f64 - 0.5)
            .map_err(|x| e(&x))?;
        let name_at = |v: f64, flip: bool| {
            let i = v.round() as i64;
            let i = if flip { CLASSES as i64 - 1 - i } else { i };
            if (v - v.round()).abs() > 1e-6 || !(0..CLASSES as i64).contains(&i) {
                String::new()
            } else {
                names[i as usize].to_string()
            }
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("predicted")
            .y_desc("true")
            .x_labels(CLASSES)
            .y_labels(CLASSES)
            .x_label_formatter(&|v| name_at(*v, false))
            .y_label_formatter(&|v| name_at(*v, true))
            .label_style((FONT, 12))
            .draw()
            .map_err(|x| e(&x))?;
        let centre = plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Center,
        );
        for (t, row) in matrix.iter().enumerate() {
            let row_total = row.iter().sum::<u32>().max(1) as f64;
            for (p, &count) in row.iter().enumerate() {
                let share = count as f64 / row_total;
                let (x, y) = (p as f64, (CLASSES - 1 - t) as f64);
                let color = if t == p { RGBColor(30, 110, 200) } else { RGBColor(210, 60, 40) };
                let fill = color.mix(if count == 0 { 0.0 } else { 0.12 + 0.88 * share.sqrt() });
                let cell = Rectangle::new([(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)], fill.filled());
                chart.draw_series(std::iter::once(cell)).map_err(|x| e(&x))?;
                let text_color = if share > 0.4 { WHITE } else { BLACK };
                let style = (FONT, 13).into_font().color(&text_color).pos(centre);
                chart.draw_series(std::iter::once(Text::new(count.to_string(), (x, y), style))).map_err(|x| e(&x))?;
            }
        }
        Ok(())
    })
}

/// Up to this many misclassified images, in test-set order.
const SAMPLE_GRID: usize = 6;
const SAMPLE_SCALE: u32 = 4;

fn samples(path: &Path, test: &Split, predictions: &[u8], kind: DatasetKind) -> Result<()> {
    let names = kind.class_names();
    let wrong: Vec<usize> =
        (0..test.len()).filter(|&i| predictions[i] != test.labels[i]).take(SAMPLE_GRID * SAMPLE_GRID).collect();
    let cell = (IMAGE_SIDE as u32 * SAMPLE_SCALE + 16, IMAGE_SIDE as u32 * SAMPLE_SCALE + 40);
    let size = (cell.0 * SAMPLE_GRID as u32, cell.1 * SAMPLE_GRID as u32 + 40);
    render_png(path, size, |root| {
        let e = plot_err(path);
        let header = format!(
            "{} misclassified test images (first {} shown)",
            predictions.iter().zip(&test.labels).filter(|(p, l)| p != l).count(),
            wrong.len()
        );
        root.draw(&Text::new(header, (10, 10), (FONT, 18))).map_err(|x| e(&x))?;
        for (slot, &i) in wrong.iter().enumerate() {
            let (cx, cy) = ((slot % SAMPLE_GRID) as u32 * cell.0 + 8, (slot / SAMPLE_GRID) as u32 * cell.1 + 40);
            for (p, &v) in test.image(i).iter().enumerate() {
                let (x, y) = ((p % IMAGE_SIDE) as u32 * SAMPLE_SCALE + cx, (p / IMAGE_SIDE) as u32 * SAMPLE_SCALE + cy);
                let shade = 255 - v;
                let rect = Rectangle::new(
                    [(x as i32, y as i32), ((x + SAMPLE_SCALE) as i32, (y + SAMPLE_SCALE) as i32)],
                    RGBColor(shade, shade, shade).filled(),
                );
                root.draw(&rect).map_err(|x| e(&x))?;
            }
            let caption = format!("true {} / pred {}", names[test.labels[i] as usize], names[predictions[i] as usize]);
            let at = (cx as i32, (cy + IMAGE_SIDE as u32 * SAMPLE_SCALE + 4) as i32);
            root.draw(&Text::new(caption, at, (FONT, 12))).map_err(|x| e(&x))?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_counts_land_in_true_by_predicted_cells() {
        let m = confusion_matrix(&[0, 0, 3, 9], &[0, 1, 3, 3]);
        assert_eq!((m[0][0], m[0][1], m[3][3], m[9][3]), (1, 1, 1, 1));
        assert_eq!(m.iter().flatten().sum::<u32>(), 4);
    }

    #[test]
    fn writes_three_decodable_pngs() {
        let dir = tempfile::tempdir().unwrap();
        let history: Vec<EpochMetrics> = (1..=3)
            .map(|epoch| EpochMetrics {
                epoch,
                wall_seconds: 1.0,
                train_loss: 1.0 / epoch as f64,
                train_accuracy: 0.9,
                test_loss: 0.8 / epoch as f64,
                test_accuracy: 0.95,
                peak_rss_bytes: None,
            })
            .collect();
        let test = Split { images: (0..4 * 784).map(|i| (i % 256) as u8).collect(), labels: vec![1, 2, 3, 4] };
        write_all(dir.path(), &history, &test, &[1, 7, 3, 5], DatasetKind::FashionMnist).unwrap();
        for (name, w) in [("curves.png", 1000), ("confusion.png", 760), ("samples.png", 6 * (28 * 4 + 16))] {
            let img = image::open(dir.path().join(name)).unwrap();
            assert_eq!(img.width(), w, "{name}");
            // Something besides the white background was drawn.
            assert!(img.to_rgb8().pixels().any(|p| p.0 != [255, 255, 255]), "{name} is blank");
        }
    }
}
