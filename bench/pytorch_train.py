#!/usr/bin/env python3
"""The project's CNN and recipe in PyTorch, as a reference for the Rust trainer.

A plain eager loop: the whole training set is one tensor, each epoch takes a fresh permutation
and slices batches out of it (the same work a DataLoader would do, without worker processes that
would blur the memory and time figures).
"""

import math
import time

import torch
from torch import nn

import common

LR = 1e-3


def make_model() -> nn.Sequential:
    # PyTorch's default init is already the recipe's: uniform ±1/sqrt(fan_in) for weights and
    # biases (kaiming_uniform_ with a=sqrt(5) reduces to that bound).
    return nn.Sequential(
        nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),  # NCHW, so channel-major: the 1024 features are in the Rust model's order
        nn.Linear(1024, 64), nn.ReLU(),
        nn.Linear(64, 10),
    )


def train_epoch(model, optimizer, x, y, batch_size, generator):
    """One pass over a fresh permutation; (mean loss, accuracy) of the batches as trained."""
    model.train()
    # On a GPU the data, the permutation and the running sums all stay on the device: the loop
    # never waits for the host (the same rules the Rust trainer's CUDA path follows).
    order = torch.randperm(len(x), generator=generator, device=x.device)
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    for start in range(0, len(x), batch_size):
        idx = order[start : start + batch_size]
        xb, yb = x[idx], y[idx]
        logits = model(xb)
        loss = nn.functional.cross_entropy(logits, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        # Accumulated as tensors: no Python float conversion in the hot loop.
        loss_sum += loss.detach() * len(idx)
        correct += (logits.detach().argmax(1) == yb).sum()
    return loss_sum.item() / len(x), correct.item() / len(x)


@torch.no_grad()
def evaluate(model, x, y, batch_size=1000):
    model.eval()
    loss_sum, correct = 0.0, 0
    for start in range(0, len(x), batch_size):
        logits = model(x[start : start + batch_size])
        yb = y[start : start + batch_size]
        loss_sum += nn.functional.cross_entropy(logits, yb, reduction="sum").item()
        correct += (logits.argmax(1) == yb).sum().item()
    return loss_sum / len(x), correct / len(x)


def main():
    args = common.parse_args("PyTorch", devices=("cpu", "cuda"))
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    x_train, y_train, x_test, y_test = (torch.from_numpy(a).to(device) for a in
                                        common.load_dataset(args.data_dir, args.dataset, args.limit))
    x_train, x_test = x_train.unsqueeze(1), x_test.unsqueeze(1)  # [n, 1, 28, 28]
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    print(f"PyTorch {torch.__version__}, {where}, "
          f"{len(x_train)} training images, {math.ceil(len(x_train) / args.batch_size)} steps/epoch",
          flush=True)

    model = make_model().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, betas=(0.9, 0.999), eps=1e-8)
    generator = torch.Generator(device=device).manual_seed(args.seed)
    epochs = []
    for epoch in range(1, args.epochs + 1):
        started = time.perf_counter()
        train_loss, train_acc = train_epoch(model, optimizer, x_train, y_train, args.batch_size, generator)
        wall = time.perf_counter() - started  # train_epoch ends with .item(): the GPU is done
        test_loss, test_acc = evaluate(model, x_test, y_test)
        epochs.append({
            "epoch": epoch,
            "wall_seconds": wall,
            "train_loss": train_loss,
            "train_accuracy": train_acc,
            "test_loss": test_loss,
            "test_accuracy": test_acc,
            "peak_rss_bytes": common.peak_rss_bytes(),
        })
        common.print_epoch(args.epochs, epochs[-1])
    extra = {"peak_gpu_allocated_bytes": torch.cuda.max_memory_allocated(device)} if device.type == "cuda" else {}
    common.write_metrics(args, "pytorch", torch.__version__, LR, epochs, extra)


if __name__ == "__main__":
    main()
