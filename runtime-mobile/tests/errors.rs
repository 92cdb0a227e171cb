//! Every validation failure yields its typed error, and corrupted files never panic.
//!
//! Under Miri only the tests on small models run (the others build the full-size MNIST model,
//! minutes in the interpreter; `parser_props.rs` takes the parser's paths through Miri instead).

use runtime_mobile::error::{JsonContext, JsonErrorKind};
use runtime_mobile::format::{TensorKind, keys};
use runtime_mobile::{Error, Model, Shape};
use serde_json::json;
use testkit::Build;
use testkit::{MNIST, Rng, T, assemble, assemble_raw, random_desc, split, with_meta};

fn mnist() -> (testkit::Desc, Vec<u8>) {
    let mut rng = Rng(42);
    let desc = random_desc(&mut rng, Shape::Chw(1, 28, 28), &MNIST, false);
    let file = desc.build();
    (desc, file)
}

/// A tiny valid model (one dense layer), for tests that only need some valid file.
fn tiny() -> Vec<u8> {
    random_desc(&mut Rng(5), Shape::Flat(4), &[T::Dense { out: 2, relu: false }], false).build()
}

fn err(file: &[u8]) -> Error {
    let e = Model::parse(file).expect_err("parsed a bad file");
    assert!(!e.to_string().is_empty());
    e
}

/// Applies `f` to the header JSON of the MNIST file and parses the result.
fn header_err(f: impl FnOnce(&mut serde_json::Value)) -> Error {
    let (_, file) = mnist();
    let (mut h, d) = split(&file);
    f(&mut h);
    err(&assemble(&h, &d))
}

/// Replaces the layer list (JSON text) of the MNIST file.
fn layers_err(f: impl FnOnce(&mut serde_json::Value)) -> Error {
    let (_, file) = mnist();
    let (h, _) = split(&file);
    let mut layers: serde_json::Value = serde_json::from_str(h["__metadata__"]["layers"].as_str().unwrap()).unwrap();
    f(&mut layers);
    err(&with_meta(&file, keys::LAYERS, Some(&layers.to_string())))
}

#[test]
#[cfg_attr(miri, ignore = "full-size MNIST model: minutes under Miri")]
fn container_errors() {
    let (_, file) = mnist();
    assert_eq!(err(&file[..5]), Error::Truncated { needed: 8, got: 5 });
    let n = u64::from_le_bytes(file[..8].try_into().unwrap());
    assert_eq!(err(&file[..20]), Error::Truncated { needed: 8 + n, got: 20 });
    assert_eq!(err(&file[..file.len() - 1]), Error::OffsetsOutOfBounds);
    assert_eq!(err(&[0u8; 16]), Error::BadHeaderLength(0));
    let mut huge = file.clone();
    huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(err(&huge), Error::BadHeaderLength(u64::MAX));
    let mut big = file.clone();
    big[..8].copy_from_slice(&(file.len() as u64).to_le_bytes());
    assert!(matches!(err(&big), Error::Truncated { .. }));
}

#[test]
fn json_errors() {
    let data = [0u8; 4];
    for (text, kind) in [
        ("{not json}", JsonErrorKind::UnexpectedChar),
        ("{\"a\":", JsonErrorKind::UnexpectedEnd),
        ("[]", JsonErrorKind::WrongType),
        ("{} x", JsonErrorKind::TrailingData),
        ("{\"__metadata__\":{\"a\":1}}", JsonErrorKind::WrongType),
        ("{\"a\":\"\\q\"}", JsonErrorKind::BadEscape),
    ] {
        match err(&assemble_raw(text, &data)) {
            Error::Json { context: JsonContext::Header, kind: k, .. } => assert_eq!(k, kind, "{text}"),
            e => panic!("{text}: {e:?}"),
        }
    }
    let mut bad_utf8 = assemble_raw("{\"a\":\"xx\"}", &data);
    bad_utf8[14] = 0xff;
    assert!(matches!(err(&bad_utf8), Error::Json { kind: JsonErrorKind::NotUtf8, .. }));
    // JSON errors inside a metadata document name the key.
    let file = tiny();
    assert!(matches!(
        err(&with_meta(&file, keys::LAYERS, Some("[{\"op\":}]"))),
        Error::Json { context: JsonContext::Metadata("layers"), kind: JsonErrorKind::WrongType, .. }
    ));
    assert!(matches!(
        err(&with_meta(&file, keys::ARENA_BYTES, Some("99999999999999999999999"))),
        Error::Json { kind: JsonErrorKind::BadNumber, .. }
    ));
}

#[test]
#[cfg_attr(miri, ignore = "full-size MNIST model: minutes under Miri")]
fn duplicate_keys() {
    let (_, file) = mnist();
    let (h, d) = split(&file);
    let text = h.to_string();
    // Duplicate a tensor entry under the same name.
    let entry = format!("\"layers.0.bias\":{}", h["layers.0.bias"]);
    let dup = text.replacen('{', &format!("{{{entry},"), 1);
    assert_eq!(err(&assemble_raw(&dup, &d)), Error::DuplicateKey);
    let dup_meta = text.replacen('{', "{\"__metadata__\":{},", 1);
    assert_eq!(err(&assemble_raw(&dup_meta, &d)), Error::DuplicateKey);
}

#[test]
#[cfg_attr(miri, ignore = "full-size MNIST model: minutes under Miri")]
fn metadata_errors() {
    let (_, file) = mnist();
    assert_eq!(
        header_err(|h| {
            h.as_object_mut().unwrap().remove("__metadata__");
        }),
        Error::MissingMetadata
    );
    for key in [
        keys::FORMAT,
        keys::FORMAT_VERSION,
        keys::INPUT_SHAPE,
        keys::INPUT_SCALE,
        keys::INPUT_ZERO_POINT,
        keys::LAYERS,
        keys::LABELS,
        keys::ARENA_BYTES,
    ] {
        assert_eq!(err(&with_meta(&file, key, None)), Error::MissingMetadataKey(key));
    }
    // Accuracies are optional and may be null.
    Model::parse(&with_meta(&file, keys::F32_ACCURACY, None)).unwrap();
    Model::parse(&with_meta(&file, keys::INT8_ACCURACY, Some("null"))).unwrap();
    assert!(matches!(err(&with_meta(&file, keys::INT8_ACCURACY, Some("1.5"))), Error::BadMetadata { .. }));
    assert_eq!(err(&with_meta(&file, keys::FORMAT, Some("other"))), Error::NotThisFormat);
    assert_eq!(err(&with_meta(&file, keys::FORMAT_VERSION, Some("2"))), Error::UnsupportedVersion(2));
    assert!(matches!(err(&with_meta(&file, keys::INPUT_ZERO_POINT, Some("128"))), Error::BadMetadata { .. }));
    assert!(matches!(err(&with_meta(&file, keys::INPUT_SCALE, Some("0"))), Error::BadMetadata { .. }));
    assert!(matches!(err(&with_meta(&file, keys::INPUT_SHAPE, Some("[1,28]"))), Error::BadMetadata { .. }));
    assert_eq!(err(&with_meta(&file, keys::LABELS, Some("[\"a\"]"))), Error::LabelCount { labels: 1, outputs: 10 });
    assert_eq!(
        err(&with_meta(&file, keys::ARENA_BYTES, Some("100"))),
        Error::DeclaredArenaTooSmall { declared: 100, needed: Model::parse(&file).unwrap().arena_bytes() }
    );
    // Unknown metadata keys are allowed (forward compatibility).
    Model::parse(&with_meta(&file, "source_commit", Some("abc"))).unwrap();
}

#[test]
#[cfg_attr(miri, ignore = "full-size MNIST model: minutes under Miri")]
fn tensor_errors() {
    let (_, file) = mnist();
    assert_eq!(
        header_err(|h| h["layers.0.weight"]["dtype"] = json!("U8")),
        Error::WrongDtype { layer: 0, tensor: TensorKind::Weight }
    );
    assert_eq!(
        header_err(|h| h["layers.2.weight"]["shape"] = json!([32, 64, 5, 5])),
        Error::WrongShape { layer: 2, tensor: TensorKind::Weight }
    );
    assert_eq!(
        header_err(|h| h["layers.5.bias"]["shape"] = json!([64, 1])),
        Error::WrongShape { layer: 5, tensor: TensorKind::Bias }
    );
    assert_eq!(header_err(|h| h["layers.5.bias"]["shape"] = json!([65])), Error::SizeMismatch);
    assert_eq!(header_err(|h| h["layers.5.bias"]["data_offsets"] = json!([0, 99999999])), Error::OffsetsOutOfBounds);
    assert_eq!(header_err(|h| h["layers.5.bias"]["data_offsets"] = json!([8, 4])), Error::OffsetsOutOfBounds);
    assert!(matches!(header_err(|h| h["layers.5.bias"]["data_offsets"] = json!([0])), Error::BadTensorEntry(_)));
    assert!(matches!(header_err(|h| h["layers.5.bias"]["extra"] = json!(1)), Error::BadTensorEntry(_)));
    // Shapes whose byte size overflows u64.
    assert_eq!(header_err(|h| h["layers.5.bias"]["shape"] = json!([1u64 << 40, 1u64 << 40])), Error::Overflow);
    assert_eq!(
        header_err(|h| {
            h.as_object_mut().unwrap().remove("layers.6.shift");
        }),
        Error::MissingTensor { layer: 6, tensor: TensorKind::Shift }
    );
    // Tensors the format does not define: other names, pool layers, non-canonical indices.
    for name in ["extra", "layers.1.weight", "layers.7.weight", "layers.00.bias", "layers.0.weights"] {
        let e = header_err(|h| {
            let v = h["layers.0.bias"].clone();
            h[name] = v;
        });
        assert_eq!(e, Error::UnknownTensor, "{name}");
    }
    // Requantization parameters out of range.
    let (h, mut d) = split(&file);
    let off = h["layers.6.shift"]["data_offsets"][0].as_u64().unwrap() as usize;
    d[off..off + 4].copy_from_slice(&40i32.to_le_bytes());
    assert_eq!(err(&assemble(&h, &d)), Error::BadQuantParam { layer: 6, channel: 0 });
    let (h, mut d) = split(&file);
    let off = h["layers.0.multiplier"]["data_offsets"][0].as_u64().unwrap() as usize + 4;
    d[off..off + 4].copy_from_slice(&(-1i32).to_le_bytes());
    assert_eq!(err(&assemble(&h, &d)), Error::BadQuantParam { layer: 0, channel: 1 });
}

#[test]
#[cfg_attr(miri, ignore = "full-size MNIST model: minutes under Miri")]
fn layer_errors() {
    // Inconsistent chain.
    assert!(matches!(layers_err(|l| l[2]["in_channels"] = json!(16)), Error::InconsistentLayer { layer: 2, .. }));
    assert!(matches!(layers_err(|l| l[1]["output_shape"] = json!([32, 12, 13])), Error::InconsistentLayer { layer: 1, .. }));
    assert!(matches!(
        layers_err(|l| {
            l.as_array_mut().unwrap().remove(4);
        }),
        Error::InconsistentLayer { layer: 4, .. }
    ));
    assert!(matches!(
        layers_err(|l| l.as_array_mut().unwrap().insert(2, json!({"op":"softmax","output_shape":[32,12,12]}))),
        Error::InconsistentLayer { layer: 2, .. }
    ));
    assert!(matches!(
        layers_err(|l| {
            l.as_array_mut().unwrap().truncate(4);
        }),
        Error::InconsistentLayer { layer: 3, .. }
    ));
    // Bad layers by themselves.
    assert!(matches!(layers_err(|l| l[0]["kernel"] = json!([0, 5])), Error::BadLayer { layer: 0, .. }));
    assert!(matches!(layers_err(|l| l[0]["stride"] = json!([1, 1, 1])), Error::BadLayer { layer: 0, .. }));
    assert!(matches!(layers_err(|l| l[0]["activation"] = json!("gelu")), Error::BadLayer { layer: 0, .. }));
    assert!(matches!(layers_err(|l| l[0]["op"] = json!("conv3d")), Error::BadLayer { layer: 0, .. }));
    assert!(matches!(layers_err(|l| l[1]["padding"] = json!([2, 2])), Error::BadLayer { layer: 1, .. }));
    assert!(matches!(layers_err(|l| l[1]["activation"] = json!("relu")), Error::BadLayer { layer: 1, .. }));
    assert!(matches!(layers_err(|l| l[5]["output_zero_point"] = json!(200)), Error::BadLayer { layer: 5, .. }));
    assert!(matches!(layers_err(|l| l[5]["output_scale"] = json!(-1.0)), Error::BadLayer { layer: 5, .. }));
    assert!(matches!(
        layers_err(|l| {
            l[5].as_object_mut().unwrap().remove("in_features");
        }),
        Error::BadLayer { layer: 5, .. }
    ));
    assert!(matches!(layers_err(|l| l[5]["typo"] = json!(1)), Error::BadLayer { layer: 5, .. }));
    // Kernel larger than the input.
    assert!(matches!(
        layers_err(|l| {
            l[0]["kernel"] = json!([29, 5]);
        }),
        Error::InconsistentLayer { layer: 0, .. }
    ));
    // Too many layers.
    assert_eq!(
        layers_err(|l| {
            let a = l.as_array_mut().unwrap();
            for _ in 0..10 {
                a.insert(5, json!({"op":"relu","output_shape":[1024]}));
            }
        }),
        Error::TooManyLayers(17)
    );
}

#[test]
#[cfg_attr(miri, ignore = "full-size MNIST model: minutes under Miri")]
fn overflow_and_huge_dims_are_errors() {
    let (_, file) = mnist();
    // Dimensions beyond u64, beyond MAX_DIM, and large-but-legal ones that need a huge arena.
    assert!(matches!(err(&with_meta(&file, keys::INPUT_SHAPE, Some("[1,99999999999999999999,28]"))), Error::Json { .. }));
    assert!(matches!(err(&with_meta(&file, keys::INPUT_SHAPE, Some("[1,18446744073709551615,28]"))), Error::BadMetadata { .. }));
    // A dense-only model whose flat input is enormous: fine to parse, arena check at run time.
    let mut rng = Rng(5);
    let big = random_desc(&mut rng, Shape::Flat(60000), &[T::Dense { out: 1, relu: false }], false);
    let big_file = big.build();
    let m = Model::parse(&big_file).unwrap();
    let mut arena = [0u8; 8];
    let input = vec![0i8; 60000];
    assert_eq!(m.run(&input, &mut arena).unwrap_err(), Error::ArenaTooSmall { needed: m.arena_bytes(), got: 8 });
    // Large legal dims: a 65536x65536 input needs a ~4 GiB arena; planning must not overflow.
    let huge = with_meta(&file, keys::INPUT_SHAPE, Some("[1,65536,65536]"));
    let e = err(&huge);
    assert!(matches!(e, Error::InconsistentLayer { .. }), "{e:?}"); // conv chain no longer reaches [1024]
    assert!(matches!(
        layers_err(|l| {
            l[0]["out_channels"] = json!(u64::MAX);
        }),
        Error::BadLayer { .. } | Error::Overflow
    ));
}

#[test]
#[cfg_attr(miri, ignore = "full-size MNIST model: minutes under Miri")]
fn run_errors() {
    let (_, file) = mnist();
    let m = Model::parse(&file).unwrap();
    let mut arena = vec![0u8; m.arena_bytes()];
    assert_eq!(
        m.run(&[0i8; 784], &mut arena[..m.arena_bytes() - 1]).unwrap_err(),
        Error::ArenaTooSmall { needed: m.arena_bytes(), got: m.arena_bytes() - 1 }
    );
    assert_eq!(m.run(&[0i8; 783], &mut arena).unwrap_err(), Error::InputSize { expected: 784, got: 783 });
    m.run(&[0i8; 784], &mut arena).unwrap();
}

/// Random corruption (byte flips, truncation, header edits) must give Ok or Err, never a panic;
/// whatever parses must also run without panicking.
#[test]
fn corrupted_files_never_panic() {
    let mut rng = Rng(1234);
    let mut small = random_desc(
        &mut rng,
        Shape::Chw(2, 8, 8),
        &[
            T::Conv { out: 3, k: [3, 3], s: [1, 1], p: [1, 1], relu: true },
            T::MaxPool { k: [2, 2], s: [2, 2], p: [0, 0] },
            T::Flatten,
            T::Dense { out: 4, relu: false },
        ],
        false,
    );
    small.labels = vec!["a".into(), "b/é".into(), "c".into(), "d".into()];
    let file = small.build();
    let header_len = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize + 8;
    let mut parsed = 0;
    for i in 0..if cfg!(miri) { 12 } else { 20000 } {
        let mut f = file.clone();
        let n = 1 + rng.range(0, 3) as usize;
        for _ in 0..n {
            // Mostly hit the header, where the parsing logic is.
            let pos = if i % 4 == 0 { rng.range(0, f.len() as i64 - 1) } else { rng.range(8, header_len as i64 - 1) } as usize;
            f[pos] = match rng.range(0, 3) {
                0 => rng.next() as u8,
                1 => b"{}[]\",:\\0123456789-.eu"[rng.range(0, 21) as usize],
                _ => f[pos] ^ (1 << rng.range(0, 7)),
            };
        }
        if i % 7 == 0 {
            f.truncate(rng.range(0, f.len() as i64) as usize);
        }
        if let Ok(m) = Model::parse(&f) {
            parsed += 1;
            let mut arena = vec![0u8; m.arena_bytes().min(1 << 20)];
            let input = vec![1i8; m.input_len().min(1 << 20)];
            let _ = m.run(&input, &mut arena);
            for c in 0..m.num_classes() {
                let _ = m.label(c).map(|l| l.to_string());
            }
        }
    }
    assert!(parsed > 0 || cfg!(miri));
}
