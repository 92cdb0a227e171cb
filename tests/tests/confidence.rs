//! The Q15 confidences of the front door against the `f64` softmax of the dequantized scores
//! (`real = scale * (q - zero_point)`), for both shipped models over their whole 10,000-image test
//! split: the class's, each of the top 3's, and `softmax_q15` for every class, all within 0.5
//! percentage points (the fixed-point path promises far better; the largest deviation is
//! printed). Also: the class is the argmax (lowest index on ties) and `top()` is sorted.
//!
//! Needs the data sets in `<repo>/data/` (`.ci/run` links `../shared/data` there).

use runtime_mobile::classifier::{IMAGE_SCRATCH_BYTES, TOP_K};
use runtime_mobile::confidence::{Confidence, softmax_q15};
use runtime_mobile::{Classifier, Model, kernels};
use testkit::mnist;

/// The bound, in percentage points.
const MAX_DEVIATION_PP: f64 = 0.5;

fn pp(c: Confidence, p: f64) -> f64 {
    (c.fraction() as f64 - p).abs() * 100.0
}

fn check(file: &str, dataset: &str) {
    let bytes = std::fs::read(mnist::repo_root().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let model = Model::parse(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(model.dataset(), Some(dataset), "{file}");
    let digits = mnist::test_split(dataset);
    let q = model.output_quant();
    let mut arena = vec![0u8; model.session_arena_bytes()];
    let mut scratch = vec![0u8; IMAGE_SCRATCH_BYTES];
    let mut classifier = Classifier::new(&model, kernels::best(), &mut arena, &mut scratch).unwrap();
    let mut all = vec![Confidence::default(); model.num_classes()];
    let (mut worst, mut worst_at) = (0.0f64, String::new());
    let mut correct = 0;
    for (i, (image, label)) in digits.iter().enumerate() {
        let c = classifier.classify_image(image).unwrap();
        let real: Vec<f64> = c.scores.iter().map(|&s| q.scale as f64 * (s as i32 - q.zero_point) as f64).collect();
        let max = real.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = real.iter().map(|r| (r - max).exp()).sum();
        let p: Vec<f64> = real.iter().map(|r| (r - max).exp() / z).collect();

        let best = *c.scores.iter().max().unwrap();
        assert_eq!(c.class, c.scores.iter().position(|&s| s == best).unwrap(), "{file}: image {i}: not the argmax");
        let top = c.top();
        assert_eq!(top.len(), TOP_K, "{file}: image {i}");
        assert_eq!(top[0].class, c.class, "{file}: image {i}");
        for w in top.windows(2) {
            let (a, b) = (c.scores[w[0].class], c.scores[w[1].class]);
            assert!(a > b || (a == b && w[0].class < w[1].class), "{file}: image {i}: top not sorted: {top:?}");
            assert!(w[0].confidence >= w[1].confidence, "{file}: image {i}: top not sorted: {top:?}");
        }

        softmax_q15(c.scores, q.scale, &mut all);
        let checks = std::iter::once(("class", c.class, c.confidence))
            .chain(top.iter().map(|r| ("top", r.class, r.confidence)))
            .chain(all.iter().enumerate().map(|(k, &conf)| ("softmax_q15", k, conf)));
        for (what, k, conf) in checks {
            let d = pp(conf, p[k]);
            assert!(d <= MAX_DEVIATION_PP, "{file}: image {i}, {what} class {k}: {conf:?} vs {} ({d} pp)", p[k]);
            if d > worst {
                (worst, worst_at) = (d, format!("image {i}, {what} class {k}: Q15 {} vs {:.6}%", conf.q15(), p[k] * 100.0));
            }
        }
        assert_eq!(c.confidence, all[c.class], "{file}: image {i}");
        correct += (c.class == label as usize) as usize;
    }
    println!(
        "{file}: {} images ({correct} correct), largest confidence deviation from the f64 softmax {worst:.6} percentage points ({worst_at}), table {}",
        digits.len(),
        classifier.kernels().name
    );
}

#[test]
fn mnist_confidences_match_the_f64_softmax() {
    check("models/mnist.int8.safetensors", "mnist");
}

#[test]
fn fashion_mnist_confidences_match_the_f64_softmax() {
    check("models/fashion-mnist.int8.safetensors", "fashion-mnist");
}
