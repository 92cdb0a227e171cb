//! Writes the cases every binding test runs and the answers `runtime_mobile::Classifier` gives
//! for them (called directly, not through the bindings) into a folder:
//!
//!     cargo run -p bindings --example expected_answers -- OUT_DIR [DIGITS_PER_SET]
//!
//! (`inputs.bin`, `cases.tsv`: see `tests/support/cases.rs`). Default: 1,000 test digits of
//! each data set plus the frames made from runtime-mobile/tests/images.

#[path = "../tests/support/cases.rs"]
#[allow(dead_code)] // shared with the tests; this example uses part of it
mod cases;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or_else(|| std::io::Error::other("usage: expected_answers OUT_DIR [DIGITS_PER_SET]"))?;
    let n: usize = args.next().map_or(Ok(1000), |s| s.parse()).map_err(std::io::Error::other)?;
    let mut cases = cases::image_cases(n);
    cases.extend(cases::frame_cases());
    let mut reference = cases::Reference::new();
    cases::write(std::path::Path::new(&dir), &cases, &mut reference)?;
    println!("expected_answers: {} cases ({} digits per data set) in {dir}, kernels {}", cases.len(), n, reference.kernels());
    Ok(())
}
