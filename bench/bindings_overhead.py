"""Writes the phone bindings' per-call costs (the `bench ...` lines scripts/ci-bindings --bench
prints) into bench/RESULTS.md between the bindings_overhead markers (a new section at the end
the first time; nothing else in the file changes).

    python3 bench/bindings_overhead.py BENCH_TXT RESULTS_MD CALLS_PER_RUN
"""
import datetime
import os
import platform
import statistics
import subprocess
import sys

BEGIN, END = "<!-- bindings_overhead:begin -->", "<!-- bindings_overhead:end -->"
PATHS = [
    ("rust", "`runtime_mobile::Classifier` called directly (the baseline)"),
    ("rust-engine", "the bindings' Rust layer: `Engine` (lock, timing) + the JNI answer packing"),
    ("jni", "JNI: `JniClassifier.classifyFrame` (direct ByteBuffer) / `classifyImage` into a reused `FrameResult`"),
    ("kotlin-jna", "uniffi Kotlin over JNA (`ByteArray` in, `Answer` record out)"),
    ("python", "uniffi Python over ctypes (`bytes` in, `Answer` out)"),
]


def parse(path):
    runs, alloc, load = {}, {}, {}
    for line in open(path, encoding="utf-8"):
        f = line.split()
        if f[:1] == ["bench"] and f[1] == "jni-alloc-bytes":
            alloc[f[2]] = float(f[3])
        elif f[:1] == ["bench"]:
            runs[(f[1], f[2])] = [float(x) for x in f[3:]]
        elif f and f[0] in ("load-before", "load-after"):
            load[f[0]] = " ".join(f[1:])
    return runs, alloc, load


def cell(runs):
    return f"{statistics.median(runs):.1f} ({min(runs):.1f}-{max(runs):.1f})"


def over(runs, base):
    return f"{min(runs) - min(base):+.1f} / {statistics.median(runs) - statistics.median(base):+.1f}"


def table(runs, alloc, load, calls):
    rows = [
        "| path | 640x480 Y frame, us/call: median (min-max) | over Rust: min / median | 28x28 image, us/call | over Rust: min / median |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    base_f, base_i = runs[("rust", "frame640x480")], runs[("rust", "image28x28")]
    for key, what in PATHS:
        f, i = runs.get((key, "frame640x480")), runs.get((key, "image28x28"))
        if f is None or i is None:
            continue
        rows.append(f"| {key}: {what} | {cell(f)} | {over(f, base_f) if key != 'rust' else '-'} "
                    f"| {cell(i)} | {over(i, base_i) if key != 'rust' else '-'} |")
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                         capture_output=True, text=True).stdout.strip()
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    return "\n".join(rows + [
        "",
        f"Each cell: 5 runs of {calls} calls after {calls} warm-up calls, the mean of each run; the "
        "frame is `bindings/tests/support/cases.rs`'s `bench_frame` (stride 704, rotation 90, the "
        "centre 480x480 square as the crop), the image MNIST test digit 0. One debug build of "
        "libbindings.so (the `dev` profile: runtime-mobile at opt-level 3, the bindings at 1), as "
        "CI builds it. JVM bytes allocated per JNI call (ThreadMXBean, least of 5 rounds): "
        f"frame {alloc.get('frame640x480', 'n/a')}, image {alloc.get('image28x28', 'n/a')}; the Rust "
        "side is checked to allocate nothing by `bindings/tests/alloc_free.rs`.",
        "",
        f"- Machine: {cpu}, {os.cpu_count()} CPUs; load average (1, 5, 15 min) "
        f"{load.get('load-before', '?')} before, {load.get('load-after', '?')} after: other jobs "
        "were running, so single runs are noisy; read the min columns and the spreads.",
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; {rustc}; "
        f"Python {platform.python_version()}; Kotlin 2.4.20; "
        + subprocess.run(["sh", "-c", "java -version 2>&1 | head -1"], capture_output=True, text=True).stdout.strip(),
        f"- Reproduce: `BENCH_CALLS={calls} bash scripts/ci-bindings --bench`",
    ])


def main():
    runs, alloc, load = parse(sys.argv[1])
    text = open(sys.argv[2], encoding="utf-8").read()
    body = f"{BEGIN}\n{table(runs, alloc, load, int(sys.argv[3]))}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + body + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + (
            "\n\n## Per-call cost of the phone bindings (`scripts/ci-bindings --bench`)\n\n"
            "What each path from an app to the classifier adds to the plain Rust call, on the host "
            "(goal for the JNI camera path: at most 2 us and no allocation per frame over Rust).\n\n"
            + body + "\n")
    open(sys.argv[2], "w", encoding="utf-8").write(text)
    print(f"bindings_overhead: wrote {sys.argv[2]}")


if __name__ == "__main__":
    main()
