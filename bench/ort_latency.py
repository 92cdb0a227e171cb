"""Single-image latency of onnxruntime (batch 1, one thread) on ONNX files, timed in-process.

Usage: ort_latency.py --model NAME=PATH [--model NAME=PATH ...] --data-dir data/mnist
                      [--images 100] [--warm-up 3] [--measure 5] [--samples 100]
                      [--floor] [--profile] --out OUT.json

The counterpart of bench/runtime-latency (criterion) for bench/runtime_compare: the same first N
MNIST test images as `[1,1,28,28]` float32 arrays of pixels / 255, each call classifying the next
one (cycling), and criterion's estimators: after --warm-up seconds of calls, --samples samples of
k consecutive calls each (k chosen so that all samples take about --measure seconds), each
sample's time.perf_counter_ns() span divided by k; the median and mean of those per-call times
are reported (criterion reports the same two statistics of its samples, plus a min/max).

Sessions: CPUExecutionProvider, intra_op_num_threads=1, inter_op_num_threads=1,
ORT_SEQUENTIAL execution, ORT_ENABLE_ALL graph optimisation (the default), no spinning.
Each timed call is `session.run(None, {input: x})` plus an argmax, so the Python binding's
per-call cost is included; `--floor` also times an Identity model with the same input and output
shapes to show that cost. `--profile` adds onnxruntime's own per-node kernel times (from its
profiler, in a separate session after the timing) to show where the time goes.

Before timing, every model classifies all N images; the counts that match the labels are written
to OUT.json with the timings and versions.
"""

import argparse
import gzip
import json
import platform
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnxruntime as ort


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


def session(path, profile: bool = False) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    if profile:
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tempfile.gettempdir()) / "ort_latency_profile")
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def identity_model() -> bytes:
    """An ONNX model that only copies a [1,1,28,28] float input to a [1,10] output (Slice of the
    flattened input), the floor of what one session.run costs from Python."""
    import onnx
    from onnx import TensorProto, helper

    starts = helper.make_tensor("starts", TensorProto.INT64, [1], [0])
    ends = helper.make_tensor("ends", TensorProto.INT64, [1], [10])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["input"], ["flat"]),
         helper.make_node("Slice", ["flat", "starts", "ends", "axes"], ["output"])],
        "floor",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 28, 28])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 10])],
        [starts, ends, axes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def time_model(sess: ort.InferenceSession, inputs: list, args) -> dict:
    name = sess.get_inputs()[0].name
    feeds = [{name: x} for x in inputs]
    n = len(feeds)
    run = sess.run
    argmax = np.argmax
    clock = time.perf_counter_ns

    def calls(k: int, start: int) -> int:
        i = start
        for _ in range(k):
            i += 1
            if i == n:
                i = 0
            argmax(run(None, feeds[i])[0])
        return i

    # Warm-up, which also estimates the per-call time for choosing k.
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
    return {
        "median_ns": statistics.median(samples),
        "mean_ns": statistics.fmean(samples),
        "min_ns": min(samples),
        "max_ns": max(samples),
        "samples": len(samples),
        "calls_per_sample": k,
        "warm_up_calls": done,
    }


def node_profile(path: str, x: np.ndarray, runs: int = 200) -> list:
    """onnxruntime's own per-node kernel times (its profiler, a separate session, after the
    timing): [(node, op, median us)] in execution order, for the notes beside the table."""
    sess = session(path, profile=True)
    feed = {sess.get_inputs()[0].name: x}
    for _ in range(runs):
        sess.run(None, feed)
    prof = Path(sess.end_profiling())
    times = defaultdict(list)
    for e in json.loads(prof.read_text()):
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            times[(e["name"][: -len("_kernel_time")], e["args"].get("op_name", "?"))].append(e["dur"])
    prof.unlink()
    return [{"node": n, "op": op, "median_us": statistics.median(d)} for (n, op), d in times.items()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", action="append", required=True, metavar="NAME=PATH")
    p.add_argument("--data-dir", type=Path, required=True, help="folder with the t10k IDX files")
    p.add_argument("--images", type=int, default=100)
    p.add_argument("--warm-up", type=float, default=3.0, help="seconds (criterion's default)")
    p.add_argument("--measure", type=float, default=5.0, help="seconds (criterion's default)")
    p.add_argument("--samples", type=int, default=100, help="(criterion's default)")
    p.add_argument("--floor", action="store_true", help="also time an Identity-like model")
    p.add_argument("--profile", action="store_true",
                   help="also record onnxruntime's per-node kernel times (separate session)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()

    images = read_idx(args.data_dir / "t10k-images-idx3-ubyte.gz", 0x803, args.images)
    labels = read_idx(args.data_dir / "t10k-labels-idx1-ubyte.gz", 0x801, args.images)[:, 0]
    inputs = [np.ascontiguousarray((img.astype(np.float32) / np.float32(255.0)).reshape(1, 1, 28, 28))
              for img in images]

    models = []
    for spec in args.model:
        name, _, path = spec.partition("=")
        if not path:
            sys.exit(f"--model takes NAME=PATH, got {spec!r}")
        models.append((name, path))
    if args.floor:
        models.append(("ort_call_floor", None))

    results = []
    for name, path in models:
        sess = session(path if path is not None else identity_model())
        preds = np.array([int(np.argmax(sess.run(None, {sess.get_inputs()[0].name: x})[0]))
                          for x in inputs])
        r = time_model(sess, inputs, args)
        if path is not None and args.profile:
            r["node_profile"] = node_profile(path, inputs[0])
        r.update({"id": name, "path": path, "predictions": preds.tolist(),
                  "correct": int(np.sum(preds == labels)) if path is not None else None,
                  "images": len(inputs)})
        print(f"{name}: median {r['median_ns'] / 1000:.2f} us, mean {r['mean_ns'] / 1000:.2f} us "
              f"({r['samples']} samples x {r['calls_per_sample']} calls)"
              + (f", {r['correct']}/{len(inputs)} correct" if path is not None else ""),
              flush=True)
        results.append(r)

    args.out.write_text(json.dumps({
        "onnxruntime": ort.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "providers": ["CPUExecutionProvider"],
        "results": results,
    }, indent=2) + "\n")


if __name__ == "__main__":
    main()
