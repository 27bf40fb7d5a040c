# Sourced by the gateway benchmarks: servers started in the background, stopped on exit along
# with the work directory. The sourcing script sets $work first.
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
unset HTTP_PROXY http_proxy HTTPS_PROXY https_proxy

# Starts a server that prints "listening on HOST:PORT"; sets $port and $last_pid, and appends to
# pids. Waits up to ${start_seconds:-5} s for that line.
start() {
  local log=$1
  shift
  "$@" >"$log.out" 2>"$log.err" &
  pids+=($!)
  last_pid=$!
  for _ in $(seq $((${start_seconds:-5} * 20))); do
    if grep -q "listening on" "$log.out" 2>/dev/null; then
      port=$(grep -o '[0-9]*$' "$log.out" | head -1)
      return
    fi
    sleep 0.05
  done
  echo "bench: $* did not start" >&2
  cat "$log.err" >&2
  exit 1
}
