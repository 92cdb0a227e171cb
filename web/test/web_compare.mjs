// The page's benchmark mode (web/bench.js) in headless Debian chromium: this page's classifier
// vs onnxruntime-web (wasm backend, one thread) on one export run's int8 and f32 ONNX files, the
// same 1,000 MNIST test digits. Writes the table into bench/RESULTS.md between the web_compare
// markers, with the machine's load before and after (other work on the machine skews timings).
//
//   (cd web/test && npm ci)      # with onnxruntime-web, an optional dependency
//   cargo build --profile web --target wasm32-unknown-unknown -p web-classifier
//   node web/test/web_compare.mjs [--model-dir artifacts/bench-mnist] [--no-write]
//
// --model-dir: an export run's folder with model.int8.safetensors, model.onnx, model.int8.onnx
// (bench/runtime_compare prepares one; the default is what it uses).
import { execFileSync, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import puppeteer from "puppeteer-core";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const { values: opts } = parseArgs({
  options: { "model-dir": { type: "string", default: join(repo, "artifacts/bench-mnist") }, "no-write": { type: "boolean", default: false } },
});
const chromium = process.env.CHROMIUM ?? "/usr/bin/chromium";
const BEGIN = "<!-- web_compare:begin -->";
const END = "<!-- web_compare:end -->";

function serve() {
  const server = spawn("python3", [join(repo, "web/serve.py"), "--port", "0"], {
    env: { ...process.env, WEB_SERVE_QUIET: "1", WEB_BENCH_MODEL: resolve(opts["model-dir"]) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((ok, fail) => {
    server.once("exit", (code) => fail(new Error(`web/serve.py exited with ${code}`)));
    server.stdout.on("data", (d) => {
      const m = /serving (http:\/\/127\.0\.0\.1:\d+)\//.exec(String(d));
      if (m) ok({ server, origin: m[1] });
    });
  });
}

const load = () => loadavg().map((v) => v.toFixed(2)).join(", ");
const loadBefore = load();
const { server, origin } = await serve();
const browser = await puppeteer.launch({ executablePath: chromium, headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
let result;
try {
  const page = await browser.newPage();
  const problems = [];
  page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
  page.on("pageerror", (e) => problems.push(e.message));
  await page.goto(`${origin}/`);
  await page.evaluate(() => window.digits.ready);
  await page.click("[data-tab=bench]");
  await page.click("#bench-run");
  await page.waitForFunction(() => window.digits.bench || !document.getElementById("error").hidden, { timeout: 600_000, polling: 1000 });
  result = await page.evaluate(() => window.digits.bench);
  if (!result) throw new Error(`benchmark failed: ${await page.$eval("#error", (e) => e.textContent)} ${problems.join("; ")}`);
  if (problems.length) throw new Error(`console errors: ${problems.join("; ")}`);
} finally {
  await browser.close();
  server.kill();
}
const loadAfter = load();

const version = execFileSync(chromium, ["--version"], { encoding: "utf8" }).trim();
const ort = JSON.parse(readFileSync(join(repo, "web/test/node_modules/onnxruntime-web/package.json"), "utf8")).version;
const lines = [
  "| engine (in headless " + version + ") | µs / digit (median of " + result.rounds + " rounds) | spread (rounds' min–max) | correct |",
  "|---|---:|---:|---:|",
  ...result.rows.map((r) => `| ${r.engine} | ${r.us.toFixed(1)} | ${r.min.toFixed(1)}–${r.max.toFixed(1)} | ${r.correct}/${result.digits} |`),
];
const ratio = result.ratio;
const text = [
  `Measured ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC by \`node web/test/web_compare.mjs\` (the page's benchmark tab, web/bench.js) on the first ${result.digits} MNIST test digits, after ${result.warmup} warm-up calls per engine, the engines taking turns in each round; onnxruntime-web ${ort}, wasm backend, \`numThreads = 1\`; files from \`${opts["model-dir"].replace(repo + "/", "")}\` (one export run). Per digit: our classifier's \`classify_image\` (quantize + inference + ranking) vs \`await session.run\` on a prepared float tensor plus an argmax. Cross-origin isolated: ${result.crossOriginIsolated}.`,
  "",
  ...lines,
  "",
  `Ours / onnxruntime-web int8: **${ratio.toFixed(2)}x** (goal: at most 0.5x). Same class as onnxruntime-web int8 on ${result.agreeWithOrtInt8}/${result.digits} digits.`,
  `Load average (1, 5, 15 min) before: ${loadBefore}; after: ${loadAfter} (the machine is shared; timings are noisy, see the spread).`,
].join("\n");
console.log(text);
if (!opts["no-write"]) {
  const path = join(repo, "bench/RESULTS.md");
  const body = readFileSync(path, "utf8");
  const block = `${BEGIN}\n<!-- written by node web/test/web_compare.mjs; do not edit by hand -->\n${text}\n${END}`;
  const re = new RegExp(`${BEGIN}[\\s\\S]*?${END}`);
  const heading = "\n## In the browser: the web page's classifier vs onnxruntime-web (`web/test/web_compare.mjs`)\n\n";
  writeFileSync(path, re.test(body) ? body.replace(re, () => block) : `${body.trimEnd()}\n${heading}${block}\n`);
  console.log(`written to ${path}`);
}
