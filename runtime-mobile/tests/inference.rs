//! Parse round trips and bit-exact inference against the naive reference in `testkit`.
//!
//! Under Miri (where one parse of a small model costs about a second): two architectures that
//! between them take every engine path (fused conv + relu + avg/max pool, standalone relu and
//! pools on the caller's input and in the arena, conv without pool, padding, dense, softmax),
//! once each; the tests on the full-size MNIST model are skipped.

use runtime_mobile::kernels;
use runtime_mobile::{Error, Model, Shape};
use testkit::Build;
use testkit::{MNIST, Rng, T, random_desc, reference};

/// Parses `desc`'s file and checks `runs` random inputs against the reference, bit for bit.
fn check(desc: &testkit::Desc, rng: &mut Rng, runs: usize) {
    let file = desc.build();
    let model = Model::parse(&file).unwrap_or_else(|e| panic!("{e}: {desc:?}"));
    assert_eq!(model.layers(), &desc.specs()[..]);
    // Odd offset: the arena needs no particular alignment.
    let mut arena = vec![0xAAu8; model.arena_bytes() + 1];
    assert!(model.session_arena_bytes() >= model.arena_bytes());
    let mut fast = vec![0xAAu8; model.session_arena_bytes() + 1];
    for _ in 0..runs {
        let input: Vec<i8> = (0..model.input_len()).map(|_| rng.i8()).collect();
        let want = reference(desc, &input);
        let got = model.run(&input, &mut arena[1..]).unwrap();
        assert_eq!(got.scores, &want[..], "{desc:?}");
        let best = *want.iter().max().unwrap();
        assert_eq!(got.class, want.iter().position(|&v| v == best).unwrap());
        assert_eq!(got.score, best);
        // Every kernel table this CPU supports (scalar, SIMD), with an unaligned arena, minimal
        // and with room for the packed conv path.
        for k in kernels::available().into_iter().flatten() {
            let p = model.run_with(k, &input, &mut arena[1..]).unwrap();
            assert_eq!(p.scores, &want[..], "kernels {}: {desc:?}", k.name);
            // (Sessions of the other tables run `run_with`'s code: tested below with spare arenas.)
            if k.conv_packed {
                let mut session = model.session(k, &mut fast[1..]).unwrap();
                assert!(session.is_packed());
                let p = session.run(&input).unwrap();
                assert_eq!(p.scores, &want[..], "kernels {} in a session: {desc:?}", k.name);
            }
        }
    }
}

fn archs() -> Vec<(Shape, Vec<T>)> {
    use T::*;
    vec![
        (
            Shape::Chw(3, 9, 8),
            vec![
                Conv { out: 4, k: [3, 3], s: [1, 1], p: [1, 1], relu: true },
                MaxPool { k: [2, 2], s: [2, 2], p: [0, 0] },
                Conv { out: 5, k: [2, 3], s: [2, 1], p: [0, 1], relu: false },
                AvgPool { k: [3, 3], s: [1, 1], p: [1, 1] },
                Flatten,
                Dense { out: 7, relu: true },
                Dense { out: 3, relu: false },
                Softmax,
            ],
        ),
        (
            Shape::Chw(1, 11, 13),
            vec![
                Conv { out: 2, k: [5, 5], s: [2, 2], p: [2, 2], relu: false },
                Relu,
                AvgPool { k: [2, 2], s: [2, 2], p: [0, 0] },
                Flatten,
                Dense { out: 4, relu: false },
            ],
        ),
        (Shape::Flat(20), vec![Dense { out: 6, relu: true }, Relu, Dense { out: 5, relu: false }]),
        (
            Shape::Chw(2, 10, 10),
            vec![
                Conv { out: 3, k: [1, 1], s: [1, 1], p: [0, 0], relu: true },
                MaxPool { k: [3, 3], s: [2, 2], p: [1, 1] },
                Conv { out: 4, k: [3, 3], s: [3, 3], p: [1, 0], relu: false },
                Flatten,
                Dense { out: 2, relu: false },
            ],
        ),
        (
            // Standalone pool and relu on the caller's input, pool after pool, conv without pool.
            Shape::Chw(2, 12, 9),
            vec![
                Relu,
                MaxPool { k: [2, 3], s: [1, 2], p: [1, 1] },
                Conv { out: 3, k: [3, 2], s: [1, 1], p: [2, 0], relu: true },
                MaxPool { k: [2, 2], s: [2, 2], p: [0, 0] },
                AvgPool { k: [2, 1], s: [1, 1], p: [1, 0] },
                Relu,
                Conv { out: 2, k: [2, 2], s: [1, 1], p: [0, 0], relu: false },
                Flatten,
                Relu,
                Dense { out: 3, relu: false },
                Softmax,
            ],
        ),
        (
            // Kernel rows wider than 8 (the im2col fast path's long-run copy), K = 40 (a SIMD
            // tail), overlapping padded max pool, then dense layers wider than a vector.
            Shape::Chw(2, 7, 14),
            vec![
                Conv { out: 9, k: [2, 10], s: [1, 2], p: [1, 0], relu: true },
                MaxPool { k: [2, 2], s: [1, 1], p: [1, 1] },
                Flatten,
                Dense { out: 17, relu: false },
                Dense { out: 5, relu: false },
            ],
        ),
        (Shape::Chw(1, 28, 28), MNIST.to_vec()),
    ]
}

#[test]
fn random_models_match_reference() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let miri = cfg!(miri);
    for (i, (shape, templates)) in archs().into_iter().enumerate() {
        if miri && ![1, 4].contains(&i) {
            continue;
        }
        for seed in if miri { 1..2 } else { 0..4 } {
            let desc = random_desc(&mut rng, shape, &templates, seed % 2 == 1);
            let runs = if miri {
                1
            } else if shape.len() == Some(784) {
                2
            } else {
                8
            };
            check(&desc, &mut rng, runs);
            if miri {
                continue;
            }
            for prefix in testkit::prefixes(&desc) {
                check(&prefix, &mut rng, runs);
            }
        }
    }
}

/// The engine runs `matvec_i8_sym` on layers without a -128 weight (export's symmetric
/// weights) and `matvec_i8` on the others: models of each kind, and one mixing both, match the
/// reference on every kernel table.
#[test]
fn symmetric_and_full_range_weights_match_reference() {
    let mut rng = Rng(0x00DD_BA11);
    let miri = cfg!(miri);
    for (i, (shape, templates)) in archs().into_iter().enumerate() {
        if miri && i != 1 {
            continue;
        }
        let full = random_desc(&mut rng, shape, &templates, false);
        let mut sym = full.clone();
        let mut mixed = full.clone();
        let mut n_layers = 0;
        for (j, ((_, s), (_, m))) in sym.layers.iter_mut().zip(mixed.layers.iter_mut()).enumerate() {
            if let (Some(s), Some(m)) = (s, m) {
                n_layers += 1;
                s.weight.iter_mut().for_each(|v| *v = (*v).max(-127));
                if j % 2 == 0 {
                    m.weight.iter_mut().for_each(|v| *v = (*v).max(-127));
                } else {
                    // Make sure this layer takes the full-range path.
                    m.weight[0] = -128;
                }
            }
        }
        assert!(n_layers > 0);
        let runs = if miri { 1 } else { 2 };
        for d in [&full, &sym, &mixed] {
            check(d, &mut rng, runs);
        }
    }
}

/// With arena to spare, conv layers with short patches take `matvec_pairs_i16` (their weights
/// repacked into the spare bytes), and sessions of tables with `conv_packed` take the packed
/// path: still the reference's answers on every kernel table, and the same as with the minimal
/// arena; sessions whose arena cannot hold the packed weights run unpacked.
#[test]
fn spare_arena_takes_the_faster_paths_and_matches_reference() {
    let mut rng = Rng(0x5BA2E);
    for (i, (shape, templates)) in archs().into_iter().enumerate() {
        if cfg!(miri) && i != 1 {
            continue;
        }
        let desc = random_desc(&mut rng, shape, &templates, i % 2 == 1);
        let file = desc.build();
        let model = Model::parse(&file).unwrap();
        let mut small = vec![0u8; model.arena_bytes()];
        let mut big = vec![0x55u8; model.session_arena_bytes().max(model.arena_bytes() + 20_000) + 1];
        let between = (model.arena_bytes() + model.session_arena_bytes()) / 2;
        for _ in 0..if cfg!(miri) { 1 } else { 2 } {
            let input: Vec<i8> = (0..model.input_len()).map(|_| rng.i8()).collect();
            let want = reference(&desc, &input);
            for k in kernels::available().into_iter().flatten() {
                let a = model.run_with(k, &input, &mut big[1..]).unwrap().scores.to_vec();
                assert_eq!(a, want, "kernels {} with a large arena: {desc:?}", k.name);
                if !cfg!(miri) {
                    let m = model.run_with(k, &input, &mut big[..between]).unwrap().scores.to_vec();
                    assert_eq!(m, want, "kernels {} with a {between}-byte arena: {desc:?}", k.name);
                }
                // Sessions: packed (when the table has the path), and in arenas too small to
                // pack, which run unpacked.
                let len = model.session_arena_bytes();
                let s = model.session(k, &mut big[1..=len]).unwrap().run(&input).unwrap().scores.to_vec();
                assert_eq!(s, want, "kernels {} in a session: {desc:?}", k.name);
                if len > model.arena_bytes() {
                    let mut session = model.session(k, &mut big[..len - 1]).unwrap();
                    assert!(!session.is_packed());
                    let s = session.run(&input).unwrap().scores.to_vec();
                    assert_eq!(s, want, "kernels {} in an unpacked session", k.name);
                }
                let too_small = model.session(k, &mut big[..model.arena_bytes() - 1]).unwrap_err();
                assert_eq!(
                    too_small,
                    runtime_mobile::Error::ArenaTooSmall { needed: model.arena_bytes(), got: model.arena_bytes() - 1 }
                );
                let b = model.run_with(k, &input, &mut small).unwrap().scores.to_vec();
                assert_eq!(b, want, "kernels {} with the minimal arena", k.name);
            }
        }
    }
}

#[test]
#[cfg_attr(miri, ignore = "full-size MNIST model: minutes under Miri")]
fn mnist_arena_fits_8k() {
    let mut rng = Rng(7);
    let desc = random_desc(&mut rng, Shape::Chw(1, 28, 28), &MNIST, false);
    let file = desc.build();
    let model = Model::parse(&file).unwrap();
    assert!(model.arena_bytes() <= 8192, "arena {}", model.arena_bytes());
    let input = vec![0i8; 784];
    let mut arena = [0u8; 8192];
    let p = model.run(&input, &mut arena).unwrap();
    assert_eq!(p.scores.len(), 10);
}

#[test]
#[cfg_attr(miri, ignore = "full-size MNIST model: minutes under Miri")]
fn metadata_round_trip() {
    let mut rng = Rng(11);
    let mut desc = random_desc(&mut rng, Shape::Chw(1, 28, 28), &MNIST, false);
    desc.labels =
        ["zero", "a 'quoted' one", "é😀", "tab/there", "x", "5", "6", "7", "8", "nine"].iter().map(|s| s.to_string()).collect();
    desc.arena_bytes = Some(9000);
    let file = desc.build();
    // Our files are standard safetensors.
    let st = safetensors::SafeTensors::deserialize(&file).unwrap();
    assert_eq!(st.len(), 16);
    let model = Model::parse(&file).unwrap();
    assert_eq!(model.num_classes(), 10);
    for (i, l) in desc.labels.iter().enumerate() {
        assert_eq!(model.label(i), Some(l.as_str()));
    }
    assert!(model.label(10).is_none());
    // A label JSON would have to escape cannot be lent out as `&str`: the file is refused.
    // The writer refuses to write it, and a reader refuses a file that has one.
    for bad in ["a\"quote", "back\\slash", "tab\there"] {
        let mut d = desc.clone();
        d.labels[1] = bad.to_string();
        assert!(matches!(d.to_bytes(), Err(Error::BadMetadata { key: "labels", .. })), "{bad:?}");
        let escaped = serde_json::to_string(&d.labels).unwrap();
        let f = testkit::with_meta(&file, "labels", Some(&escaped));
        assert!(matches!(Model::parse(&f), Err(Error::BadMetadata { key: "labels", .. })), "{bad:?}");
    }
    assert_eq!(model.declared_arena_bytes(), 9000);
    assert_eq!(model.f32_accuracy(), Some(0.99));
    assert_eq!(model.int8_accuracy(), Some(0.985));
    assert_eq!(model.input_shape(), Shape::Chw(1, 28, 28));
    assert_eq!(model.input_quant().zero_point, desc.input_quant.zero_point);
    assert_eq!(model.input_quant().scale, 0.003921569);
    let runtime_mobile::Op::Dense { output, .. } = desc.layers[6].0.op else { panic!() };
    assert_eq!(model.output_quant(), output);
    assert_eq!(runtime_mobile::plan::arena_bytes(desc.input_shape, &desc.specs()).unwrap(), model.arena_bytes());
}

#[test]
fn tensor_names() {
    use runtime_mobile::format::{TensorKind, tensor_name};
    assert_eq!(tensor_name(0, TensorKind::Weight).to_string(), "layers.0.weight");
    assert_eq!(tensor_name(12, TensorKind::Shift).to_string(), "layers.12.shift");
}

#[test]
#[cfg_attr(miri, ignore = "full-size MNIST model: minutes under Miri")]
fn reference_outputs_are_not_degenerate() {
    // Guards the test itself: saturated or constant outputs would make "bit-exact" meaningless.
    let mut rng = Rng(3);
    for (shape, templates) in archs() {
        let desc = random_desc(&mut rng, shape, &templates, false);
        let mut distinct = std::collections::BTreeSet::new();
        for _ in 0..4 {
            let input: Vec<i8> = (0..shape.len().unwrap()).map(|_| rng.i8()).collect();
            distinct.extend(reference(&desc, &input));
        }
        eprintln!("{shape:?}: {} distinct output values: {:?}", distinct.len(), distinct);
        assert!(distinct.len() >= 3, "{shape:?}");
    }
    let desc = random_desc(&mut rng, Shape::Chw(1, 28, 28), &MNIST, false);
    eprintln!("MNIST arena {}", Model::parse(&desc.build()).unwrap().arena_bytes());
}

#[test]
fn model_struct_size_is_bounded() {
    // The parsed model lives on the caller's stack on microcontrollers; keep an eye on it.
    let size = std::mem::size_of::<Model<'static>>();
    eprintln!("size_of::<Model>() = {size} bytes on this target");
    assert!(size < 8192);
}
