// Runs a wasm32-wasip1 program under Node's WASI with the repository (and the data folder it
// links to) visible at their own paths: node web/test/run-wasi.mjs PROGRAM.wasm [ARGS...]
import { readFileSync, realpathSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { WASI } from "node:wasi";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const [program, ...args] = process.argv.slice(2);
const preopens = { [repo]: repo };
// testkit finds files through the path cargo compiled in (the crate's manifest dir/..): the
// repository as built, which may be another checkout; map it too when given.
if (process.env.WASI_BUILD_REPO) preopens[process.env.WASI_BUILD_REPO] = repo;
for (const a of args) {
  try {
    preopens[a] = realpathSync(a);
  } catch {
    // not a path
  }
}
const wasi = new WASI({ version: "preview1", args: [program, ...args], env: {}, preopens, returnOnExit: true });
const module = await WebAssembly.compile(readFileSync(program));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exitCode = wasi.start(instance);
