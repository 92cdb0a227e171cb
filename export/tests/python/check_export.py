"""Cross-checks export's outputs with the reference Python stack (run by export's Rust tests).

Usage: check_export.py --dir DIR --reference REFERENCE.safetensors

DIR holds model.onnx, model.int8.onnx and model.int8.safetensors. REFERENCE holds `images`
(uint8 [n,1,28,28]), `candle_logits` (float32 [n,10], the f32 model in candle) and
`runtime_predictions` (int32 [n], runtime-mobile running model.int8.safetensors).

Checks:
1. onnx.checker.check_model(full_check=True) accepts both ONNX files.
2. onnxruntime runs model.onnx: logits within 1e-4 of candle's, same predictions.
3. onnxruntime runs model.int8.onnx: predictions agree with runtime-mobile on >= 99.5% of images
   (>= 98% on x86 CPUs without VNNI, whose u8 x s8 kernels saturate: see U8S8_SATURATES), and
   on its int8-activation twin (every activation zero point - 128 as int8, onnxruntime's exact
   s8 x s8 path) on >= 99.5% everywhere, so the file's integers are checked strictly on any CPU.
4. model.int8.safetensors loads with safetensors + numpy; its metadata values parse as JSON
   (except `format`, a plain string); tensors have the dtypes FORMAT.md specifies.

Prints one line per check and `all checks passed`; exits 1 on the first failure.
"""

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from safetensors import safe_open
from safetensors.numpy import load_file

LOGIT_TOLERANCE = 1e-4
MIN_INT8_AGREEMENT = 0.995
# onnxruntime's x86 u8 x s8 kernels without VNNI (AVX2, AVX-512BW) multiply with vpmaddubsw, whose
# i16 pair sums saturate for large activations and weights (microsoft/onnxruntime#16105, #24220);
# on such CPUs its results for export's uint8-activation file differ from the exact integers.
# Measured on an AMD EPYC (AVX2): 99.01% agreement on the test fixture, while its int8 twin agrees
# on >= 99.5%.
MIN_INT8_AGREEMENT_SATURATING = 0.98


def u8s8_saturates() -> bool:
    """True on x86 CPUs whose onnxruntime u8 x s8 kernels use vpmaddubsw (no VNNI)."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i686", "x86"):
        return False
    try:
        flags = next(l for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("flags")).split()
    except (OSError, StopIteration):
        return True
    return not ({"avx512_vnni", "avx_vnni"} & set(flags))


def int8_activation_twin(src: Path, dst: Path) -> None:
    """Writes `src` (uint8 activations) with int8 activations: every activation zero point
    (QuantizeLinear/DequantizeLinear input 2, QLinearConv inputs 2 and 7) becomes `zp - 128`."""
    from onnx import numpy_helper

    model = onnx.load(str(src))
    zps = set()
    for node in model.graph.node:
        slots = {"QuantizeLinear": (2,), "DequantizeLinear": (2,), "QLinearConv": (2, 7)}.get(node.op_type, ())
        zps.update(node.input[i] for i in slots)
    for t in model.graph.initializer:
        if t.name in zps:
            a = numpy_helper.to_array(t)
            if a.dtype != np.uint8:
                fail(f"{src.name}: activation zero point {t.name} is {a.dtype}, not uint8")
            t.CopyFrom(numpy_helper.from_array((a.astype(np.int16) - 128).astype(np.int8), t.name))
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(dst))


def fail(msg: str) -> None:
    print(f"FAIL: {msg}", flush=True)
    sys.exit(1)


def run_onnx(path: Path, images: np.ndarray) -> np.ndarray:
    opts = ort.SessionOptions()
    # Run the graph as written (no fusions), so what is checked is our file, not a rewrite of it.
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    (out,) = session.get_outputs()
    return session.run([out.name], {inp.name: images})[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--reference", type=Path, required=True)
    args = parser.parse_args()

    ref = load_file(str(args.reference))
    images = ref["images"].astype(np.float32) / np.float32(255.0)
    candle_logits = ref["candle_logits"]
    runtime_predictions = ref["runtime_predictions"].astype(np.int64)
    n = images.shape[0]

    for name in ["model.onnx", "model.int8.onnx"]:
        path = args.dir / name
        try:
            onnx.checker.check_model(str(path), full_check=True)
        except Exception as e:  # the checker raises several exception types
            fail(f"onnx.checker rejects {name}: {e}")
        print(f"ok: onnx.checker.check_model(full_check=True) accepts {name}")

    logits = run_onnx(args.dir / "model.onnx", images)
    if logits.shape != candle_logits.shape:
        fail(f"model.onnx output shape {logits.shape}, candle {candle_logits.shape}")
    worst = float(np.max(np.abs(logits - candle_logits)))
    if worst > LOGIT_TOLERANCE:
        fail(f"model.onnx logits differ from candle's by up to {worst} (> {LOGIT_TOLERANCE})")
    same = int(np.sum(logits.argmax(1) == candle_logits.argmax(1)))
    if same != n:
        fail(f"model.onnx predicts like candle on {same}/{n} images")
    print(f"ok: onnxruntime model.onnx matches candle on {n} images (max |diff| {worst:.2e})")

    twin = args.dir / "model.int8.s8act.onnx"
    int8_activation_twin(args.dir / "model.int8.onnx", twin)
    saturates = u8s8_saturates()
    for name, path, need in [
        ("model.int8.onnx", args.dir / "model.int8.onnx",
         MIN_INT8_AGREEMENT_SATURATING if saturates else MIN_INT8_AGREEMENT),
        ("its int8-activation twin", twin, MIN_INT8_AGREEMENT),
    ]:
        int8_logits = run_onnx(path, images)
        agreement = float(np.mean(int8_logits.argmax(1) == runtime_predictions))
        if agreement < need:
            fail(f"{name} in onnxruntime agrees with runtime-mobile on {agreement:.4f} (< {need})")
        note = " (this CPU's u8 x s8 kernels saturate)" if saturates and path != twin else ""
        print(f"ok: onnxruntime {name} agrees with runtime-mobile on {agreement:.4%} of {n} images{note}")

    int8_path = args.dir / "model.int8.safetensors"
    tensors = load_file(str(int8_path))
    with safe_open(str(int8_path), framework="np") as f:
        metadata = f.metadata()
    for key, value in metadata.items():
        if key in ("format", "producer", "dataset"):
            continue  # plain strings by definition
        try:
            json.loads(value)
        except json.JSONDecodeError as e:
            fail(f"metadata `{key}` is not JSON: {e}: {value!r}")
    if metadata.get("format") != "runtime-mobile":
        fail(f"metadata format is {metadata.get('format')!r}")
    layers = json.loads(metadata["layers"])
    labels = json.loads(metadata["labels"])
    if len(labels) != 10 or json.loads(metadata["arena_bytes"]) <= 0:
        fail(f"labels {labels}, arena_bytes {metadata['arena_bytes']}")
    for name, t in tensors.items():
        want = np.int8 if name.endswith(".weight") else np.int32
        if t.dtype != want:
            fail(f"tensor {name} is {t.dtype}, expected {np.dtype(want)}")
    with_tensors = [i for i, l in enumerate(layers) if l["op"] in ("conv2d", "dense")]
    if sorted(tensors) != sorted(f"layers.{i}.{s}" for i in with_tensors for s in ("weight", "bias", "multiplier", "shift")):
        fail(f"unexpected tensor names {sorted(tensors)}")
    print(f"ok: model.int8.safetensors loads with safetensors+numpy: {len(tensors)} tensors, {len(layers)} layers, metadata JSON parses")

    print("all checks passed")


if __name__ == "__main__":
    main()
