#!/usr/bin/env python3
"""Serves the demo page locally: web/ at /, the committed models at /models/, the module built by
`cargo build --profile web --target wasm32-unknown-unknown -p web-classifier` at
/web_classifier.wasm, and for the benchmark tab onnxruntime-web (web/test/node_modules, after
`npm ci`), an export run's model files ($WEB_BENCH_MODEL, default artifacts/bench-mnist) and data/. Binds 127.0.0.1 only. Usage: python3 web/serve.py [--port 8000]
"""

import argparse
import functools
import http.server
import os
from pathlib import Path

WEB = Path(__file__).resolve().parent
REPO = WEB.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
# URL prefix -> folder it maps to (first match wins); everything else is web/.
ROUTES = {
    "/web_classifier.wasm": TARGET / "wasm32-unknown-unknown" / "web" / "web_classifier.wasm",
    "/models/": REPO / "models",
    "/ort/": WEB / "test" / "node_modules" / "onnxruntime-web" / "dist",
    # The benchmark's inputs: an export run's folder (model.int8.safetensors, model.onnx,
    # model.int8.onnx; bench/runtime_compare makes one) and the MNIST test split.
    "/bench-model/": Path(os.environ.get("WEB_BENCH_MODEL", REPO / "artifacts" / "bench-mnist")),
    "/data/": REPO / "data",
}


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".safetensors": "application/octet-stream",
        ".onnx": "application/octet-stream",
    }

    def translate_path(self, path):
        url = path.split("?", 1)[0].split("#", 1)[0]
        for prefix, target in ROUTES.items():
            if url == prefix:
                return str(target)
            if prefix.endswith("/") and url.startswith(prefix):
                rest = Path(url[len(prefix):])
                if ".." in rest.parts:
                    return str(WEB / "missing")
                return str(target / rest)
        return super().translate_path(path)

    def end_headers(self):
        # Cross-origin isolation gives performance.now() 5 µs resolution instead of 100 µs.
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, fmt, *args):
        if os.environ.get("WEB_SERVE_QUIET") != "1":
            super().log_message(fmt, *args)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    wasm = ROUTES["/web_classifier.wasm"]
    if not wasm.is_file():
        raise SystemExit(f"{wasm} is missing: cargo build --profile web --target wasm32-unknown-unknown -p web-classifier")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), functools.partial(Handler, directory=str(WEB)))
    print(f"serving http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C to stop)", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
