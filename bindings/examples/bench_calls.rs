//! The plain Rust calls the bindings' benchmark compares against (scripts/ci-bindings --bench):
//! `runtime_mobile::Classifier` called directly, and the bindings' own Rust layer (`Engine` +
//! the JNI packing), on the benchmark's 640x480 Y-plane frame and a 28x28 MNIST digit.
//!
//!     cargo run -p bindings --example bench_calls -- CALLS_PER_RUN
//!
//! Prints `bench NAME mean-us-per-call-of-each-of-5-runs`.

#[path = "../tests/support/cases.rs"]
#[allow(dead_code)]
mod cases;

use std::time::Instant;

use bindings::convert::{self, packed};
use bindings::{Bundled, Engine};
use runtime_mobile::preprocess::{Frame, Options, Rotation};

fn runs(name: &str, calls: usize, mut call: impl FnMut()) {
    for _ in 0..calls {
        call(); // warm-up
    }
    let means: Vec<String> = (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..calls {
                call();
            }
            format!("{:.2}", start.elapsed().as_secs_f64() * 1e6 / calls as f64)
        })
        .collect();
    println!("bench {name} {}", means.join(" "));
}

fn main() {
    let calls: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(500);
    let frame = cases::bench_frame(&cases::image_files()[0]);
    let digits = testkit::mnist::test_split("mnist");
    let image = *digits.image(0);
    let mut reference = cases::Reference::new();
    let image_case = cases::image_cases(1).into_iter().next().expect("a digit");
    assert_eq!(image_case.input, image);

    let f = Frame::new(&frame.input, frame.format, frame.width, frame.height, frame.stride).expect("frame");
    let opts =
        Options { rotation: Rotation::from_degrees(frame.rotation).expect("rotation"), roi: frame.roi, ..Options::DEFAULT };
    let core = reference.classifier("mnist");
    runs("rust frame640x480", calls, || {
        std::hint::black_box(core.classify_frame(&f, &opts).expect("classify_frame"));
    });
    runs("rust image28x28", calls, || {
        std::hint::black_box(core.classify_image(&image).expect("classify_image"));
    });

    let engine = Engine::bundled(Bundled::Mnist).expect("bundled");
    let args = frame.frame_args();
    let mut out = [0i32; packed::HEADER + packed::MAX_SCORES];
    runs("rust-engine frame640x480", calls, || {
        engine.classify_frame(&args, |a| convert::pack(&a, &mut out)).expect("frame").expect("pack");
    });
    runs("rust-engine image28x28", calls, || {
        engine.classify_image(&image, |a| convert::pack(&a, &mut out)).expect("image").expect("pack");
    });
}
