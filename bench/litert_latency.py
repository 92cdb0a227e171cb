"""LiteRT (ai-edge-litert, XNNPACK, one thread): exports the bench's network to a full-integer
TFLite file, and times it like ort_latency.py times onnxruntime.

Usage: litert_latency.py export --checkpoint model.safetensors --data-dir data/mnist --out model.int8.tflite
       litert_latency.py time --model NAME=PATH --data-dir data/mnist [--images 100] --out OUT.json

`export` rebuilds the network in Keras (NHWC: Conv2D 32 5x5 valid + ReLU, MaxPool 2, Conv2D 64
5x5 valid + ReLU, MaxPool 2, Flatten, Dense 64 + ReLU, Dense 10) with the checkpoint's weights
(conv kernels [oc, ic, kh, kw] -> [kh, kw, ic, oc]; fc1's 1024 inputs reordered from CHW to HWC
flattening), checks that it classifies the first --check test images as the checkpoint's
network does in f32 (numpy reference of the same layers), and converts it with the TFLite
converter's full-integer quantization (Optimize.DEFAULT, TFLITE_BUILTINS_INT8 only, int8
weights per channel and int8 activations) calibrated on the first --calibration training
images. Input and output stay float32 (a Quantize op in front, a Dequantize op at the end), as
the int8 ONNX file's QuantizeLinear/DequantizeLinear do for onnxruntime.

`time` runs each file in ai_edge_litert.interpreter.Interpreter(num_threads=1) (LiteRT applies
its default XNNPACK delegate, which runs the int8 Conv2D/FullyConnected as QS8 kernels), on the
first N MNIST test images as [1, 28, 28, 1] float32 pixels / 255, one call per image, cycling:
set_tensor + invoke + get_tensor + argmax, so the Python binding's per-call cost is included as it
is for onnxruntime. The estimators are ort_latency.py's (criterion's): --warm-up seconds, then
--samples samples of k calls over about --measure seconds; median and mean per call.
"""

import argparse
import gzip
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def read_idx(path: Path, magic: int, n: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    header = np.frombuffer(data, dtype=">u4", count=4 if magic == 0x803 else 2)
    if int(header[0]) != magic:
        sys.exit(f"{path}: not an IDX file with magic {magic:#x}")
    if int(header[1]) < n:
        sys.exit(f"{path}: holds {int(header[1])} items, asked for {n}")
    offset = 16 if magic == 0x803 else 8
    size = 784 if magic == 0x803 else 1
    return np.frombuffer(data, dtype=np.uint8, count=n * size, offset=offset).reshape(n, size)


def images_nhwc(path: Path, n: int) -> np.ndarray:
    return (read_idx(path, 0x803, n).astype(np.float32) / np.float32(255.0)).reshape(n, 28, 28, 1)


def reference_logits(w: dict, x_nhwc: np.ndarray) -> np.ndarray:
    """The checkpoint's network in f32 numpy (NCHW, as trained), for checking the Keras copy."""

    def conv_relu_pool(x, k, b):
        oc, ic, kh, kw = k.shape
        n, _, h, wd = x.shape
        oh, ow = h - kh + 1, wd - kw + 1
        cols = np.stack([x[:, :, i:i + oh, j:j + ow] for i in range(kh) for j in range(kw)], axis=2)
        # cols: [n, ic, kh*kw, oh, ow] -> y: [n, oc, oh, ow]
        y = np.einsum("nckhw,ock->nohw", cols, k.reshape(oc, ic, kh * kw)) + b[None, :, None, None]
        y = np.maximum(y, 0)
        return y.reshape(n, oc, oh // 2, 2, ow // 2, 2).max(axis=(3, 5))

    x = x_nhwc.transpose(0, 3, 1, 2)
    x = conv_relu_pool(x, w["conv1.weight"], w["conv1.bias"])
    x = conv_relu_pool(x, w["conv2.weight"], w["conv2.bias"])
    x = x.reshape(x.shape[0], -1)
    x = np.maximum(x @ w["fc1.weight"].T + w["fc1.bias"], 0)
    return x @ w["fc2.weight"].T + w["fc2.bias"]


def keras_model(w: dict):
    import keras

    conv2_c, pooled = w["conv2.weight"].shape[0], 4
    m = keras.Sequential([
        keras.Input((28, 28, 1), batch_size=1),
        keras.layers.Conv2D(32, 5, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(conv2_c, 5, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10),
    ])
    fc1 = w["fc1.weight"]  # [64, c * h * w] in CHW order; Keras flattens HWC
    fc1_hwc = fc1.reshape(-1, conv2_c, pooled, pooled).transpose(2, 3, 1, 0).reshape(-1, fc1.shape[0])
    m.set_weights([
        w["conv1.weight"].transpose(2, 3, 1, 0), w["conv1.bias"],
        w["conv2.weight"].transpose(2, 3, 1, 0), w["conv2.bias"],
        fc1_hwc, w["fc1.bias"],
        w["fc2.weight"].T, w["fc2.bias"],
    ])
    return m


def export(args) -> None:
    import tensorflow as tf
    from safetensors.numpy import load_file

    w = {k: v.astype(np.float32) for k, v in load_file(str(args.checkpoint)).items()}
    m = keras_model(w)
    test = images_nhwc(args.data_dir / "t10k-images-idx3-ubyte.gz", args.check)
    want = np.argmax(reference_logits(w, test), axis=1)
    got = np.argmax(m.predict(test, batch_size=100, verbose=0), axis=1)
    if not np.array_equal(want, got):
        sys.exit(f"litert_latency: the Keras copy disagrees with the checkpoint on "
                 f"{int(np.sum(want != got))}/{args.check} images")
    calib = images_nhwc(args.data_dir / "train-images-idx3-ubyte.gz", args.calibration)

    def representative():
        for x in calib:
            yield [x[None]]

    conv = tf.lite.TFLiteConverter.from_keras_model(m)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    args.out.write_bytes(conv.convert())
    print(f"litert_latency: wrote {args.out} ({args.out.stat().st_size} bytes); the Keras copy "
          f"matches the checkpoint on {args.check}/{args.check} test images", flush=True)


def interpreter(path: str):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=path, num_threads=1)
    it.allocate_tensors()
    return it


def time_model(it, inputs: list, args) -> dict:
    inp, out = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    n = len(inputs)
    set_tensor, invoke, get_tensor, argmax = it.set_tensor, it.invoke, it.get_tensor, np.argmax
    clock = time.perf_counter_ns

    def calls(k: int, start: int) -> int:
        i = start
        for _ in range(k):
            i += 1
            if i == n:
                i = 0
            set_tensor(inp, inputs[i])
            invoke()
            argmax(get_tensor(out))
        return i

    i, done, t0 = 0, 0, clock()
    deadline = t0 + int(args.warm_up * 1e9)
    while clock() < deadline:
        i = calls(10, i)
        done += 10
    per_call = (clock() - t0) / done
    k = max(1, int(args.measure * 1e9 / args.samples / per_call))
    samples = []
    for _ in range(args.samples):
        t = clock()
        i = calls(k, i)
        samples.append((clock() - t) / k)
    return {"median_ns": statistics.median(samples), "mean_ns": statistics.fmean(samples),
            "min_ns": min(samples), "max_ns": max(samples), "samples": len(samples),
            "calls_per_sample": k, "warm_up_calls": done}


def time_all(args) -> None:
    import ai_edge_litert

    x = images_nhwc(args.data_dir / "t10k-images-idx3-ubyte.gz", args.images)
    labels = read_idx(args.data_dir / "t10k-labels-idx1-ubyte.gz", 0x801, args.images)[:, 0]
    inputs = [np.ascontiguousarray(v[None]) for v in x]
    results = []
    for spec in args.model:
        name, _, path = spec.partition("=")
        if not path:
            sys.exit(f"--model takes NAME=PATH, got {spec!r}")
        it = interpreter(path)
        inp, out = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
        preds = []
        for v in inputs:
            it.set_tensor(inp, v)
            it.invoke()
            preds.append(int(np.argmax(it.get_tensor(out))))
        r = time_model(it, inputs, args)
        r.update({"id": name, "path": path, "predictions": preds,
                  "correct": int(np.sum(np.array(preds) == labels)), "images": len(inputs)})
        print(f"{name}: median {r['median_ns'] / 1000:.2f} us, mean {r['mean_ns'] / 1000:.2f} us "
              f"({r['samples']} samples x {r['calls_per_sample']} calls), {r['correct']}/{len(inputs)} "
              f"correct", flush=True)
        results.append(r)
    version = getattr(ai_edge_litert, "__version__", None)
    if version is None:
        from importlib.metadata import version as dist_version
        version = dist_version("ai-edge-litert")
    args.out.write_text(json.dumps({"litert": version, "numpy": np.__version__,
                                    "python": platform.python_version(), "results": results},
                                   indent=2) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export")
    e.add_argument("--checkpoint", type=Path, required=True)
    e.add_argument("--data-dir", type=Path, required=True, help="folder with the MNIST IDX files")
    e.add_argument("--calibration", type=int, default=500, help="training images for calibration")
    e.add_argument("--check", type=int, default=1000, help="test images the Keras copy must agree on")
    e.add_argument("--out", type=Path, required=True)
    t = sub.add_parser("time")
    t.add_argument("--model", action="append", required=True, metavar="NAME=PATH")
    t.add_argument("--data-dir", type=Path, required=True, help="folder with the t10k IDX files")
    t.add_argument("--images", type=int, default=100)
    t.add_argument("--warm-up", type=float, default=3.0, help="seconds (criterion's default)")
    t.add_argument("--measure", type=float, default=5.0, help="seconds (criterion's default)")
    t.add_argument("--samples", type=int, default=100, help="(criterion's default)")
    t.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    export(args) if args.cmd == "export" else time_all(args)


if __name__ == "__main__":
    main()
