#!/usr/bin/env bash
# The Debian package end to end (issue 27), on this machine as root:
#   build the .deb with CPack, apt-get install it, check --version, the man pages and the bash
#   completion, start the systemd unit's own command as the package's user and ask it something
#   through the fake provider (a miss, then a hit), build a CMake project and a Makefile project
#   (pkg-config) against the installed library and run a cached call, then apt-get remove it and
#   check that no gateway process is left and the program is gone.
#   check_deb.sh BUILD_DIR FAKE_PROVIDER
set -euo pipefail
build=$(cd "$1" && pwd)
fake_bin=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
pids=()
fail() { echo "check_deb: $*" >&2; exit 1; }
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if dpkg-query -W -f='${Status}' llm-caching 2>/dev/null | grep -q "install ok installed"; then
    apt-get remove -y llm-caching >/dev/null 2>&1 || true
  fi
  # Leave the machine as it was: no package, no user, no cache left behind.
  dpkg-query -W llm-caching >/dev/null 2>&1 && apt-get purge -y llm-caching >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
[[ $(id -u) -eq 0 ]] || fail "needs root (it installs the package with apt-get)"

# 1. The package.
(cd "$build" && cpack -G DEB -B "$work/deb" >/dev/null) || fail "cpack failed"
deb=$(ls "$work"/deb/llm-caching_*.deb)
dpkg-deb --contents "$deb" > "$work/contents"
for path in ./usr/bin/llm-caching ./usr/include/llm_caching/llm_caching.hpp \
            ./usr/lib/pkgconfig/llm_caching.pc ./usr/lib/cmake/llm_caching/llm_cachingConfig.cmake \
            ./usr/share/llm-caching/model_costs.json ./usr/share/man/man1/llm-caching-serve.1 \
            ./usr/share/bash-completion/completions/llm-caching \
            ./usr/share/zsh/vendor-completions/_llm-caching \
            ./usr/lib/systemd/system/llm-caching.service ./etc/llm-caching/gateway.json; do
  grep -q " $path\$" "$work/contents" || fail "the package lacks $path"
done
! grep -q "libllmc_gateway" "$work/contents" || fail "the package ships the gateway's library"

# 2. Install, and what a user sees first.
apt-get install -y "$deb" >/dev/null 2>&1 || fail "apt-get install $deb failed"
version=$(/usr/bin/llm-caching --version)
grep -q '^llm-caching [0-9]' <<<"$version" || fail "unexpected --version: $version"
grep -q '^\.TH "\?LLM-CACHING' /usr/share/man/man1/llm-caching-serve.1 ||
  fail "no man page for llm-caching-serve"
getent passwd llm-caching >/dev/null || fail "the package made no llm-caching user"
completions=$(bash -c 'source /usr/share/bash-completion/completions/llm-caching
  COMP_WORDS=(llm-caching serve --li); COMP_CWORD=2; _llm_caching; echo "${COMPREPLY[*]}"')
[[ $completions == "--listen" ]] || fail "bash completion of 'serve --li' gave '$completions'"
zsh -n /usr/share/zsh/vendor-completions/_llm-caching || fail "the zsh completion does not parse"

# 3. The fake provider, then the unit's own command as the unit's user.
"$fake_bin" --listen 127.0.0.1:0 > "$work/fake.out" &
pids+=($!)
for _ in $(seq 50); do grep -q listening "$work/fake.out" 2>/dev/null && break; sleep 0.1; done
fake_port=$(sed -n 's/.*:\([0-9]*\)$/\1/p' "$work/fake.out")
[[ -n $fake_port ]] || fail "the fake provider did not start"
exec_start=$(sed -n 's/^ExecStart=//p' /usr/lib/systemd/system/llm-caching.service)
user=$(sed -n 's/^User=//p' /usr/lib/systemd/system/llm-caching.service)
environment=$(sed -n 's/^Environment=//p' /usr/lib/systemd/system/llm-caching.service)
# Flags given after the unit's command win over its config file: a free port, the fake upstream.
# shellcheck disable=SC2086
runuser -u "$user" -- env $environment $exec_start --listen 127.0.0.1:0 \
  --upstream "openai=http://127.0.0.1:$fake_port/v1" > "$work/gateway.out" 2> "$work/gateway.err" &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/gateway.out" 2>/dev/null && break; sleep 0.1; done
gateway_port=$(sed -n 's/.*:\([0-9]*\)$/\1/p' "$work/gateway.out")
[[ -n $gateway_port ]] || fail "the packaged gateway did not start: $(cat "$work/gateway.err")"
# A prompt of this run only: /var/cache/llm-caching outlives a remove (purge clears it).
prompt="from the package, run $$ at $(date +%s%N)"
ask() {
  curl -s --noproxy '*' -D - -o /dev/null "http://127.0.0.1:$gateway_port/v1/chat/completions" \
    -H 'authorization: Bearer sk-package' -H 'content-type: application/json' \
    -d "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"$prompt\"}]}" |
    tr -d '\r' | sed -n 's/^x-llm-cache: //p'
}
[[ $(ask) == MISS ]] || fail "the packaged gateway's first answer was not a MISS"
[[ $(ask) == HIT ]] || fail "the packaged gateway's second answer was not a HIT"
[[ -f /var/cache/llm-caching/cache.db ]] || fail "the gateway's cache is not under /var/cache"

# 4. The installed library from a CMake project and from a Makefile (pkg-config).
mkdir -p "$work/cmake" "$work/make"
cp "$here/consumer_CMakeLists.txt" "$work/cmake/CMakeLists.txt"
cp "$here/consumer_main.cpp" "$work/cmake/main.cpp"
cp "$here/consumer_Makefile" "$work/make/Makefile"
cp "$here/consumer_main.cpp" "$work/make/main.cpp"
cmake -S "$work/cmake" -B "$work/cmake/build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/cmake/build" >/dev/null || fail "a CMake project did not build"
make -s -C "$work/make" >/dev/null || fail "a Makefile project did not build with pkg-config"
for program in "$work/cmake/build/consumer" "$work/make/consumer"; do
  out=$(OPENAI_BASE_URL="http://127.0.0.1:$fake_port/v1" OPENAI_API_KEY=sk-package "$program") ||
    fail "$program: $out"
  [[ $out == "miss hit echo: packaged"* ]] || fail "$program printed: $out"
done

# 5. Remove: no gateway process left, the program gone.
apt-get remove -y llm-caching >/dev/null 2>&1 || fail "apt-get remove failed"
sleep 0.5
! pgrep -u llm-caching -x llm-caching >/dev/null || fail "a gateway is still running after remove"
[[ ! -e /usr/bin/llm-caching ]] || fail "/usr/bin/llm-caching is still there after remove"
echo "the Debian package installs, serves, links (CMake and pkg-config) and removes cleanly"
