#!/usr/bin/env bash
# Installs the library from a build tree into a temporary prefix, then builds and runs a small
# program that uses it through find_package(llm_caching): the way users consume the library.
#   check_install.sh BUILD_DIR [EXTRA_CXX_FLAGS]
# EXTRA_CXX_FLAGS: what the library was built with that its users must match (the sanitizer
# flags of the debug-asan preset).
set -euo pipefail
build=$1
extra_flags=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
mkdir "$work/consumer"
cp "$here/consumer_CMakeLists.txt" "$work/consumer/CMakeLists.txt"
cp "$here/consumer_main.cpp" "$work/consumer/main.cpp"
cmake -S "$work/consumer" -B "$work/consumer/build" -G Ninja \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS="$extra_flags" -DCMAKE_EXE_LINKER_FLAGS="$extra_flags" >/dev/null
cmake --build "$work/consumer/build" >/dev/null
output=$(OPENAI_API_KEY=unused "$work/consumer/build/consumer")
echo "$output"
grep -q '^llm-caching:v1:default:286f0a722795f3ff8337817f8edba0c90ed9cbb0fdfcd4077617e0487b896a6b$' <<<"$output"
grep -q '^replay miss ok$' <<<"$output"
echo "installed library works through find_package(llm_caching)"
