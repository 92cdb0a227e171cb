// The page's benchmark mode: this page's classifier and onnxruntime-web (its wasm backend, one
// thread) on one export run's three files of the same network (model.int8.safetensors,
// model.onnx f32, model.int8.onnx), over the same MNIST test digits, in this browser.
// Loaded on demand (app.js): neither this file nor onnxruntime-web is part of the demo's weight.
// Served by web/serve.py: /ort/ (web/test/node_modules/onnxruntime-web/dist), /bench-model/
// (an export run's folder), /data/ (the repository's data/).
import { Engine, fetchBytes } from "./classifier.js";

const DIGITS = 1000;
const WARMUP = 200;
const ROUNDS = 5;

/** The first `n` MNIST test digits (gzip IDX, unpacked by the browser) and their labels. */
async function testDigits(n) {
  const gunzip = async (url) => {
    const bytes = await fetchBytes(url, "MNIST test split");
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  };
  const images = await gunzip("data/mnist/t10k-images-idx3-ubyte.gz");
  const labels = await gunzip("data/mnist/t10k-labels-idx1-ubyte.gz");
  return Array.from({ length: n }, (_, i) => ({ pixels: images.subarray(16 + i * 784, 16 + (i + 1) * 784), label: labels[8 + i] }));
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Times each engine's `classify(i)` (returns the class) on every digit: a warm-up each, then
 * ROUNDS rounds in which the engines take turns (so a change in the machine's load hits all of
 * them); per round the mean µs per digit (the round's wall time / digits: performance.now is
 * too coarse for one call of the small engine). Per engine: the median round, the spread, and
 * the answers of the last round.
 */
async function timeAll(engines, digits, progress) {
  for (const e of engines) for (let i = 0; i < WARMUP; i++) await e.classify(i % digits.length);
  const rounds = engines.map(() => []);
  const classes = engines.map(() => new Array(digits.length));
  for (let r = 0; r < ROUNDS; r++) {
    progress(`Round ${r + 1} of ${ROUNDS}…`);
    for (const [k, e] of engines.entries()) {
      const t0 = performance.now();
      for (let i = 0; i < digits.length; i++) classes[k][i] = await e.classify(i);
      rounds[k].push(((performance.now() - t0) * 1000) / digits.length);
    }
  }
  return engines.map((e, k) => ({
    engine: e.name,
    us: median(rounds[k]),
    min: Math.min(...rounds[k]),
    max: Math.max(...rounds[k]),
    rounds: rounds[k],
    correct: classes[k].filter((c, i) => c === digits[i].label).length,
    classes: classes[k],
  }));
}

async function ortSession(ort, url) {
  const bytes = await fetchBytes(url, "ONNX model");
  return ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all", executionMode: "sequential", intraOpNumThreads: 1, interOpNumThreads: 1 });
}

/** ONNX input as export writes it: [1,1,28,28] float32, pixels / 255. */
function ortRunner(ort, session, digits) {
  const name = session.inputNames[0];
  const feeds = digits.map((d) => ({ [name]: new ort.Tensor("float32", Float32Array.from(d.pixels, (v) => v / 255), [1, 1, 28, 28]) }));
  return async (i) => {
    const out = await session.run(feeds[i]);
    const scores = out[session.outputNames[0]].data;
    let best = 0;
    for (let c = 1; c < scores.length; c++) if (scores[c] > scores[best]) best = c;
    return best;
  };
}

export async function runBenchmark(_pageEngine, out) {
  out.textContent = "Loading onnxruntime-web, the models and the test digits…";
  const ort = await import("/ort/ort.wasm.min.mjs");
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.wasmPaths = "/ort/";
  ort.env.wasm.proxy = false;
  const digits = await testDigits(DIGITS);
  // Our engine on the export run's own int8 file (the same network as the ONNX files).
  const ours = await Engine.load("web_classifier.wasm");
  ours.loadModel(await fetchBytes("bench-model/model.int8.safetensors", "benchmark model"));
  const int8 = await ortSession(ort, "bench-model/model.int8.onnx");
  const f32 = await ortSession(ort, "bench-model/model.onnx");

  const version = ort.env.versions?.web ?? "";
  const rows = await timeAll(
    [
      {
        name: `cnn-toolkit runtime-mobile (${ours.kernels}), int8`,
        classify: (i) => {
          ours.copyImage(digits[i].pixels);
          return ours.classifyCopied();
        },
      },
      { name: `onnxruntime-web ${version} wasm, int8 (model.int8.onnx)`, classify: ortRunner(ort, int8, digits) },
      { name: `onnxruntime-web ${version} wasm, f32 (model.onnx)`, classify: ortRunner(ort, f32, digits) },
    ],
    digits,
    (text) => (out.textContent = text),
  );
  const agree = rows[0].classes.filter((c, i) => c === rows[1].classes[i]).length;
  const result = {
    digits: DIGITS,
    rounds: ROUNDS,
    warmup: WARMUP,
    userAgent: navigator.userAgent,
    crossOriginIsolated,
    agreeWithOrtInt8: agree,
    rows: rows.map(({ classes, ...r }) => r),
    ratio: rows[0].us / rows[1].us,
  };
  window.digits.bench = result;
  render(out, result);
  return result;
}

function render(out, r) {
  const table = document.createElement("table");
  table.innerHTML = "<tr><th>engine</th><th>µs / digit</th><th>spread</th><th>correct</th></tr>";
  for (const row of r.rows) {
    const tr = table.insertRow();
    for (const v of [row.engine, row.us.toFixed(1), `${row.min.toFixed(1)}–${row.max.toFixed(1)}`, `${row.correct}/${r.digits}`]) tr.insertCell().textContent = v;
  }
  const note = document.createElement("p");
  note.className = "muted";
  note.textContent = `Ours / onnxruntime-web int8: ${r.ratio.toFixed(2)}x. Same class as onnxruntime-web int8 on ${r.agreeWithOrtInt8}/${r.digits} digits. Median of ${r.rounds} rounds.`;
  out.replaceChildren(table, note);
}
