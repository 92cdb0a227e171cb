"""Shared helpers of the reference scripts: reading the gzip IDX files, the common CLI, and
writing metrics.json in the schema of the Rust trainer (train/src/metrics.rs).

Kept framework-free (numpy and the standard library only) so that both scripts read exactly
the same bytes the same way, and neither pulls in the other's framework.
"""

import argparse
import gzip
import json
import os
import resource
import struct
from pathlib import Path

import numpy as np

DATASETS = ("mnist", "fashion-mnist")


def read_idx(path: Path) -> np.ndarray:
    """One gzip IDX file as a uint8 array of the shape its header gives."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape}, file holds {array.size} bytes")
    return array.reshape(shape)


def load_split(folder: Path, split: str, limit=None):
    """(images float32 [n, 28, 28] in [0, 1], labels int64 [n]) of split 'train' or 't10k',
    the first LIMIT examples only if set."""
    images = read_idx(folder / f"{split}-images-idx3-ubyte.gz")
    labels = read_idx(folder / f"{split}-labels-idx1-ubyte.gz")
    if len(images) != len(labels):
        raise ValueError(f"{folder}: {len(images)} {split} images but {len(labels)} labels")
    images, labels = images[:limit], labels[:limit]
    # One float32 array, no float64 intermediate: peak memory is one of the measured figures.
    return np.divide(images, 255, dtype=np.float32), labels.astype(np.int64)


def load_dataset(root: str, dataset: str, limit):
    """(x_train, y_train, x_test, y_test) of ROOT/DATASET; the test split is always whole."""
    folder = Path(root) / dataset
    return (*load_split(folder, "train", limit), *load_split(folder, "t10k"))


def parse_args(framework: str, devices=("cpu",)) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=f"Train the project's reference CNN with {framework} on MNIST or "
        "Fashion-MNIST and write metrics.json in the Rust trainer's schema."
    )
    parser.add_argument("--data-dir", default="data",
                        help="folder holding the mnist/ and fashion-mnist/ subfolders, each with the "
                        "four gzip IDX files, as for `train --data-dir` (default: data)")
    parser.add_argument("--dataset", choices=DATASETS, default="mnist", help="default: mnist")
    parser.add_argument("--epochs", type=int, default=5, help="default: 5")
    parser.add_argument("--batch-size", type=int, default=32, help="default: 32")
    parser.add_argument("--seed", type=int, default=0, help="default: 0")
    parser.add_argument("--limit", type=int, default=None,
                        help="train on the first N training images only (smoke tests)")
    parser.add_argument("--out", default=None, help="write the metrics JSON here")
    parser.add_argument("--device", choices=devices, default="cpu", help="default: cpu")
    args = parser.parse_args()
    if args.epochs < 1 or args.batch_size < 1 or (args.limit is not None and args.limit < 1):
        parser.error("--epochs, --batch-size and --limit must be at least 1")
    return args


def peak_rss_bytes() -> int:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def print_epoch(epochs: int, m: dict) -> None:
    print(
        f"epoch {m['epoch']}/{epochs}: {m['wall_seconds']:.1f} s, "
        f"train loss {m['train_loss']:.4f} acc {m['train_accuracy'] * 100:.2f}%, "
        f"test loss {m['test_loss']:.4f} acc {m['test_accuracy'] * 100:.2f}%",
        flush=True,
    )


def write_metrics(args, framework: str, version: str, lr: float, epochs: list, extra=None) -> None:
    """metrics.json as train/src/metrics.rs writes it (recipe included), if --out was given."""
    if args.out is None:
        return
    metrics = {
        "framework": framework,
        "framework_version": version,
        "device": args.device,
        "dataset": args.dataset,
        "recipe": {
            "dataset": args.dataset,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": lr,
            "seed": args.seed,
            "limit": args.limit,
        },
        "epochs": epochs,
        "total_seconds": sum(e["wall_seconds"] for e in epochs),
        "final_test_accuracy": epochs[-1]["test_accuracy"],
        **(extra or {}),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    os.replace(tmp, out)
