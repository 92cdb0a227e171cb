#!/usr/bin/env python3
"""The project's CNN and recipe in TensorFlow/Keras, as a reference for the Rust trainer.

The idiomatic Keras path: a Sequential model, compile, and one model.fit over numpy arrays
with shuffle=True (Keras reshuffles every epoch). A callback times each epoch's training and
then evaluates on the test set, so evaluation stays out of the epoch time.
"""

import math
import os
import time

# Keep TensorFlow's C++ start-up chatter (oneDNN and CPU-feature notices) out of the progress.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

import keras  # noqa: E402  (after the environment variable above)
import tensorflow as tf  # noqa: E402

import common  # noqa: E402

LR = 1e-3


def fan_in_uniform(fan_in: int) -> keras.initializers.Initializer:
    """PyTorch's default init, which the recipe prescribes: uniform ±1/sqrt(fan_in), used for
    biases too (Keras' defaults are Glorot-uniform weights and zero biases)."""
    bound = 1 / math.sqrt(fan_in)
    return keras.initializers.RandomUniform(-bound, bound)


def dense_or_conv(layer, fan_in: int, *args, **kwargs):
    # A fresh initializer per use: Keras seeds each unseeded instance from the global seed.
    return layer(*args, kernel_initializer=fan_in_uniform(fan_in),
                 bias_initializer=fan_in_uniform(fan_in), **kwargs)


def make_model() -> keras.Sequential:
    # Keras on CPU is channels-last (NHWC), so Flatten orders the 1024 features position-major
    # rather than channel-major as in the Rust and PyTorch models. With i.i.d. init that only
    # permutes the first Dense layer's rows: the same model and training dynamics in law.
    return keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        dense_or_conv(keras.layers.Conv2D, 1 * 5 * 5, 32, 5, activation="relu"),
        keras.layers.MaxPooling2D(2),
        dense_or_conv(keras.layers.Conv2D, 32 * 5 * 5, 64, 5, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        dense_or_conv(keras.layers.Dense, 1024, 64, activation="relu"),
        dense_or_conv(keras.layers.Dense, 64, 10),
    ])


class EpochMetrics(keras.callbacks.Callback):
    """Per-epoch records in the Rust trainer's schema."""

    def __init__(self, x_test, y_test, epochs: int):
        super().__init__()
        self.x_test, self.y_test, self.n_epochs = x_test, y_test, epochs
        self.records = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        wall = time.perf_counter() - self.started
        test_loss, test_acc = self.model.evaluate(self.x_test, self.y_test, batch_size=1000, verbose=0)
        self.records.append({
            "epoch": epoch + 1,
            "wall_seconds": wall,
            # Keras' running means over the epoch's batches, weighted by batch size: the same
            # figures the Rust trainer and the PyTorch script report.
            "train_loss": float(logs["loss"]),
            "train_accuracy": float(logs["accuracy"]),
            "test_loss": float(test_loss),
            "test_accuracy": float(test_acc),
            "peak_rss_bytes": common.peak_rss_bytes(),
        })
        common.print_epoch(self.n_epochs, self.records[-1])


def main():
    args = common.parse_args("TensorFlow/Keras")
    keras.utils.set_random_seed(args.seed)  # Python, numpy and TensorFlow seeds
    x_train, y_train, x_test, y_test = common.load_dataset(args.data_dir, args.dataset, args.limit)
    x_train, x_test = x_train[..., None], x_test[..., None]  # [n, 28, 28, 1]
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {len(x_train)} training images, "
          f"{math.ceil(len(x_train) / args.batch_size)} steps/epoch", flush=True)

    model = make_model()
    model.compile(
        # Keras' default epsilon is 1e-7; the recipe (and PyTorch) use 1e-8.
        optimizer=keras.optimizers.Adam(learning_rate=LR, beta_1=0.9, beta_2=0.999, epsilon=1e-8),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    metrics = EpochMetrics(x_test, y_test, args.epochs)
    model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, shuffle=True,
              callbacks=[metrics], verbose=0)  # the callback prints each epoch
    common.write_metrics(args, "tensorflow", tf.__version__, LR, metrics.records)


if __name__ == "__main__":
    main()
