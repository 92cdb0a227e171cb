//! End-to-end: train a small model, export it, and check every output with independent peers:
//! runtime-mobile (the int8 file), tract (both ONNX files), and a Python script running the ONNX
//! checker, onnxruntime and the `safetensors` package.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{CALIBRATION, TEST_IMAGES, argmax_rows, fixture, repo_root, tract_logits};
use export::calibrate::{images, layer_outputs};
use runtime_mobile::format::keys;
use runtime_mobile::{Activation, Op, Shape};

/// Candle's logits for the fixture's test images, `[n * 10]`.
fn candle_logits() -> Vec<f32> {
    let f = fixture();
    let x = images(&f.export.test, 0, f.export.test.len()).unwrap();
    let logits = layer_outputs(&f.export.source.model, &x).unwrap().pop().unwrap();
    assert_eq!(
        logits.argmax(1).unwrap().to_vec1::<u32>().unwrap().iter().map(|&p| p as u8).collect::<Vec<_>>(),
        f.export.f32_predictions,
        "layer_outputs must be the forward pass the accuracy was measured with"
    );
    logits.flatten_all().unwrap().to_vec1().unwrap()
}

/// Runs an ONNX file with tract on the fixture's test images; returns the `[n * 10]` output.
fn tract_run(name: &str) -> Vec<f32> {
    let f = fixture();
    tract_logits(&f.path(name), &f.export.test.images)
}

#[test]
fn writes_every_output_beside_the_input() {
    let f = fixture();
    for name in [export::INT8_FILE, export::ONNX_F32_FILE, export::ONNX_INT8_FILE, export::REPORT_FILE] {
        assert_eq!(std::fs::read(f.path(name)).unwrap(), f.export.file(name).unwrap(), "{name}");
    }
    // Readable like any file the user creates (tempfile's private 0600 must not survive the rename).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let plain = f.path("plain-file-create.txt");
        std::fs::File::create(&plain).unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        for name in [export::INT8_FILE, export::ONNX_F32_FILE, export::ONNX_INT8_FILE, export::REPORT_FILE] {
            assert_eq!(mode(&f.path(name)), mode(&plain), "{name}");
        }
        std::fs::remove_file(&plain).unwrap();
    }
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(f.path(export::REPORT_FILE)).unwrap()).unwrap();
    assert_eq!(report["test_images"], TEST_IMAGES);
    assert_eq!(report["calibration"]["images"], CALIBRATION);
    assert_eq!(report["arena_bytes"], 7203, "FORMAT.md's figure for the seed model");
    assert!(f.export.report.table().contains("f32 / int8 agreement"));
}

#[test]
fn int8_file_is_what_runtime_mobile_expects() {
    let f = fixture();
    let bytes = f.export.file(export::INT8_FILE).unwrap();
    let model = runtime_mobile::Model::parse(bytes).unwrap();
    assert_eq!(model.input_shape(), Shape::Chw(1, 28, 28));
    assert_eq!(model.input_quant().zero_point, -128);
    assert_eq!(model.declared_arena_bytes(), model.arena_bytes());
    assert_eq!(model.num_classes(), 10);
    assert_eq!(model.label(7), Some("7"));
    assert_eq!(model.dataset(), Some("mnist"));
    assert!(model.producer().is_some_and(|p| p.starts_with("export ")));
    let ops: Vec<&str> = model.layers().iter().map(|l| l.op.name()).collect();
    assert_eq!(ops, ["conv2d", "max_pool2d", "conv2d", "max_pool2d", "flatten", "dense", "dense"]);
    for l in model.layers() {
        if let Op::Conv2d { activation, output, .. } | Op::Dense { activation, output, .. } = l.op
            && activation == Activation::Relu
        {
            assert_eq!(output.zero_point, -128, "ReLU outputs are calibrated with min = 0");
        }
    }
    let close = |a: Option<f32>, b: f64| a.is_some_and(|a| (a as f64 - b).abs() < 1e-6);
    assert!(close(model.int8_accuracy(), f.export.report.int8_accuracy));
    assert!(close(model.f32_accuracy(), f.export.report.f32_accuracy));
    // Provenance keys sit beside the format's.
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes).unwrap();
    let meta = header.metadata().clone().unwrap();
    assert_eq!(meta[keys::LABELS], r#"["0","1","2","3","4","5","6","7","8","9"]"#);
    assert_eq!(meta["dataset"], "mnist");
}

/// The int8 ONNX holds uint8 activations (onnxruntime's fast u8 x s8 kernels) and int8 weights:
/// every activation zero point is the int8 file's `zp + 128`, every weight and weight zero point
/// int8, and no activation value is declared int8.
#[test]
fn int8_onnx_has_uint8_activations_and_int8_weights() {
    use prost::Message;
    use tract_onnx::pb::{ModelProto, tensor_proto::DataType};

    let f = fixture();
    let runtime = runtime_mobile::Model::parse(f.export.file(export::INT8_FILE).unwrap()).unwrap();
    let onnx = ModelProto::decode(f.export.file(export::ONNX_INT8_FILE).unwrap()).unwrap();
    let graph = onnx.graph.as_ref().unwrap();
    let init = |name: &str| graph.initializer.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("no initializer {name}"));
    let (mut activation_zps, mut weights) = (Vec::new(), Vec::new());
    for n in &graph.node {
        let slots: &[usize] = match n.op_type.as_str() {
            "QuantizeLinear" | "DequantizeLinear" => &[2],
            "QLinearConv" => {
                weights.push((n.input[3].clone(), n.input[5].clone()));
                &[2, 7]
            }
            _ => &[],
        };
        activation_zps.extend(slots.iter().map(|&i| n.input[i].clone()));
    }
    assert_eq!(weights.len(), 4, "two conv and two dense layers");
    assert_eq!(activation_zps.len(), 2 + 2 * 4);
    for name in &activation_zps {
        let t = init(name);
        assert_eq!(t.data_type, DataType::Uint8 as i32, "{name}");
        assert_eq!(t.raw_data.len(), 1, "{name}: one scalar zero point");
    }
    // The same zero points as the runtime's file, shifted by 128.
    let want_input = (runtime.input_quant().zero_point + 128) as u8;
    assert_eq!(init("input.zero_point").raw_data, [want_input]);
    assert_eq!(want_input, 0, "pixels 0..1 calibrate to int8 zero point -128");
    for (i, l) in runtime.layers().iter().enumerate() {
        if let Op::Conv2d { output, .. } | Op::Dense { output, .. } = l.op {
            let want = (output.zero_point + 128) as u8;
            assert_eq!(init(&format!("layers.{i}.output.zero_point")).raw_data, [want], "layer {i}");
        }
    }
    for (w, zp) in &weights {
        assert_eq!(init(w).data_type, DataType::Int8 as i32, "{w}");
        let zp = init(zp);
        assert_eq!(zp.data_type, DataType::Int8 as i32, "{}", zp.name);
        assert!(zp.raw_data.iter().all(|&b| b == 0), "{}: symmetric weights", zp.name);
    }
    for vi in graph.value_info.iter().chain(&graph.input).chain(&graph.output) {
        if let Some(tract_onnx::pb::type_proto::Value::TensorType(t)) = vi.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            assert_ne!(t.elem_type, DataType::Int8 as i32, "{}: activations are uint8", vi.name);
        }
    }
}

#[test]
fn int8_accuracy_stays_close_to_f32() {
    let r = &fixture().export.report;
    eprintln!("f32 {:.4} int8 {:.4} agreement {:.4}", r.f32_accuracy, r.int8_accuracy, r.agreement);
    assert!(r.f32_accuracy > 0.85, "the fixture model should have learnt something: {}", r.f32_accuracy);
    // The acceptance bound is 0.2 points on a fully trained MNIST model over 10 000 images; this
    // weakly trained fixture over 1000 images gets a little more room.
    assert!(r.accuracy_drop_points.abs() <= 0.5, "int8 {} vs f32 {}", r.int8_accuracy, r.f32_accuracy);
    assert!(r.agreement >= 0.99, "agreement {}", r.agreement);
}

#[test]
fn tract_runs_the_f32_onnx_like_candle() {
    let (candle, tract) = (candle_logits(), tract_run(export::ONNX_F32_FILE));
    let worst = candle.iter().zip(&tract).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    eprintln!("max |candle - tract| = {worst}");
    assert!(worst <= 1e-4, "max |candle - tract| = {worst}");
    assert_eq!(argmax_rows(&tract), fixture().export.f32_predictions);
}

#[test]
fn tract_runs_the_int8_onnx_like_runtime_mobile() {
    let f = fixture();
    let tract = argmax_rows(&tract_run(export::ONNX_INT8_FILE));
    let agreement = export::evaluate::agreement(&tract, &f.export.int8_predictions);
    eprintln!("tract int8 ONNX vs runtime-mobile: {agreement}");
    assert!(agreement >= 0.995, "tract int8 ONNX agrees with runtime-mobile on {agreement}");
}

/// The interpreter with numpy, onnx, onnxruntime and safetensors: `$TOOLKIT_PYTHON`, else the
/// venv `scripts/setup-python-venv` makes. Missing is a failure, never a skip.
fn python() -> PathBuf {
    let path = std::env::var_os("TOOLKIT_PYTHON").map(PathBuf::from).unwrap_or_else(|| repo_root().join(".venv/bin/python"));
    assert!(
        path.exists(),
        "no Python for export's cross-checks at {} (set TOOLKIT_PYTHON or run `bash scripts/setup-python-venv` \
         to create <repo>/.venv with export/requirements-test.txt)",
        path.display()
    );
    path
}

#[test]
fn python_onnx_checker_onnxruntime_and_safetensors_agree() {
    // First, so a missing interpreter fails at once, before the fixture trains.
    let python = python();
    let f = fixture();
    // Reference values for the script: the images, candle's logits, runtime-mobile's predictions.
    let n = f.export.test.len();
    let logits = candle_logits();
    let logit_bytes: Vec<u8> = logits.iter().flat_map(|x| x.to_le_bytes()).collect();
    let preds: Vec<u8> = f.export.int8_predictions.iter().flat_map(|&p| (p as i32).to_le_bytes()).collect();
    fn view(dtype: safetensors::Dtype, shape: Vec<usize>, data: &[u8]) -> safetensors::tensor::TensorView<'_> {
        safetensors::tensor::TensorView::new(dtype, shape, data).unwrap()
    }
    let reference = safetensors::serialize(
        [
            ("images", view(safetensors::Dtype::U8, vec![n, 1, 28, 28], &f.export.test.images)),
            ("candle_logits", view(safetensors::Dtype::F32, vec![n, 10], &logit_bytes)),
            ("runtime_predictions", view(safetensors::Dtype::I32, vec![n], &preds)),
        ],
        None,
    )
    .unwrap();
    let reference_path = f.path("reference.safetensors");
    std::fs::write(&reference_path, reference).unwrap();

    let script = repo_root().join("export/tests/python/check_export.py");
    let out = Command::new(python)
        .arg(&script)
        .arg("--dir")
        .arg(f.dir.path())
        .arg("--reference")
        .arg(&reference_path)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("{stdout}{stderr}");
    assert!(out.status.success(), "check_export.py failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("all checks passed"), "{stdout}");
}
