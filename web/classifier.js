// The front-door classifier (runtime_mobile::Classifier) in the browser: a thin layer over the
// raw C ABI of web/wasm (see its crate docs). No copies of the pipeline here: pixels go in,
// the library's answer comes out.

/** Thrown for anything the engine refuses; `code` is runtime_mobile's Error::code(). */
export class EngineError extends Error {
  constructor(message, code) {
    super(message);
    this.name = "EngineError";
    this.code = code;
  }
}

const FORMAT = { gray: 0, rgba: 1 };
const NO_DIGIT = ["", "too little contrast", "no ink", "ink too small"];
const utf8 = new TextDecoder();

export class Engine {
  /** Instantiates the module at `url` (WebAssembly SIMD needed: every browser since 2021–23). */
  static async load(url) {
    const bytes = await fetchBytes(url, "classifier module");
    if (!WebAssembly.validate(bytes)) {
      throw new EngineError("this browser cannot run the classifier (it needs WebAssembly SIMD)", 0);
    }
    const { instance } = await WebAssembly.instantiate(bytes, {});
    return new Engine(instance.exports, bytes.byteLength);
  }

  constructor(exports, wasmBytes) {
    this.x = exports;
    this.wasmBytes = wasmBytes;
    this.labels = [];
    this.dataset = "";
  }

  get kernels() {
    return this.#string(this.x.kernels_ptr(), this.x.kernels_len());
  }

  /** Loads a model file (runtime-mobile's int8 safetensors) and returns its labels. */
  loadModel(file) {
    const ptr = this.x.model_buffer(file.byteLength);
    if (!ptr) throw new EngineError(`model file too large (${file.byteLength} bytes)`, 0);
    new Uint8Array(this.x.memory.buffer, ptr, file.byteLength).set(new Uint8Array(file));
    this.#check(this.x.load_model(file.byteLength));
    const n = this.x.num_classes();
    this.labels = Array.from({ length: n }, (_, i) => this.#string(this.x.label_ptr(i), this.x.label_len(i)));
    this.dataset = this.#string(this.x.dataset_ptr(), this.x.dataset_len());
    return this.labels;
  }

  /**
   * Finds and classifies the digit in an ImageData (RGBA) or {data, width, height, format}
   * picture, in the centred square of `viewfinderPercent`% of its shorter side (0: all of it).
   * Returns the answer (see #answer), timed in microseconds.
   */
  classifyFrame(picture, viewfinderPercent = 0) {
    const format = picture.format ?? "rgba";
    const data = picture.data;
    const ptr = this.x.frame_buffer(data.byteLength);
    if (!ptr) throw new EngineError("picture too large for memory", 0);
    new Uint8Array(this.x.memory.buffer, ptr, data.byteLength).set(data);
    const t0 = performance.now();
    const status = this.x.classify_frame(picture.width, picture.height, FORMAT[format], viewfinderPercent);
    const micros = (performance.now() - t0) * 1000;
    return this.#answer(status, micros);
  }

  /** Classifies a 28x28 MNIST-style image (Uint8Array of 784, 0 background, 255 ink). */
  classifyImage(pixels) {
    this.copyImage(pixels);
    const t0 = performance.now();
    const status = this.x.classify_image();
    return this.#answer(status, (performance.now() - t0) * 1000);
  }

  /** The benchmark's inner loop: only the copy and the call, no answer objects. */
  copyImage(pixels) {
    new Uint8Array(this.x.memory.buffer, this.x.image_buffer(), 784).set(pixels);
  }

  /** classify_image's raw status and winning class (for the benchmark). */
  classifyCopied() {
    this.#check(this.x.classify_image());
    return new Int32Array(this.x.memory.buffer, this.x.result_ptr(), 3)[2];
  }

  /** The 28x28 image the model saw last. */
  lastInput() {
    const p = this.x.input_ptr();
    return p ? new Uint8Array(this.x.memory.buffer, p, 784).slice() : new Uint8Array(784);
  }

  #check(status) {
    if (status < 0) {
      throw new EngineError(`runtime-mobile error ${-status} (Error::code(), runtime-mobile/src/error.rs)`, -status);
    }
    return status;
  }

  // The Answer block of web/wasm/src/lib.rs: #[repr(C)] i32s.
  #answer(status, micros) {
    this.#check(status);
    const a = new Int32Array(this.x.memory.buffer, this.x.result_ptr(), 33);
    if (status === 1) return { digit: false, reason: `no digit found (${NO_DIGIT[a[1]]})`, micros };
    const top = [];
    for (let i = 0; i < a[4]; i++) top.push({ class: a[5 + i], label: this.labels[a[5 + i]], confidence: a[8 + i] / 32768 });
    return {
      digit: true,
      class: a[2],
      label: this.labels[a[2]],
      confidence: a[3] / 32768,
      confidenceQ15: a[3],
      top,
      inverted: a[11] === 1,
      bbox: { x: a[12], y: a[13], width: a[14], height: a[15] },
      scores: Array.from(a.subarray(17, 17 + a[16])),
      micros,
    };
  }

  #string(ptr, len) {
    return ptr ? utf8.decode(new Uint8Array(this.x.memory.buffer, ptr, len)) : "";
  }
}

/** fetch() that says what failed in words a visitor understands. */
export async function fetchBytes(url, what) {
  let response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new EngineError(`could not load the ${what} (${url}): ${e.message}`, 0);
  }
  if (!response.ok) throw new EngineError(`could not load the ${what} (${url}): HTTP ${response.status}`, 0);
  return new Uint8Array(await response.arrayBuffer());
}
