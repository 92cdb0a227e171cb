// The demo page in Debian's chromium, headless, driven over the DevTools protocol by
// puppeteer-core (scripts/ci-web runs it). Needs: the module built (cargo build --profile web
// --target wasm32-unknown-unknown -p web-classifier), WEB_NATIVE_BIN the native classifier
// (`cargo build -p web-classifier --example native_scores`), chromium at $CHROMIUM or
// /usr/bin/chromium.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import puppeteer from "puppeteer-core";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
const imagesDir = join(repo, "runtime-mobile/tests/images");
const chromium = process.env.CHROMIUM ?? "/usr/bin/chromium";
const nativeBin = process.env.WEB_NATIVE_BIN;
const artifacts = process.env.WEB_ARTIFACTS ?? join(tmpdir(), "web-test");

let server;
let browser;
let page;
let origin;
/** Everything that went wrong on the page: console errors, exceptions, failed or outside requests. */
const problems = [];

async function startServer() {
  server = spawn("python3", [join(repo, "web/serve.py"), "--port", "0"], {
    env: { ...process.env, WEB_SERVE_QUIET: "1" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((ok, fail) => {
    server.once("exit", (code) => fail(new Error(`web/serve.py exited with ${code}`)));
    server.stdout.on("data", (d) => {
      const m = /serving (http:\/\/127\.0\.0\.1:\d+)\//.exec(String(d));
      if (m) ok(m[1]);
    });
  });
}

before(async () => {
  assert.ok(existsSync(chromium), `no chromium at ${chromium}: apt-get install chromium (or set CHROMIUM)`);
  assert.ok(nativeBin && existsSync(nativeBin), "WEB_NATIVE_BIN is not the native classifier: cargo build -p web-classifier --example native_scores");
  mkdirSync(artifacts, { recursive: true });
  origin = await startServer();
  browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
  });
  page = await browser.newPage();
  await page.setViewport({ width: 1000, height: 800 });
  await page.setRequestInterception(true);
  page.on("request", (r) => {
    const url = r.url();
    if (url.startsWith(origin) || url.startsWith("data:") || url.startsWith("blob:")) return r.continue();
    problems.push(`request outside the machine: ${url}`);
    r.abort();
  });
  page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  await page.goto(`${origin}/`, { waitUntil: "load" });
  await page.evaluate(() => window.digits.ready);
});

after(async () => {
  await browser?.close();
  server?.kill();
});

test("the page loads the module and the MNIST model without console errors", async () => {
  const status = await page.$eval("#status", (e) => e.textContent);
  assert.match(status, /10 classes/);
  assert.match(status, /wasm-simd128/, "the simd128 kernel table is the one the page runs");
  assert.equal(await page.evaluate(() => window.digits.engine.x.is_packed()), 1, "the session packed the weights (the arena is large enough)");
  assert.deepEqual(problems, []);
});

/** Draws strokes (lists of [x, y] in pad fractions) with the mouse, then reads the answer. */
async function draw(strokes) {
  await page.click("[data-tab=draw]");
  await page.click("#clear");
  const box = await page.$eval("#pad", (e) => {
    const r = e.getBoundingClientRect();
    return { x: r.left, y: r.top, w: r.width, h: r.height };
  });
  for (const s of strokes) {
    const at = ([x, y]) => [box.x + x * box.w, box.y + y * box.h];
    await page.mouse.move(...at(s[0]));
    await page.mouse.down();
    for (const p of s.slice(1)) await page.mouse.move(...at(p), { steps: 8 });
    await page.mouse.up();
  }
  return page.evaluate(() => window.digits.last);
}

test("digits drawn with pointer events are read", async () => {
  const seven = await draw([[[0.28, 0.22], [0.72, 0.22], [0.45, 0.82]]]);
  assert.equal(seven.label, "7", JSON.stringify(seven));
  const ring = Array.from({ length: 25 }, (_, i) => {
    const a = (i / 24) * 2 * Math.PI;
    return [0.5 + 0.2 * Math.sin(a), 0.5 - 0.3 * Math.cos(a)];
  });
  const zero = await draw([ring]);
  assert.equal(zero.label, "0", JSON.stringify(zero));
  const one = await draw([[[0.5, 0.18], [0.5, 0.84]]]);
  assert.equal(one.label, "1", JSON.stringify(one));
  // The 28x28 input shown is the one the model saw: ink in it.
  const ink = await page.$eval("#input28", (c) => c.getContext("2d").getImageData(0, 0, 28, 28).data.filter((v, i) => i % 4 === 0 && v > 128).length);
  assert.ok(ink > 10, `the 28x28 view shows ${ink} ink pixels`);
  assert.equal(await page.$eval("#top3", (e) => e.children.length), 3);
  assert.match(await page.$eval("#latency", (e) => e.textContent), /^\d+ µs/);
});

async function upload(path) {
  await page.click("[data-tab=photo]");
  await page.evaluate(() => {
    window.digits.last = null;
    document.getElementById("error").hidden = true;
  });
  const input = await page.$("#file");
  await input.uploadFile(path);
  await page.waitForFunction(() => window.digits.last !== null || !document.getElementById("error").hidden, { timeout: 10000 });
  return page.evaluate(() => ({ last: window.digits.last, error: document.getElementById("error").hidden ? "" : document.getElementById("error").textContent }));
}

async function selectModel(name) {
  await page.select("#model", name);
  await page.waitForFunction((n) => document.getElementById("status").textContent.startsWith(n), {}, name);
}

/** The native classifier's answers (web/wasm/examples/native_scores.rs) for these files. */
function native(model, files) {
  const out = execFileSync(nativeBin, [join(repo, `models/${model}.int8.safetensors`), ...files], { encoding: "utf8" });
  return JSON.parse(out);
}

const answerOf = (r) => (r.digit ? { class: r.class, q15: r.confidenceQ15, scores: r.scores } : { no_digit: r.reason });
const nativeAnswer = (n) => (n.no_digit ? { no_digit: `no digit found (${n.no_digit.replace(/^no digit found \((.*)\)$/, "$1")})` } : { class: n.class, q15: n.q15, scores: n.scores });

for (const model of ["mnist", "fashion-mnist"]) {
  test(`uploaded test images give the native classifier's scores exactly (${model})`, async () => {
    const files = readdirSync(imagesDir).filter((f) => /\.(png|jpe?g)$/.test(f));
    assert.ok(files.length >= 20, `${files.length} test images`);
    const want = native(model, files.map((f) => join(imagesDir, f)));
    await selectModel(model);
    let jpegDecodesDiffer = 0;
    for (const [i, file] of files.entries()) {
      const { last, error } = await upload(join(imagesDir, file));
      assert.equal(error, "", `${file}: ${error}`);
      if (file.endsWith(".png")) {
        // PNG decodes to the same pixels everywhere: the whole chain, file to scores.
        assert.deepEqual(answerOf(last), nativeAnswer(want[i]), file);
        continue;
      }
      // JPEG decoders may differ in the last bits (libjpeg-turbo here, the image crate
      // natively): the classifier is compared on the pixels this browser decoded.
      const { width, height, data } = await page.evaluate(() => {
        const p = window.digits.photo;
        return { width: p.width, height: p.height, data: Array.from(p.data) };
      });
      const raw = join(artifacts, `${file}.${width}x${height}.rgba`);
      writeFileSync(raw, Uint8Array.from(data));
      assert.deepEqual(answerOf(last), nativeAnswer(native(model, [raw])[0]), `${file} (browser-decoded pixels)`);
      if (JSON.stringify(answerOf(last)) !== JSON.stringify(nativeAnswer(want[i]))) jpegDecodesDiffer++;
    }
    console.log(`# ${model}: ${files.length} images, ${jpegDecodesDiffer} JPEG(s) whose browser decode changes the scores (classifier exact on those pixels)`);
  });
}

test("a file that is not a picture gets a clear message", async () => {
  await selectModel("mnist");
  const notes = join(artifacts, "notes.txt");
  writeFileSync(notes, "not a picture\n");
  const { error } = await upload(notes);
  assert.match(error, /“notes\.txt” is not a picture this browser can read/);
});

test("a denied camera gets a clear message", async () => {
  const cdp = await page.createCDPSession();
  await cdp.send("Browser.setPermission", { origin, permission: { name: "camera" }, setting: "denied" });
  await page.click("[data-tab=camera]");
  await page.click("#camera-start");
  await page.waitForFunction(() => !document.getElementById("error").hidden, { timeout: 10000 });
  const error = await page.$eval("#error", (e) => e.textContent);
  assert.match(error, /Camera permission was denied|No camera found/, error);
});

test("the camera (chromium's fake device) is classified in the viewfinder square", async () => {
  const fake = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"],
  });
  try {
    const cam = await fake.newPage();
    const errors = [];
    cam.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    cam.on("pageerror", (e) => errors.push(e.message));
    await cam.goto(`${origin}/`);
    await cam.evaluate(() => window.digits.ready);
    await cam.click("[data-tab=camera]");
    await cam.click("#camera-start");
    await cam.waitForFunction(() => window.digits.camera && window.digits.last !== null, { timeout: 10000 });
    // The overlay is the frame's size and dims all but the 60% centred square.
    const finder = await cam.$eval("#finder", (c) => {
      const ctx = c.getContext("2d");
      const side = Math.floor(Math.min(c.width, c.height) * 0.6);
      const clear = (x, y, w, h) => ctx.getImageData(x, y, w, h).data.filter((v, i) => i % 4 === 3 && v === 0).length / (w * h);
      // Inside: clear but for the outline of the digit found; outside (the left strip): dimmed.
      const inside = clear((c.width - side) >> 1, (c.height - side) >> 1, side, side);
      const outside = clear(0, 0, Math.max(1, ((c.width - side) >> 1) - 4), c.height);
      return { w: c.width, h: c.height, side, inside, outside };
    });
    assert.ok(finder.w > 0 && finder.h > 0, JSON.stringify(finder));
    assert.ok(finder.inside > 0.9, `the square is clear: ${JSON.stringify(finder)}`);
    assert.equal(finder.outside, 0, `outside the square is dimmed: ${JSON.stringify(finder)}`);
    assert.equal(await cam.$eval("#error", (e) => e.hidden), true);
    assert.deepEqual(errors, []);
  } finally {
    await fake.close();
  }
});

test("a screenshot of the page is not blank", async () => {
  await page.click("[data-tab=draw]");
  await draw([[[0.28, 0.22], [0.72, 0.22], [0.45, 0.82]]]);
  const png = await page.screenshot({ encoding: "base64" });
  writeFileSync(join(artifacts, "page.png"), Buffer.from(png, "base64"));
  // Decoded by the browser itself: how many pixels differ from the page background, and how many colours.
  const { differ, colours, total } = await page.evaluate(async (data) => {
    const bmp = await createImageBitmap(await (await fetch(`data:image/png;base64,${data}`)).blob());
    const c = new OffscreenCanvas(bmp.width, bmp.height).getContext("2d");
    c.drawImage(bmp, 0, 0);
    const px = c.getImageData(0, 0, bmp.width, bmp.height).data;
    const seen = new Set();
    let differ = 0;
    for (let i = 0; i < px.length; i += 4) {
      const rgb = (px[i] << 16) | (px[i + 1] << 8) | px[i + 2];
      seen.add(rgb);
      if (rgb !== 0xf4f5f8) differ++;
    }
    return { differ, colours: seen.size, total: px.length / 4 };
  }, png);
  assert.ok(differ > total / 4, `${differ} of ${total} pixels differ from the background`);
  assert.ok(colours > 50, `${colours} colours`);
  assert.deepEqual(problems, []);
});
