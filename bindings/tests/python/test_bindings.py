"""The uniffi Python bindings (generated in library mode, loaded through ctypes) against the
answers runtime_mobile::Classifier gives (cases.tsv from the expected_answers example).

    python3 test_bindings.py BINDINGS_DIR CASES_DIR MNIST_MODEL_FILE
    python3 test_bindings.py BINDINGS_DIR CASES_DIR --bench N

BINDINGS_DIR holds the generated digits.py and libbindings.so. The MNIST cases run on a
classifier made with from_bytes(MNIST_MODEL_FILE), the others on bundled(). Exits non-zero on
any mismatch.
"""
import sys
import time

sys.path.insert(0, sys.argv[1])
import digits  # noqa: E402  (generated)

FORMATS = {
    "GRAY8": digits.PixelFormat.GRAY8,
    "RGBA8888": digits.PixelFormat.RGBA8888,
    "BGRA8888": digits.PixelFormat.BGRA8888,
    "NV21": digits.PixelFormat.NV21,
    "YUV420Y": digits.PixelFormat.YUV420_Y,
}
MODELS = {"mnist": digits.BundledModel.MNIST, "fashion-mnist": digits.BundledModel.FASHION_MNIST}


def q15(confidence):
    q = confidence * 32768
    assert q == int(q), f"confidence {confidence} is not a Q15 value"
    return int(q)


def canonical(answer):
    d = answer.digit
    if d is None:
        assert answer.no_digit_reason and answer.bounding_box is None
        return f"none\t{answer.no_digit_reason}"
    assert answer.no_digit_reason is None
    top = ";".join(f"{r.class_index}:{q15(r.confidence)}" for r in d.top)
    assert d.top[0].class_index == d.class_index and d.top[0].label == d.label
    scores = ",".join(str(s) for s in d.scores)
    b = answer.bounding_box
    box = "-" if b is None else f"{b.left},{b.top},{b.width},{b.height}"
    return f"digit\t{d.class_index}\t{d.label}\t{q15(d.confidence)}\t{top}\t{scores}\t{box}\t{int(answer.inverted)}"


def region(left, top, width, height):
    return digits.Region(left=left, top=top, width=width, height=height)


def load(cases_dir):
    with open(f"{cases_dir}/inputs.bin", "rb") as f:
        blob = f.read()
    cases = []
    for line in open(f"{cases_dir}/cases.tsv", encoding="utf-8"):
        f = line.rstrip("\n").split("\t")
        roi = None if f[10] == "-" else region(*map(int, f[10].split(",")))
        off, n = int(f[3]), int(f[4])
        cases.append(dict(id=f[0], model=f[1], kind=f[2], data=blob[off:off + n], width=int(f[5]),
                          height=int(f[6]), stride=int(f[7]), format=FORMATS[f[8]],
                          rotation=int(f[9]), roi=roi, expected="\t".join(f[11:])))
    return cases


def classify(c, case):
    if case["kind"] == "image":
        return c.classify_image(case["data"])
    return c.classify_frame(case["data"], case["width"], case["height"], case["stride"],
                            case["format"], case["rotation"], case["roi"])


def expect_error(kind, code, f):
    try:
        f()
    except kind as e:
        assert e.code == code, f"{kind.__name__}: code {e.code}, expected {code} ({e.message})"
        return
    raise AssertionError(f"expected {kind.__name__} code {code}")


def check(classifiers, cases):
    bad = 0
    for case in cases:
        got = canonical(classify(classifiers[case["model"]], case))
        if got != case["expected"]:
            bad += 1
            print(f"MISMATCH {case['id']}:\n  got      {got}\n  expected {case['expected']}")
    images = sum(c["kind"] == "image" for c in cases)
    print(f"python: {len(cases) - bad}/{len(cases)} answers equal the Rust classifier's "
          f"({images} images, {len(cases) - images} frames)")
    return bad


def check_api(classifiers, cases):
    m = classifiers["mnist"]
    assert m.labels() == [str(i) for i in range(10)], m.labels()
    assert m.dataset() == "mnist" and classifiers["fashion-mnist"].dataset() == "fashion-mnist"
    print(f"python: kernels {m.kernels()}")
    expect_error(digits.ClassifierError.Model, 1, lambda: digits.Classifier.from_bytes(b"\x01\x02"))
    expect_error(digits.ClassifierError.Input, 21, lambda: m.classify_image(bytes(783)))
    frame = next(c for c in cases if c["kind"] == "frame")
    expect_error(digits.ClassifierError.Input, 100, lambda: m.classify_frame(
        frame["data"], frame["width"], frame["height"], frame["stride"], frame["format"], 45, None))
    expect_error(digits.ClassifierError.Input, 25, lambda: m.classify_frame(
        frame["data"][:-1], frame["width"], frame["height"], frame["stride"], frame["format"], 0, None))
    expect_error(digits.ClassifierError.Input, 26, lambda: m.classify_frame(
        frame["data"], frame["width"], frame["height"], frame["stride"], frame["format"], 0,
        region(frame["width"], 0, 1, 1)))


def bench(classifiers, cases, n):
    by_id = {c["id"]: c for c in cases}
    for name, case in (("frame640x480", by_id["bench-frame"]), ("image28x28", by_id["mnist-0"])):
        c = classifiers[case["model"]]
        runs = []
        for _ in range(5):
            start = time.perf_counter_ns()
            for _ in range(n):
                classify(c, case)
            runs.append((time.perf_counter_ns() - start) / n / 1000)
        print(f"bench python {name} " + " ".join(f"{r:.2f}" for r in runs))


def main():
    cases = load(sys.argv[2])
    classifiers = {name: digits.Classifier.bundled(m) for name, m in MODELS.items()}
    if "--bench" in sys.argv:
        bench(classifiers, cases, int(sys.argv[sys.argv.index("--bench") + 1]))
        return 0
    check_api(classifiers, cases)
    with open(sys.argv[3], "rb") as f:
        classifiers["mnist"] = digits.Classifier.from_bytes(f.read())
    return 1 if check(classifiers, cases) else 0


if __name__ == "__main__":
    sys.exit(main())
