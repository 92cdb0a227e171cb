//! Property tests of the model parser's invariants (proptest, shrinking counterexamples):
//! arbitrary bytes are rejected with the right error and never panic; every truncation of a valid
//! file is an error; header corruption never panics and whatever still parses is consistent and
//! runs; parsed layer lists round-trip; random valid architectures parse and match the naive
//! reference bit for bit; metadata values are accepted exactly in their documented ranges.
//!
//! Under Miri (`cargo +nightly miri test`, see `fuzz/README.md`) every property runs one to
//! four cases: enough to take every parser path through the interpreter once.

use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;
use runtime_mobile::error::JsonContext;
use runtime_mobile::format::{LayersJson, MAX_HEADER_BYTES, MAX_LAYERS, keys};
use runtime_mobile::{Error, Model, Shape, kernels, plan};
use testkit::Build;
use testkit::{Desc, Rng, T, random_desc, reference, with_meta};

/// `cases` natively, `miri_cases` under Miri (which runs ~1000x slower). Failure persistence is
/// off: a failing case is printed with its shrunk input, and Miri's isolation forbids files.
fn config(cases: u32, miri_cases: u32) -> Config {
    Config { cases: if cfg!(miri) { miri_cases } else { cases }, failure_persistence: None, ..Config::default() }
}

/// A small model of every layer kind (conv with padding, fused relu + max pool, standalone
/// avg pool and relu, dense, softmax), with non-ASCII labels.
fn small_desc(seed: u64) -> Desc {
    let mut rng = Rng(seed);
    let mut d = random_desc(
        &mut rng,
        Shape::Chw(2, 7, 6),
        &[
            T::Conv { out: 3, k: [3, 2], s: [1, 1], p: [1, 0], relu: false },
            T::Relu,
            T::MaxPool { k: [2, 2], s: [2, 1], p: [1, 0] },
            T::AvgPool { k: [2, 2], s: [1, 1], p: [0, 0] },
            T::Flatten,
            T::Dense { out: 5, relu: true },
            T::Dense { out: 3, relu: false },
            T::Softmax,
        ],
        seed % 2 == 1,
    );
    d.labels = vec!["zero".into(), "a 'quoted' / one".into(), "é😀".into()];
    d
}

/// `small_desc(seed).build()`, built once per test binary (building dominates under Miri).
fn small_file(seed: u64) -> &'static [u8] {
    static FILES: [OnceLock<Vec<u8>>; 4] = [const { OnceLock::new() }; 4];
    FILES[seed as usize].get_or_init(|| small_desc(seed).build())
}

fn header_len(file: &[u8]) -> usize {
    u64::from_le_bytes(file[..8].try_into().unwrap()) as usize
}

fn frame(header: &[u8], data: &[u8]) -> Vec<u8> {
    let mut f = (header.len() as u64).to_le_bytes().to_vec();
    f.extend_from_slice(header);
    f.extend_from_slice(data);
    f
}

/// Everything `Model::parse` promises about a model it accepted, checked by running it.
fn check_accepted(m: &Model<'_>, seed: u64) {
    let layers = m.layers();
    assert!(!layers.is_empty() && layers.len() <= MAX_LAYERS);
    assert!(layers.iter().any(|l| l.op.has_tensors()));
    // The layer chain is valid on its own and plans to the same arena.
    assert_eq!(plan::arena_bytes(m.input_shape(), layers), Ok(m.arena_bytes()));
    assert!(m.declared_arena_bytes() >= m.arena_bytes());
    let out = layers.last().unwrap().output_shape;
    assert!(matches!(out, Shape::Flat(_)));
    assert_eq!(out.len(), Some(m.num_classes()));
    assert_eq!(m.input_shape().len(), Some(m.input_len()));
    assert!(m.label(m.num_classes() - 1).is_some() && m.label(m.num_classes()).is_none());
    // Runs in exactly arena_bytes() (not one byte less), identically with every kernel table.
    if m.input_len() > 1 << 16 || m.arena_bytes() > 1 << 20 {
        return;
    }
    let mut rng = Rng(seed | 1);
    let input: Vec<i8> = (0..m.input_len()).map(|_| rng.i8()).collect();
    let mut arena = vec![0u8; m.arena_bytes()];
    let want = m.run_with(&kernels::scalar::KERNELS, &input, &mut arena).unwrap().scores.to_vec();
    assert_eq!(want.len(), m.num_classes());
    for k in kernels::available().into_iter().flatten() {
        assert_eq!(m.run_with(k, &input, &mut arena).unwrap().scores, &want[..], "{}", k.name);
    }
    if m.arena_bytes() > 0 {
        let n = m.arena_bytes() - 1;
        assert_eq!(m.run(&input, &mut arena[..n]).unwrap_err(), Error::ArenaTooSmall { needed: m.arena_bytes(), got: n });
    }
}

/// JSON-ish tokens for header soups that get past the UTF-8 and framing checks.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\\"",
    "\\\\",
    "\\u00e9",
    " ",
    "0",
    "1",
    "-1",
    "1.5e3",
    "65536",
    "18446744073709551616",
    "null",
    "true",
    "\"__metadata__\"",
    "\"format\"",
    "\"runtime-mobile\"",
    "\"layers\"",
    "\"dtype\"",
    "\"I8\"",
    "\"shape\"",
    "\"data_offsets\"",
    "\"layers.0.weight\"",
    "\"op\"",
    "\"conv2d\"",
    "\"dense\"",
];

proptest! {
    #![proptest_config(config(512, 4))]

    /// Any bytes: an error of the kind the framing dictates, or (vanishingly rarely) a model
    /// that satisfies every invariant. Never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        match Model::parse(&bytes) {
            Ok(m) => check_accepted(&m, 1),
            Err(e) => {
                if bytes.len() < 8 {
                    prop_assert_eq!(e, Error::Truncated { needed: 8, got: bytes.len() });
                } else {
                    let n = header_len(&bytes) as u64;
                    if n == 0 || n > MAX_HEADER_BYTES {
                        prop_assert_eq!(e, Error::BadHeaderLength(n));
                    } else if bytes.len() as u64 - 8 < n {
                        prop_assert_eq!(e, Error::Truncated { needed: 8 + n, got: bytes.len() });
                    }
                }
            }
        }
    }

    /// Correctly framed headers of random bytes and of JSON token soup: never a panic, and
    /// anything that is not a JSON object with `__metadata__` fails with a header error.
    #[test]
    fn framed_garbage_never_panics(
        raw in proptest::collection::vec(any::<u8>(), 1..200),
        soup in proptest::collection::vec(any::<Index>(), 1..40),
        data in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let soup: String = soup.iter().map(|i| TOKENS[i.index(TOKENS.len())]).collect();
        for header in [&raw[..], soup.as_bytes()] {
            match Model::parse(&frame(header, &data)) {
                Ok(m) => check_accepted(&m, 2),
                Err(e) => {
                    if !header.contains(&b'{') {
                        prop_assert!(
                            matches!(e, Error::Json { context: JsonContext::Header, .. }),
                            "{:?} for header {:?}", e, String::from_utf8_lossy(header)
                        );
                    }
                }
            }
        }
    }

    /// Cutting a valid file anywhere is an error, and the right one: inside the length prefix,
    /// inside the header, or inside the tensor data.
    #[test]
    fn every_truncation_is_an_error(seed in 0u64..4, cut in any::<Index>()) {
        let file = small_file(seed);
        let cut = cut.index(file.len());
        let n = header_len(file);
        let e = Model::parse(&file[..cut]).unwrap_err();
        if cut < 8 {
            prop_assert_eq!(e, Error::Truncated { needed: 8, got: cut });
        } else if cut < 8 + n {
            prop_assert_eq!(e, Error::Truncated { needed: 8 + n as u64, got: cut });
        } else {
            prop_assert_eq!(e, Error::OffsetsOutOfBounds);
        }
    }

    /// Flipping, replacing or deleting header bytes never panics; whatever still parses is
    /// self-consistent and runs.
    #[test]
    fn header_corruption_never_panics(
        seed in 0u64..4,
        edits in proptest::collection::vec((any::<Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let file = small_file(seed);
        let n = header_len(file);
        let mut header = file[8..8 + n].to_vec();
        for (at, v, kind) in edits {
            if header.is_empty() {
                break;
            }
            let i = at.index(header.len());
            match kind {
                0 => header[i] ^= v | 1,
                1 => header[i] = v,
                _ => {
                    header.remove(i);
                }
            }
        }
        if let Ok(m) = Model::parse(&frame(&header, &file[8 + n..])) {
            check_accepted(&m, seed);
        }
    }
}

proptest! {
    #![proptest_config(config(256, 1))]

    /// Random valid architectures parse to exactly the layers they were built from, the parsed
    /// list written back parses to the same model, and inference matches the naive reference.
    #[test]
    fn random_architectures_parse_round_trip_and_infer(arch in arch(), seed in any::<u64>()) {
        let (input_shape, templates, left_shifts) = arch;
        let mut rng = Rng(seed | 1);
        let desc = random_desc(&mut rng, input_shape, &templates, left_shifts);
        let file = desc.build();
        let m = Model::parse(&file).unwrap();
        prop_assert_eq!(m.layers(), &desc.specs()[..]);
        prop_assert_eq!(m.input_shape(), input_shape);
        prop_assert_eq!(m.input_quant().zero_point, desc.input_quant.zero_point);
        check_accepted(&m, seed);

        // Re-serialising the parsed layer list gives the same model.
        let again = with_meta(&file, keys::LAYERS, Some(&LayersJson(m.layers()).to_string()));
        let m2 = Model::parse(&again).unwrap();
        prop_assert_eq!(m2.layers(), m.layers());
        prop_assert_eq!(m2.arena_bytes(), m.arena_bytes());
        prop_assert_eq!(m2.output_quant(), m.output_quant());

        let input: Vec<i8> = (0..m.input_len()).map(|_| rng.i8()).collect();
        let want = reference(&desc, &input);
        let mut arena = vec![0x5Au8; m.arena_bytes()];
        for k in kernels::available().into_iter().flatten() {
            prop_assert_eq!(m.run_with(k, &input, &mut arena).unwrap().scores, &want[..], "{}", k.name);
            prop_assert_eq!(m2.run_with(k, &input, &mut arena).unwrap().scores, &want[..]);
        }
    }

    /// Labels of any characters but those JSON must escape survive the two levels of JSON
    /// string nesting and come back as `&str`; labels that need an escape are refused.
    #[test]
    fn labels_round_trip(labels in proptest::collection::vec(
        proptest::collection::vec(any::<char>(), 0..6).prop_map(|c| c.into_iter().collect::<String>()),
        1..5,
    )) {
        let mut rng = Rng(9);
        let mut d = random_desc(&mut rng, Shape::Flat(3), &[T::Dense { out: labels.len(), relu: false }], false);
        d.labels = labels.clone();
        let plain = labels.iter().all(|l| !l.chars().any(|c| c == '"' || c == '\\' || c < ' '));
        if !plain {
            let refused = matches!(d.to_bytes(), Err(Error::BadMetadata { key: "labels", .. }));
            prop_assert!(refused, "the writer refuses labels that need escapes");
            d.labels = (0..labels.len()).map(|i| i.to_string()).collect();
            let file = with_meta(&d.build(), keys::LABELS, Some(&serde_json::to_string(&labels).unwrap()));
            let refused = matches!(Model::parse(&file), Err(Error::BadMetadata { key: "labels", .. }));
            prop_assert!(refused, "the reader refuses them too");
            return Ok(());
        }
        let file = d.build();
        let m = Model::parse(&file).unwrap();
        prop_assert_eq!(m.num_classes(), labels.len());
        for (i, l) in labels.iter().enumerate() {
            prop_assert_eq!(m.label(i), Some(l.as_str()));
        }
        prop_assert!(m.labels().eq(labels.iter().map(String::as_str)));
    }

    /// `arena_bytes` is accepted exactly when it covers the planned arena.
    #[test]
    fn declared_arena_accepted_iff_large_enough(v in prop_oneof![any::<u64>(), 0u64..2000]) {
        let file = small_file(0);
        let needed = Model::parse(file).unwrap().arena_bytes();
        let f = with_meta(file, keys::ARENA_BYTES, Some(&v.to_string()));
        match Model::parse(&f) {
            Ok(m) => {
                prop_assert!(v >= needed as u64);
                prop_assert_eq!(m.declared_arena_bytes() as u64, v);
            }
            Err(e) => {
                prop_assert!(v < needed as u64);
                prop_assert_eq!(e, Error::DeclaredArenaTooSmall { declared: v as usize, needed });
            }
        }
    }

    /// `input_zero_point` is accepted exactly in [-128, 127], and then used as given.
    #[test]
    fn input_zero_point_accepted_iff_in_range(zp in prop_oneof![any::<i64>(), -300i64..300]) {
        let f = with_meta(small_file(1), keys::INPUT_ZERO_POINT, Some(&zp.to_string()));
        match Model::parse(&f) {
            Ok(m) => {
                prop_assert!((-128..=127).contains(&zp));
                prop_assert_eq!(m.input_quant().zero_point as i64, zp);
            }
            Err(e) => {
                prop_assert!(!(-128..=127).contains(&zp));
                prop_assert!(matches!(e, Error::BadMetadata { key: keys::INPUT_ZERO_POINT, .. }), "{:?}", e);
            }
        }
    }
}

/// One choice of a random feature extractor, adapted to the shape it meets by [`realize`].
#[derive(Debug, Clone)]
enum Choice {
    Conv { out: usize, k: [usize; 2], s: [usize; 2], p: [usize; 2], relu: bool },
    Pool { avg: bool, k: [usize; 2], s: [usize; 2], p: [usize; 2] },
    Relu,
}

fn pair(lo: usize, hi: usize) -> impl Strategy<Value = [usize; 2]> {
    (lo..=hi, lo..=hi).prop_map(|(a, b)| [a, b])
}

fn choice() -> impl Strategy<Value = Choice> {
    prop_oneof![
        3 => (1usize..=5, pair(1, 4), pair(1, 3), pair(0, 2), any::<bool>())
            .prop_map(|(out, k, s, p, relu)| Choice::Conv { out, k, s, p, relu }),
        2 => (any::<bool>(), pair(1, 3), pair(1, 3), pair(0, 1))
            .prop_map(|(avg, k, s, p)| Choice::Pool { avg, k, s, p }),
        1 => Just(Choice::Relu),
    ]
}

/// Turns choices into templates that are valid for `shape` (kernels shrunk to fit, pool
/// padding capped at half the kernel; a choice that cannot fit is dropped).
fn realize(mut shape: Shape, choices: &[Choice], dense: &[(usize, bool)], softmax: bool) -> Vec<T> {
    let mut t = Vec::new();
    for c in choices {
        let Shape::Chw(ch, h, w) = shape else { break };
        let fit = |k: [usize; 2], p: [usize; 2]| [k[0].min(h + 2 * p[0]), k[1].min(w + 2 * p[1])];
        let out_hw =
            |k: [usize; 2], s: [usize; 2], p: [usize; 2]| [(h + 2 * p[0] - k[0]) / s[0] + 1, (w + 2 * p[1] - k[1]) / s[1] + 1];
        match *c {
            Choice::Conv { out, k, s, p, relu } => {
                let k = fit(k, p);
                let [oh, ow] = out_hw(k, s, p);
                t.push(T::Conv { out, k, s, p, relu });
                shape = Shape::Chw(out, oh, ow);
            }
            Choice::Pool { avg, k, s, p } => {
                let p = [p[0].min(k[0] / 2), p[1].min(k[1] / 2)];
                if k[0] > h + 2 * p[0] || k[1] > w + 2 * p[1] {
                    continue;
                }
                let [oh, ow] = out_hw(k, s, p);
                t.push(if avg { T::AvgPool { k, s, p } } else { T::MaxPool { k, s, p } });
                shape = Shape::Chw(ch, oh, ow);
            }
            Choice::Relu => t.push(T::Relu),
        }
    }
    if matches!(shape, Shape::Chw(..)) {
        t.push(T::Flatten);
    }
    t.extend(dense.iter().map(|&(out, relu)| T::Dense { out, relu }));
    if softmax {
        t.push(T::Softmax);
    }
    t
}

/// (input shape, templates, allow left shifts): a conv/pool/relu feature extractor on a
/// `[C,H,W]` input (or none on a flat input), then dense layers, maybe softmax.
fn arch() -> impl Strategy<Value = (Shape, Vec<T>, bool)> {
    let input = prop_oneof![
        3 => (1usize..=3, 1usize..=10, 1usize..=10).prop_map(|(c, h, w)| Shape::Chw(c, h, w)),
        1 => (1usize..=40).prop_map(Shape::Flat),
    ];
    let max_choices = if cfg!(miri) { 2 } else { 5 };
    (
        input,
        proptest::collection::vec(choice(), 0..max_choices),
        proptest::collection::vec((1usize..=12, any::<bool>()), 1..3),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(shape, choices, dense, softmax, left)| (shape, realize(shape, &choices, &dense, softmax), left))
}

/// The fixed regression cases behind the properties above, as plain tests (cheap under Miri).
#[test]
fn small_model_is_accepted_and_consistent() {
    for seed in 0..if cfg!(miri) { 1 } else { 4 } {
        let file = small_file(seed);
        let m = Model::parse(file).unwrap();
        assert_eq!(m.layers(), &small_desc(seed).specs()[..]);
        check_accepted(&m, seed);
        assert!(m.labels().eq(["zero", "a 'quoted' / one", "é😀"]));
    }
}

/// Writes the hand-made seed inputs of the `parse_and_infer` fuzz target into
/// `fuzz/corpus/parse_and_infer/` (see `fuzz/README.md`):
/// `cargo test -p runtime-mobile --test parser_props -- --ignored write_fuzz_seeds`.
#[test]
#[ignore = "a generator, not a check: writes fuzz corpus seeds; run explicitly"]
fn write_fuzz_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/parse_and_infer");
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).unwrap();
    for seed in 0..2 {
        write(&format!("seed-small-{seed}"), &small_desc(seed).build());
    }
    let mut rng = Rng(77);
    let archs: [(&str, Shape, Vec<T>); 5] = [
        ("dense", Shape::Flat(12), vec![T::Dense { out: 4, relu: true }, T::Dense { out: 2, relu: false }]),
        (
            "conv-stride-pad",
            Shape::Chw(1, 9, 9),
            vec![T::Conv { out: 2, k: [3, 3], s: [2, 2], p: [2, 1], relu: true }, T::Flatten, T::Dense { out: 3, relu: false }],
        ),
        (
            "avgpool-relu",
            Shape::Chw(3, 6, 5),
            vec![
                T::Conv { out: 4, k: [1, 1], s: [1, 1], p: [0, 0], relu: false },
                T::AvgPool { k: [3, 2], s: [1, 2], p: [1, 1] },
                T::Relu,
                T::MaxPool { k: [2, 2], s: [2, 2], p: [0, 0] },
                T::Flatten,
                T::Dense { out: 2, relu: false },
                T::Softmax,
            ],
        ),
        // Standalone relu and pool on the caller's input; a relu layer fused into a dense one.
        (
            "relu-first",
            Shape::Chw(2, 5, 5),
            vec![
                T::Relu,
                T::AvgPool { k: [2, 2], s: [1, 1], p: [1, 0] },
                T::Conv { out: 2, k: [2, 2], s: [1, 1], p: [0, 0], relu: false },
                T::Flatten,
                T::Dense { out: 3, relu: false },
                T::Relu,
                T::Dense { out: 2, relu: false },
                T::Softmax,
            ],
        ),
        // The MNIST architecture shrunk to a 12x12 input (the full-size one is the patch mode's).
        (
            "two-conv",
            Shape::Chw(1, 12, 12),
            vec![
                T::Conv { out: 4, k: [3, 3], s: [1, 1], p: [0, 0], relu: true },
                T::MaxPool { k: [2, 2], s: [2, 2], p: [0, 0] },
                T::Conv { out: 8, k: [3, 3], s: [1, 1], p: [0, 0], relu: true },
                T::MaxPool { k: [2, 2], s: [2, 2], p: [0, 0] },
                T::Flatten,
                T::Dense { out: 6, relu: true },
                T::Dense { out: 3, relu: false },
            ],
        ),
    ];
    for (name, shape, t) in archs {
        let d = random_desc(&mut rng, shape, &t, true);
        write(&format!("seed-{name}"), &d.build());
    }
    // Patch mode (see the target): the shipped models unchanged, then with a few header edits.
    let input: Vec<u8> = (0..784u32).map(|i| (i * 37 % 251) as u8).collect();
    for base in 0..2u8 {
        let mut p = b"RMPATCH1".to_vec();
        p.extend([base, 0]);
        p.extend(&input);
        write(&format!("seed-patch-base{base}"), &p);
    }
    let mut p = b"RMPATCH1".to_vec();
    // Edits: replace a header byte, splice a token, overwrite a shift byte in the data.
    p.extend([0, 3, 0, 0x10, 0, 0, b'7', 5, 0x40, 0, 0, 10, 3, 0xE0, 0x07, 0, 40]);
    p.extend(&input);
    write("seed-patch-edits", &p);
}
