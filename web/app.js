// The demo page: draw pad, photo, camera, each through the same Engine (classifier.js).
import { Engine, EngineError, fetchBytes } from "./classifier.js";

const $ = (id) => document.getElementById(id);
/** The phone app's viewfinder square: 60% of the preview's shorter side, centred (android/logic Viewfinder). */
const VIEWFINDER_PERCENT = 60;
/** As the phone app's draw pad: rendered into a 112-pixel gray square, pen 7% of the side. */
const PAD_PIXELS = 112;
const PEN_WIDTH = 0.07;
/** Photos larger than this (longer side) are scaled down by the browser first. */
const MAX_PHOTO_SIDE = 2048;

const state = { engine: null, models: new Map(), strokes: [], camera: null, last: null };
// For the browser test and the curious: the engine, the last answer, and when the page is ready.
window.digits = state;

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function showAnswer(r) {
  state.last = r;
  const answer = $("answer");
  drawInput(state.engine.lastInput());
  if (!r.digit) {
    answer.textContent = "?";
    answer.dataset.state = "none";
    $("confidence").textContent = r.reason;
    $("top3").replaceChildren();
  } else {
    answer.textContent = r.label;
    answer.dataset.state = "digit";
    $("confidence").textContent = `${(r.confidence * 100).toFixed(1)}% sure`;
    $("top3").replaceChildren(...r.top.map(bar));
  }
  $("latency").textContent = `${Math.round(r.micros)} µs on this device (${state.engine.kernels})`;
}

function bar(t) {
  const row = document.createElement("div");
  row.className = "bar";
  const name = document.createElement("span");
  name.textContent = t.label;
  const track = document.createElement("div");
  track.className = "track";
  const fill = document.createElement("div");
  fill.style.width = `${(t.confidence * 100).toFixed(1)}%`;
  track.append(fill);
  const pct = document.createElement("span");
  pct.textContent = `${(t.confidence * 100).toFixed(1)}%`;
  row.append(name, track, pct);
  return row;
}

function drawInput(pixels) {
  const ctx = $("input28").getContext("2d");
  const img = ctx.createImageData(28, 28);
  pixels.forEach((v, i) => img.data.set([v, v, v, 255], i * 4));
  ctx.putImageData(img, 0, 0);
}

/** Runs `f`, showing an engine error (or any other) instead of the answer. */
function guarded(f) {
  try {
    showError("");
    f();
  } catch (e) {
    showError(e instanceof EngineError ? `The classifier refused this: ${e.message}` : `Something went wrong: ${e.message}`);
  }
}

// Models.

async function selectModel(name) {
  $("status").textContent = "Loading model…";
  if (!state.models.has(name)) state.models.set(name, await fetchBytes(`models/${name}.int8.safetensors`, "model"));
  state.engine.loadModel(state.models.get(name));
  const kb = (state.models.get(name).byteLength / 1024).toFixed(0);
  $("status").textContent = `${state.engine.dataset || name}: ${state.engine.labels.length} classes, ${kb} KB model, ${state.engine.kernels} kernels`;
  reclassify();
}

/** After a model switch, the current picture again. */
function reclassify() {
  if (state.strokes.length) classifyPad();
  else if (state.photo) guarded(() => showAnswer(state.engine.classifyFrame(state.photo)));
}

// Draw pad.

const pad = $("pad");
const padCtx = pad.getContext("2d");
const padRender = new OffscreenCanvas(PAD_PIXELS, PAD_PIXELS).getContext("2d", { willReadFrequently: true });

function strokePath(ctx, side) {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, side, side);
  ctx.strokeStyle = ctx.fillStyle = "#000";
  ctx.lineWidth = PEN_WIDTH * side;
  ctx.lineCap = ctx.lineJoin = "round";
  for (const s of state.strokes) {
    ctx.beginPath();
    ctx.moveTo(s[0].x * side, s[0].y * side);
    for (const p of s.slice(1)) ctx.lineTo(p.x * side, p.y * side);
    if (s.length === 1) ctx.lineTo(s[0].x * side + 0.01, s[0].y * side);
    ctx.stroke();
  }
}

function classifyPad() {
  strokePath(padCtx, pad.width);
  strokePath(padRender, PAD_PIXELS);
  const img = padRender.getImageData(0, 0, PAD_PIXELS, PAD_PIXELS);
  guarded(() => showAnswer(state.engine.classifyFrame(img)));
}

function padPoint(e) {
  const r = pad.getBoundingClientRect();
  return { x: (e.clientX - r.left) / r.width, y: (e.clientY - r.top) / r.height };
}

let drawing = false;
let pending = false;
pad.addEventListener("pointerdown", (e) => {
  if (!state.engine) return;
  drawing = true;
  pad.setPointerCapture(e.pointerId);
  state.photo = null;
  state.strokes.push([padPoint(e)]);
  classifyPad();
});
pad.addEventListener("pointermove", (e) => {
  if (!drawing) return;
  state.strokes.at(-1).push(padPoint(e));
  if (!pending) {
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      classifyPad();
    });
  }
});
for (const end of ["pointerup", "pointercancel"]) {
  pad.addEventListener(end, () => {
    if (drawing) classifyPad();
    drawing = false;
  });
}
$("clear").addEventListener("click", () => {
  state.strokes = [];
  strokePath(padCtx, pad.width);
  $("answer").textContent = "–";
  $("answer").dataset.state = "none";
  $("confidence").textContent = "";
  $("top3").replaceChildren();
});

// Photo.

$("file").addEventListener("change", async (e) => {
  const file = e.target.files[0];
  e.target.value = "";
  if (!file) return;
  let bitmap;
  try {
    // No colour management: the pixels the file holds, as the native decoder reads them.
    bitmap = await createImageBitmap(file, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  } catch {
    showError(`“${file.name}” is not a picture this browser can read. Choose a PNG, JPEG, WebP or GIF photo of a digit.`);
    return;
  }
  const scale = Math.min(1, MAX_PHOTO_SIDE / Math.max(bitmap.width, bitmap.height));
  const view = $("photo-view");
  view.width = Math.max(1, Math.round(bitmap.width * scale));
  view.height = Math.max(1, Math.round(bitmap.height * scale));
  const ctx = view.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0, view.width, view.height);
  view.hidden = false;
  state.strokes = [];
  state.photo = ctx.getImageData(0, 0, view.width, view.height);
  guarded(() => {
    const r = state.engine.classifyFrame(state.photo);
    showAnswer(r);
    if (r.digit) outline(ctx, r.bbox);
  });
});

function outline(ctx, b) {
  ctx.strokeStyle = "#3b6fe0";
  ctx.lineWidth = Math.max(2, ctx.canvas.width / 150);
  ctx.strokeRect(b.x, b.y, b.width, b.height);
}

// Camera.

const CAMERA_ERRORS = {
  NotAllowedError: "Camera permission was denied. Allow the camera for this page in the browser's site settings, or use Draw or Photo.",
  SecurityError: "Camera permission was denied. Allow the camera for this page in the browser's site settings, or use Draw or Photo.",
  NotFoundError: "No camera found on this device. Use Draw or Photo instead.",
  NotReadableError: "The camera is in use by another application.",
  OverconstrainedError: "The camera cannot deliver video in a usable size.",
};

$("camera-start").addEventListener("click", async () => {
  showError("");
  if (!navigator.mediaDevices?.getUserMedia) {
    showError("The camera needs a secure page (https:// or http://localhost) and a browser with camera access.");
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment", width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
  } catch (e) {
    showError(CAMERA_ERRORS[e.name] ?? `The camera could not start: ${e.message}`);
    return;
  }
  const video = $("video");
  video.srcObject = stream;
  await video.play();
  state.camera = stream;
  $("video-box").hidden = $("camera-stop").hidden = false;
  $("camera-start").hidden = true;
  cameraLoop();
});

function stopCamera() {
  state.camera?.getTracks().forEach((t) => t.stop());
  state.camera = null;
  $("video-box").hidden = $("camera-stop").hidden = true;
  $("camera-start").hidden = false;
}
$("camera-stop").addEventListener("click", stopCamera);

const grab = new OffscreenCanvas(1, 1).getContext("2d", { willReadFrequently: true });
function cameraLoop() {
  const video = $("video");
  if (!state.camera) return;
  const w = video.videoWidth;
  const h = video.videoHeight;
  if (w && h) {
    grab.canvas.width = w;
    grab.canvas.height = h;
    grab.drawImage(video, 0, 0);
    const frame = grab.getImageData(0, 0, w, h);
    state.photo = null;
    state.strokes = [];
    guarded(() => showAnswer(state.engine.classifyFrame(frame, VIEWFINDER_PERCENT)));
    drawFinder(w, h);
  }
  setTimeout(() => requestAnimationFrame(cameraLoop), 100);
}

/** Dims everything but the viewfinder square (the same square the classifier crops). */
function drawFinder(w, h) {
  const c = $("finder");
  c.width = w;
  c.height = h;
  const ctx = c.getContext("2d");
  const side = Math.floor((Math.min(w, h) * VIEWFINDER_PERCENT) / 100);
  const x = Math.floor((w - side) / 2);
  const y = Math.floor((h - side) / 2);
  ctx.fillStyle = "#0008";
  ctx.fillRect(0, 0, w, h);
  ctx.clearRect(x, y, side, side);
  ctx.strokeStyle = "#fff";
  ctx.lineWidth = 3;
  ctx.strokeRect(x, y, side, side);
  if (state.last?.digit) {
    ctx.strokeStyle = "#3b6fe0";
    const b = state.last.bbox;
    ctx.strokeRect(x + b.x, y + b.y, b.width, b.height);
  }
}

// Tabs, benchmark, start.

for (const tab of document.querySelectorAll("[role=tab]")) {
  tab.addEventListener("click", () => {
    for (const t of document.querySelectorAll("[role=tab]")) {
      t.setAttribute("aria-selected", String(t === tab));
      $(`tab-${t.dataset.tab}`).hidden = t !== tab;
    }
    if (tab.dataset.tab !== "camera") stopCamera();
  });
}

$("bench-run").addEventListener("click", async () => {
  $("bench-run").disabled = true;
  try {
    // Loaded on demand: the benchmark and onnxruntime-web are not part of the demo's weight.
    const { runBenchmark } = await import("./bench.js");
    await runBenchmark(state.engine, $("bench-out"));
  } catch (e) {
    showError(`The benchmark failed: ${e.message}`);
  } finally {
    $("bench-run").disabled = false;
  }
});

$("model").addEventListener("change", (e) => selectModel(e.target.value).catch((err) => showError(err.message)));

state.ready = (async () => {
  try {
    state.engine = await Engine.load("web_classifier.wasm");
    strokePath(padCtx, pad.width);
    await selectModel($("model").value);
  } catch (e) {
    $("status").textContent = "Not ready";
    showError(e.message);
    throw e;
  }
})();
