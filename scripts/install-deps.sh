#!/usr/bin/env bash
# Installs every Debian 12 package the build, the tests and the benchmarks need.
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
  # the Debian package and its test (man pages from --help, the zsh completion's syntax check)
  dpkg-dev help2man zsh make procps
  # the gateway tests with the official openai, @anthropic-ai/sdk and @google/genai npm packages
  nodejs
  # the libFuzzer targets (scripts/fuzz.sh): Debian's clang and its fuzzer runtime
  clang-14 libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

# Some images ship a Node.js build whose nodejs package already contains npm; Debian's separate
# npm package conflicts with it. Ask for npm only when there is no npm command at all.
command -v npm >/dev/null 2>&1 || missing+=(npm)

if ((${#missing[@]} == 0)); then
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
echo "install-deps: done" >&2
