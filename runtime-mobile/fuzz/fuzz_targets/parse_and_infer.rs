//! Model files from arbitrary bytes: `Model::parse` must return `Ok` or `Err` (never panic, hang
//! or read out of bounds), and every model it accepts must run in an arena of exactly
//! `arena_bytes()` on any input, with every kernel table this CPU has giving the same scores, also
//! through a `Session` (the packed conv path).
//!
//! Two input modes:
//! - **raw**: the input is the model file. The inference input is taken from the file's last
//!   bytes (safetensors allows unused bytes after the tensors, so the fuzzer controls it).
//! - **patch** (input starts with [`PATCH_MAGIC`], which as a header length is far above the
//!   1 MiB limit, so raw mode loses nothing): edits applied to one of the shipped models
//!   (`models/*.int8.safetensors`, embedded). The JSON header is edited as text and the length
//!   prefix recomputed, so insertions and deletions inside the header keep the file well framed;
//!   data edits overwrite weights, biases, multipliers and shifts in place. Layout:
//!   `magic(8) base(1) n_edits(1) edits(5 * n_edits) input(rest)`, each edit
//!   `op(1) offset(3, LE) value(1)`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runtime_mobile::format::MAX_LAYERS;
use runtime_mobile::{kernels, plan, Error, Model, Op, Shape};

const PATCH_MAGIC: &[u8; 8] = b"RMPATCH1";
const BASES: [&[u8]; 2] = [
    include_bytes!("../../../models/mnist.int8.safetensors"),
    include_bytes!("../../../models/fashion-mnist.int8.safetensors"),
];
/// Tokens spliced into the header by the patch mode's op 5 (also in `parse_and_infer.dict`).
const TOKENS: [&[u8]; 16] = [
    b"\\\"", b"\\\\", b"\\u0000", b"\\ud83d\\ude00", b"[", b"]", b"{", b"}", b",", b"\":\"",
    b"65536", b"4294967296", b"-1", b"0", b"1e9", b"null",
];
/// Most work (multiply-adds, roughly) a model may need to be run here: the shipped models need
/// ~4M. Larger legal models would just slow the fuzzer down; parsing is still checked for them.
const MAX_WORK: u128 = 12_000_000;
/// Largest arena / input allocated per run.
const MAX_ALLOC: usize = 16 << 20;

fuzz_target!(|data: &[u8]| {
    match data.strip_prefix(PATCH_MAGIC) {
        Some(rest) => {
            let (file, input) = patched(rest);
            exercise(&file, input);
        }
        None => exercise(data, tail(data)),
    }
});

/// The file's last bytes, used as the inference input in raw mode.
fn tail(file: &[u8]) -> &[u8] {
    &file[file.len().saturating_sub(4096)..]
}

/// Applies patch-mode edits to an embedded model; returns the file and the inference input.
fn patched(rest: &[u8]) -> (Vec<u8>, &[u8]) {
    let (&base, rest) = rest.split_first().unwrap_or((&0, &[]));
    let base = BASES[base as usize % BASES.len()];
    let n = u64::from_le_bytes(base[..8].try_into().unwrap()) as usize;
    let mut header = base[8..8 + n].to_vec();
    let mut data = base[8 + n..].to_vec();
    let (&n_edits, mut rest) = rest.split_first().unwrap_or((&0, &[]));
    for _ in 0..n_edits {
        let Some((e, r)) = rest.split_first_chunk::<5>() else { break };
        rest = r;
        let [op, o0, o1, o2, v] = *e;
        let off = u32::from_le_bytes([o0, o1, o2, 0]) as usize;
        match op % 6 {
            0 if !header.is_empty() => {
                let i = off % header.len();
                header[i] = v;
            }
            1 => header.insert(off % (header.len() + 1), v),
            2 if !header.is_empty() => {
                let i = off % header.len();
                let end = (i + 1 + (v as usize % 16)).min(header.len());
                header.drain(i..end);
            }
            3 if !data.is_empty() => {
                let i = off % data.len();
                data[i] = v;
            }
            4 => data.truncate(off % (data.len() + 1)),
            5 => {
                let at = off % (header.len() + 1);
                let tok = TOKENS[v as usize % TOKENS.len()];
                header.splice(at..at, tok.iter().copied());
            }
            _ => {}
        }
    }
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(&header);
    file.extend_from_slice(&data);
    (file, rest)
}

fn exercise(file: &[u8], input_bytes: &[u8]) {
    let Ok(model) = Model::parse(file) else { return };

    // What parse promises about an accepted model.
    let layers = model.layers();
    assert!(!layers.is_empty() && layers.len() <= MAX_LAYERS);
    assert!(layers.iter().any(|l| l.op.has_tensors()));
    assert!(model.declared_arena_bytes() >= model.arena_bytes());
    assert_eq!(plan::arena_bytes(model.input_shape(), layers), Ok(model.arena_bytes()));
    let n_classes = model.num_classes();
    let out_shape = layers.last().unwrap().output_shape;
    assert!(matches!(out_shape, Shape::Flat(_)));
    assert_eq!(out_shape.len(), Some(n_classes));
    assert_eq!(model.input_shape().len(), Some(model.input_len()));
    assert!(model.input_quant().scale > 0.0);
    assert!((-128..=127).contains(&model.output_quant().zero_point));
    for a in [model.f32_accuracy(), model.int8_accuracy()].into_iter().flatten() {
        assert!((0.0..=1.0).contains(&a));
    }
    // Labels: the first few and the last one exist, one past the end does not.
    for i in (0..n_classes.min(4)).chain([n_classes - 1]) {
        let l = model.label(i).expect("label of an existing class");
        let _ = l.chars().count();
    }
    assert!(model.label(n_classes).is_none());

    let (arena_len, input_len) = (model.arena_bytes(), model.input_len());
    if arena_len > MAX_ALLOC || input_len > MAX_ALLOC || work(&model) > MAX_WORK {
        return;
    }
    let input: Vec<i8> = if input_bytes.is_empty() {
        vec![0; input_len]
    } else {
        (0..input_len).map(|i| input_bytes[i % input_bytes.len()] as i8).collect()
    };
    let mut arena = vec![0xA5u8; arena_len];

    let want: Vec<i8> = {
        let p = model
            .run_with(&kernels::scalar::KERNELS, &input, &mut arena)
            .expect("an accepted model runs in arena_bytes()");
        assert_eq!(p.scores.len(), n_classes);
        assert_eq!(p.score, p.scores[p.class]);
        // Highest score, lowest index on ties.
        assert!(p.scores[..p.class].iter().all(|&s| s < p.score));
        assert!(p.scores[p.class..].iter().all(|&s| s <= p.score));
        p.scores.to_vec()
    };
    // Every SIMD table (the last one is what `run` uses) is bit-exact with the scalar one,
    // whatever the arena held before.
    for k in kernels::available().into_iter().flatten().skip(1) {
        arena.fill(0x5A);
        let p = model.run_with(k, &input, &mut arena).expect("SIMD run");
        assert_eq!(p.scores, &want[..], "kernel table {}", k.name);
    }

    // Sessions (weights prepared once; the packed conv path on tables that have it, in an arena
    // of session_arena_bytes()) give the same scores, run after run.
    let session_len = model.session_arena_bytes();
    assert!(session_len >= arena_len);
    if session_len <= MAX_ALLOC {
        let mut session_arena = vec![0xC3u8; session_len];
        for k in kernels::available().into_iter().flatten() {
            let mut s = model.session(k, &mut session_arena).expect("a session in session_arena_bytes()");
            assert_eq!(s.is_packed(), k.conv_packed, "kernel table {}", k.name);
            for _ in 0..2 {
                assert_eq!(s.run(&input).expect("session run").scores, &want[..], "session, kernel table {}", k.name);
            }
        }
    }

    // The documented run-time errors.
    if arena_len > 0 {
        assert_eq!(
            model.run(&input, &mut arena[..arena_len - 1]).unwrap_err(),
            Error::ArenaTooSmall { needed: arena_len, got: arena_len - 1 }
        );
    }
    assert_eq!(
        model.run(&input[..input_len - 1], &mut arena).unwrap_err(),
        Error::InputSize { expected: input_len, got: input_len - 1 }
    );
}

/// Roughly the multiply-adds one inference needs (conv outputs inside a fused pool window are
/// computed once per window, as the engine does).
fn work(model: &Model<'_>) -> u128 {
    let layers = model.layers();
    let mut shape = model.input_shape();
    let mut total: u128 = 0;
    let len = |s: Shape| s.len().unwrap_or(usize::MAX) as u128;
    let mut i = 0;
    while i < layers.len() {
        let l = layers[i];
        match l.op {
            Op::Conv2d { in_channels, out_channels, kernel, .. } => {
                let k_len = in_channels as u128 * kernel[0] as u128 * kernel[1] as u128;
                let per_output = (out_channels as u128 + 1) * k_len;
                let conv_cells = len(l.output_shape) / out_channels.max(1) as u128;
                let mut j = i + 1;
                if matches!(layers.get(j).map(|l| l.op), Some(Op::Relu)) {
                    j += 1;
                }
                let cells = match layers.get(j).map(|l| (l.op, l.output_shape)) {
                    Some((Op::MaxPool2d(p) | Op::AvgPool2d(p), out)) => {
                        i = j;
                        let area = p.kernel[0] as u128 * p.kernel[1] as u128;
                        (len(out) / out_channels.max(1) as u128).saturating_mul(area)
                    }
                    _ => conv_cells,
                };
                total = total.saturating_add(cells.saturating_mul(per_output));
                shape = layers[i].output_shape;
            }
            Op::Dense { in_features, out_features, .. } => {
                total = total.saturating_add(2 * in_features as u128 * out_features as u128);
                shape = l.output_shape;
            }
            Op::MaxPool2d(p) | Op::AvgPool2d(p) => {
                let area = p.kernel[0] as u128 * p.kernel[1] as u128;
                total = total.saturating_add(len(l.output_shape).saturating_mul(area));
                shape = l.output_shape;
            }
            Op::Relu | Op::Flatten | Op::Softmax => {
                total = total.saturating_add(len(shape));
                shape = l.output_shape;
            }
        }
        i += 1;
    }
    total
}
