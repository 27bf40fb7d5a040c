#!/usr/bin/env bash
# Installs every Debian 12 package the build, the tests and the benchmarks need, and the Python
# front's packages (from the Python package registry) into build/python-venv.
# Idempotent: when everything is present it changes nothing and exits at once.
set -euo pipefail

packages=(
  # toolchain
  g++ cmake ninja-build ccache pkg-config git
  # libraries (Boost must be 1.81: Debian's default 1.74 lacks what we use of JSON and URL)
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev libzstd-dev libsqlite3-dev libhiredis-dev
  libspdlog-dev libfmt-dev libcli11-dev libjemalloc-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  redis-server redis-sentinel redis-tools openssl curl
  nginx wrk hyperfine valgrind
  # line coverage of src/ in CI (scripts/test-sanitizers.sh)
  gcovr
  # the Debian package and its test (man pages from --help, the zsh completion's syntax check)
  dpkg-dev help2man zsh make procps
  # the gateway tests with the official openai, @anthropic-ai/sdk and @google/genai npm packages
  nodejs
  # the libFuzzer targets (scripts/fuzz.sh): Debian's clang and its fuzzer runtime
  clang-14 libclang-rt-14-dev
  # scripts/format.sh (the repo's .clang-format)
  clang-format
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

# Some images ship a Node.js build whose nodejs package already contains npm; Debian's separate
# npm package conflicts with it. Ask for npm only when there is no npm command at all.
command -v npm >/dev/null 2>&1 || missing+=(npm)

# The Python front's packages (python/pyproject.toml's pins: the build's nanobind and
# scikit-build-core, pydantic-ai, pytest) go into a virtual environment inside the build
# directory, build/python-venv, remade only when the pins change.
install_python_venv() {
  local root venv stamp pins
  root=$(cd "$(dirname "$0")/.." && pwd)
  venv="$root/build/python-venv"
  stamp="$venv/.pins"
  pins=$(python3 - "$root/python/pyproject.toml" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    project = tomllib.load(f)
pins = project["build-system"]["requires"] + project["project"]["dependencies"]
for extra in project["project"].get("optional-dependencies", {}).values():
    pins += extra
print("\n".join(pins))
PY
)
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$pins" ]]; then
    return 0
  fi
  echo "install-deps: making $venv with the Python front's packages" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  mapfile -t pin_list <<<"$pins"
  if ! "$venv/bin/pip" install -q --disable-pip-version-check "${pin_list[@]}"; then
    # No half-made environment left behind for the build to find.
    rm -rf "$venv"
    echo "install-deps: could not install the Python front's packages from the Python package" \
         "registry (python/pyproject.toml: ${pin_list[*]})" >&2
    return 1
  fi
  printf '%s' "$pins" >"$stamp"
}

if ((${#missing[@]} == 0)); then
  install_python_venv
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts redis-server and nginx as services on install; the tests start their own.
for svc in redis-server redis-sentinel nginx; do
  "${sudo_cmd[@]}" service "$svc" stop >/dev/null 2>&1 || true
done
install_python_venv
echo "install-deps: done" >&2
