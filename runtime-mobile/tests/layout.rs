//! The arena layout the plan computes at parse time (`Model::layout`), which the engine and
//! sessions read: for the shipped models and random layer lists, every stage's buffers lie
//! inside the arena, a stage's input, output and scratch do not overlap, stages hand over their
//! data where the next one reads it, and a session's packed regions are disjoint and fit its
//! arena. Sessions on arenas at every alignment give the reference path's scores.

use std::ops::Range;

use runtime_mobile::format::window_out;
use runtime_mobile::kernels::{self, scalar};
use runtime_mobile::{Model, Shape};
use testkit::Build;
use testkit::{Rng, T, random_desc};

fn disjoint(a: &Range<usize>, b: &Range<usize>) -> bool {
    a.is_empty() || b.is_empty() || a.end <= b.start || b.end <= a.start
}

/// Checks the stages' buffers in a working arena of `len` bytes; returns the largest end of
/// a stage's buffers (its need) and how many stages took the packed path.
fn check_stages(model: &Model<'_>, len: usize, session: bool, what: &str) -> (usize, usize) {
    let (mut need, mut packed) = (0, 0);
    let mut prev: Option<Range<usize>> = None;
    for (i, b) in model.layout().stages(len, session).enumerate() {
        let b = b.unwrap_or_else(|| panic!("{what}: stage {i} does not fit {len} bytes"));
        for r in [b.input.as_ref(), Some(&b.output), Some(&b.scratch)].into_iter().flatten() {
            assert!(r.start <= r.end && r.end <= len, "{what}: stage {i}: {r:?} outside {len} bytes: {b:?}");
        }
        assert!(disjoint(&b.scratch, &b.output), "{what}: stage {i}: scratch overlaps output: {b:?}");
        match &b.input {
            None => assert_eq!(i, 0, "{what}: only the first stage reads the caller's input"),
            Some(input) => {
                assert!(disjoint(&b.scratch, input), "{what}: stage {i}: scratch overlaps input: {b:?}");
                // Disjoint, or the same bytes (a relu working in place).
                assert!(disjoint(input, &b.output) || *input == b.output, "{what}: stage {i}: {b:?}");
                assert_eq!(Some(input), prev.as_ref(), "{what}: stage {i} reads where stage {} wrote", i - 1);
            }
        }
        // Input and output sit at the arena's two ends (or one), the scratch right after the low one.
        let low = [b.input.as_ref(), Some(&b.output)].into_iter().flatten().filter(|r| r.start == 0).map(|r| r.end).max();
        assert_eq!(b.scratch.start, low.unwrap_or(0), "{what}: stage {i}: {b:?}");
        let high_start =
            [b.input.as_ref(), Some(&b.output)].into_iter().flatten().map(|r| r.start).filter(|&s| s >= b.scratch.end).min();
        let high = len - high_start.unwrap_or(len);
        need = need.max(b.scratch.end + high);
        packed += b.packed_path as usize;
        prev = Some(b.output);
    }
    assert!(prev.is_some(), "{what}: no stages");
    (need, packed)
}

/// Everything the layout promises for one model.
fn check_model(model: &Model<'_>, what: &str) {
    let layers = model.layers();
    let convs = layers.iter().filter(|l| matches!(l.op, runtime_mobile::Op::Conv2d { .. })).count();
    let denses = layers.iter().filter(|l| matches!(l.op, runtime_mobile::Op::Dense { .. })).count();

    // Model::run: the minimal arena is exactly what the hungriest stage needs.
    let arena = model.arena_bytes();
    let (need, packed) = check_stages(model, arena, false, what);
    assert_eq!(need, arena, "{what}: arena_bytes is the largest stage's need");
    assert_eq!(packed, 0, "{what}: Model::run never takes the packed path");
    for extra in [1, 8, 100, 5000] {
        check_stages(model, arena + extra, false, what);
    }

    // A session: the packed store, then the working arena, in session_arena_bytes.
    let layout = model.layout();
    let store = layout.packed_bytes();
    let work = model.session_arena_bytes().checked_sub(store).expect("store fits the session arena");
    assert!(work >= arena, "{what}: a session's working arena holds Model::run's");
    let (need, packed) = check_stages(model, work, true, what);
    assert!(need <= work, "{what}");
    assert_eq!(packed, convs, "{what}: in session_arena_bytes every conv stage takes the packed path");
    check_stages(model, arena, true, what);

    let regions: Vec<_> = layout.packed().collect();
    assert_eq!(regions.len(), convs + denses, "{what}: one packed region per conv/dense layer");
    let mut end = 0;
    for r in &regions {
        assert!(matches!(layers[r.layer].op, runtime_mobile::Op::Conv2d { .. } | runtime_mobile::Op::Dense { .. }));
        assert!(r.range.start >= end && r.range.start <= r.range.end, "{what}: packed regions overlap: {regions:?}");
        end = r.range.end;
    }
    assert!(end <= store && store + work <= model.session_arena_bytes(), "{what}: {regions:?} in {store}");
}

/// Sessions at every arena alignment (the 4- and 64-byte steps are taken at run time) and with
/// too little room for packing give `Model::run_with`'s scores.
fn check_sessions(model: &Model<'_>, rng: &mut Rng, what: &str) {
    let input: Vec<i8> = (0..model.input_len()).map(|_| rng.i8()).collect();
    let mut small = vec![0u8; model.arena_bytes()];
    let want = model.run_with(&scalar::KERNELS, &input, &mut small).unwrap().scores.to_vec();
    let len = model.session_arena_bytes();
    let mut buf = vec![0x5Au8; len + 64];
    let shifts: &[usize] = if cfg!(miri) { &[3] } else { &[0, 1, 2, 3, 4, 5, 17, 31, 32, 63] };
    for k in kernels::available().into_iter().flatten() {
        for &shift in shifts {
            let mut s = model.session(k, &mut buf[shift..shift + len]).unwrap();
            assert_eq!(s.is_packed(), k.conv_packed, "{what}");
            assert_eq!(s.run(&input).unwrap().scores, &want[..], "{what}: kernels {} at offset {shift}", k.name);
        }
        let mut s = model.session(k, &mut buf[1..len]).unwrap();
        assert!(!s.is_packed());
        assert_eq!(s.run(&input).unwrap().scores, &want[..], "{what}: kernels {}, unpacked", k.name);
    }
}

/// A random valid layer list: conv stages (with relu, pools, padding, strides), standalone
/// pools and relus on the caller's input and in the arena, then dense layers.
fn random_templates(rng: &mut Rng) -> (Shape, Vec<T>) {
    let r = |rng: &mut Rng, lo: usize, hi: usize| rng.range(lo as i64, hi as i64) as usize;
    let (mut c, mut h, mut w) = (r(rng, 1, 3), r(rng, 4, 14), r(rng, 4, 14));
    let input = Shape::Chw(c, h, w);
    let mut t = Vec::new();
    let pool = |rng: &mut Rng, h: usize, w: usize| {
        let k = [r(rng, 1, 3.min(h)), r(rng, 1, 3.min(w))];
        let s = [r(rng, 1, 2), r(rng, 1, 2)];
        let p = [r(rng, 0, k[0] / 2), r(rng, 0, k[1] / 2)];
        (k, s, p)
    };
    for _ in 0..r(rng, 0, 3) {
        match rng.below(5) {
            0 | 1 => {
                let k = [r(rng, 1, 5.min(h + 2)), r(rng, 1, 5.min(w + 2))];
                let p = [r(rng, 0, 2), r(rng, 0, 2)];
                let s = [r(rng, 1, 2), r(rng, 1, 2)];
                let (Some(oh), Some(ow)) = (window_out(h, k[0], s[0], p[0]), window_out(w, k[1], s[1], p[1])) else {
                    continue;
                };
                c = r(rng, 1, 20);
                (h, w) = (oh, ow);
                t.push(T::Conv { out: c, k, s, p, relu: rng.below(2) == 0 });
            }
            2 => t.push(T::Relu),
            _ => {
                let (k, s, p) = pool(rng, h, w);
                let (Some(oh), Some(ow)) = (window_out(h, k[0], s[0], p[0]), window_out(w, k[1], s[1], p[1])) else {
                    continue;
                };
                (h, w) = (oh, ow);
                t.push(if rng.below(2) == 0 { T::MaxPool { k, s, p } } else { T::AvgPool { k, s, p } });
            }
        }
    }
    t.push(T::Flatten);
    for _ in 0..r(rng, 1, 3) {
        t.push(T::Dense { out: r(rng, 1, 24), relu: rng.below(2) == 0 });
        if rng.below(4) == 0 {
            t.push(T::Relu);
        }
    }
    if rng.below(2) == 0 {
        t.push(T::Softmax);
    }
    (input, t)
}

#[test]
#[cfg_attr(miri, ignore = "full-size models: minutes under Miri")]
fn shipped_models_layouts_are_consistent() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/");
    let mut rng = Rng(7);
    for name in ["mnist.int8.safetensors", "fashion-mnist.int8.safetensors"] {
        let file = std::fs::read(format!("{dir}{name}")).unwrap_or_else(|e| panic!("{name}: {e}"));
        let model = Model::parse(&file).unwrap();
        check_model(&model, name);
        check_sessions(&model, &mut rng, name);
        eprintln!("{name}: arena {} bytes, session arena {} bytes", model.arena_bytes(), model.session_arena_bytes());
    }
    let file = std::fs::read(format!("{dir}mnist.int8.safetensors")).unwrap();
    let model = Model::parse(&file).unwrap();
    assert_eq!(model.arena_bytes(), 7203);
    assert!(model.session_arena_bytes() <= 65_593, "{}", model.session_arena_bytes());
    eprintln!("size_of::<Model>() = {} bytes", std::mem::size_of::<Model<'static>>());
}

#[test]
fn random_layer_lists_layouts_are_consistent() {
    let mut rng = Rng(0x1A70_u64);
    let n = if cfg!(miri) { 2 } else { 300 };
    for i in 0..n {
        let (shape, templates) = random_templates(&mut rng);
        let desc = random_desc(&mut rng, shape, &templates, false);
        let file = desc.build();
        let model = Model::parse(&file).unwrap_or_else(|e| panic!("{e}: {desc:?}"));
        let what = format!("model {i}: {shape:?} {templates:?}");
        check_model(&model, &what);
        if i % 10 == 0 {
            check_sessions(&model, &mut rng, &what);
        }
    }
}
