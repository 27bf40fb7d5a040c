#!/usr/bin/env bash
# Runs the commands the docs promise work: every fenced block opened with ```sh tested in the
# given Markdown files, each in a fresh temp dir, against the fake provider. Then checks every
# option that any ```sh block gives an llm-caching command (synopses with placeholders too)
# against that command's --help, and that every other ```sh block with an llm-caching command
# says why it is not run ("# not tested: REASON"). Fails naming the file and line of each block
# or option that fails, and when no block is marked at all (a renamed marker would otherwise pass by running
# nothing).
#
#   run_doc_commands.sh CLI FAKE_PROVIDER EXAMPLES_DIR FILE.md...
#
# What a block may rely on, so that it reads as a user would type it:
#   - llm-caching, llm-caching-fake-provider and the examples (example_01_basic...) on PATH; curl.
#   - The fake provider running, and every provider's *_BASE_URL and *_API_KEY pointing at it.
#   - 127.0.0.1:8080 (a gateway) and 127.0.0.1:9000 (a fake provider) stand for free ports: the
#     runner rewrites them, so a block can start its own and tests never collide.
#   - The cache is the default embedded file under a fresh XDG_CACHE_HOME, per block; paths under
#     /tmp/ are rewritten into the block's own directory.
#   - Background jobs a block starts (`llm-caching serve ... &`) are stopped when it ends.
set -euo pipefail

cli=$(realpath "$1") fake=$(realpath "$2") examples=$(realpath "$3")
shift 3
bin=$(mktemp -d)
trap 'kill "${fake_pid:-}" 2>/dev/null || true; rm -rf "$bin"' EXIT
ln -s "$cli" "$bin/llm-caching"
ln -s "$fake" "$bin/llm-caching-fake-provider"
export PATH="$bin:$examples:$PATH"
unset HTTP_PROXY http_proxy HTTPS_PROXY https_proxy ALL_PROXY all_proxy LLM_CACHE_REDIS_URL \
      LLM_CACHING_CA_FILE LLM_CACHE_STALE_IF_ERROR LLM_CACHE_STALE_WHILE_REVALIDATE

# A port nothing answers on now (bash cannot bind, so it tries to connect to random ones). It is
# taken below the kernel's ephemeral range (net.ipv4.ip_local_port_range, 32768-60999 by default):
# there, a port nothing listens on may still be the local end of another test's connection, and
# binding it fails with "Address already in use".
free_port() {
  local port low
  low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  while :; do
    port=$((20000 + RANDOM % (low > 21000 ? low - 20000 : 1000)))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}

# The fake provider every block may use: its "listening on HOST:PORT" line names the port.
"$fake" --listen 127.0.0.1:0 >"$bin/fake.out" &
fake_pid=$!
for _ in $(seq 100); do grep -q "listening on" "$bin/fake.out" && break; sleep 0.1; done
fake_at=$(sed -n 's/^listening on //p' "$bin/fake.out")
[[ -n $fake_at ]] || { echo "the fake provider did not start" >&2; exit 1; }
export OPENAI_BASE_URL="http://$fake_at/v1" ANTHROPIC_BASE_URL="http://$fake_at"
export GEMINI_BASE_URL="http://$fake_at"
for host in GROQ DEEPSEEK OPENROUTER TOGETHER MISTRAL OLLAMA VLLM LLAMACPP; do
  export "${host}_BASE_URL=http://$fake_at/v1"
done
for key in OPENAI ANTHROPIC GEMINI GROQ DEEPSEEK OPENROUTER TOGETHER MISTRAL OLLAMA; do
  export "${key}_API_KEY=sk-docs-test"
done

# Each tested block as "FILE:LINE" then its lines, blocks separated by a NUL.
extract() {
  awk '
    FNR == 1 { inside = 0 }
    !inside && /^```sh tested[[:space:]]*$/ { inside = 1; printf "%s:%d\n", FILENAME, FNR; next }
    inside && /^```[[:space:]]*$/ { inside = 0; printf "%c", 0; next }
    inside { print }
  ' "$@"
}

blocks=0 failed=0
while IFS= read -r -d '' block; do
  where=${block%%$'\n'*}
  body=${block#*$'\n'}
  blocks=$((blocks + 1))
  dir=$(mktemp -d)
  gateway_port=$(free_port) spare_port=$(free_port)
  body=${body//127.0.0.1:8080/127.0.0.1:$gateway_port}
  body=${body//127.0.0.1:9000/127.0.0.1:$spare_port}
  body=${body//\/tmp\//$dir\/}
  # The block's own exit status stands; its background jobs are stopped after it.
  printf '%s\n' "trap 'rc=\$?; kill \$(jobs -p) 2>/dev/null || true; wait; exit \$rc' EXIT" "$body" \
    >"$dir/block.sh"
  # A block that hangs (a gateway that started when it should have refused) fails on its own.
  if (cd "$dir" && HOME="$dir" XDG_CACHE_HOME="$dir/cache" timeout 60 bash -eo pipefail block.sh \
        >"$dir/output" 2>&1); then
    echo "ok   $where"
  else
    failed=$((failed + 1))
    echo "FAIL $where: a documented command failed. The block:"
    sed 's/^/    /' "$dir/block.sh" | tail -n +2
    echo "  its output:"
    sed 's/^/    /' "$dir/output"
  fi
  rm -rf "$dir"
done < <(extract "$@")

# Every llm-caching command line in any ```sh block, runnable or a synopsis with placeholders:
# "FILE:LINE<TAB>the line", continuation lines (a trailing backslash, or an indented line after
# it) joined on, comments dropped.
command_lines() {
  awk '
    function flush() { if (cmd != "") print where "\t" cmd; cmd = "" }
    FNR == 1 { flush(); inside = 0 }
    !inside && /^```sh/ { inside = 1; next }
    inside && /^```[[:space:]]*$/ { flush(); inside = 0; next }
    !inside { next }
    {
      line = $0
      sub(/[[:space:]]+#.*$/, "", line)
      if (cmd != "" && (joining || line ~ /^[[:space:]]/)) {
        joining = sub(/\\[[:space:]]*$/, "", line)
        cmd = cmd " " line
        next
      }
      flush()
      # The command after any VAR=value words and a pipe into it.
      text = line
      sub(/^.*[[:space:]]\|[[:space:]]+/, "", text)
      while (text ~ /^[A-Z_]+=[^[:space:]]*[[:space:]]/) sub(/^[A-Z_]+=[^[:space:]]*[[:space:]]+/, "", text)
      if (text !~ /^llm-caching[[:space:]]/) next
      where = FILENAME ":" FNR
      joining = sub(/\\[[:space:]]*$/, "", text)
      cmd = text
    }
    END { flush() }
  ' "$@"
}

subcommands_of() {
  sed -n '/^Subcommands:/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p'
}

# Each documented option must be one the command takes: its --help lists it (a command's help
# names the global ones in its footer).
options=0
while IFS=$'\t' read -r where line; do
  path=()
  help=$(llm-caching --help)
  read -ra words <<<"${line#llm-caching}"
  for word in "${words[@]}"; do
    word=${word#[} word=${word%]}
    if [[ $word != -* ]] && grep -qx -- "$word" <<<"$(subcommands_of <<<"$help")"; then
      path+=("$word")
      help=$(llm-caching "${path[@]}" --help)
    fi
  done
  for word in "${words[@]}"; do
    [[ $word =~ ^\[?(--[a-z0-9-]+) ]] || continue
    flag=${BASH_REMATCH[1]}
    options=$((options + 1))
    if ! grep -qE -- "(^|[^a-z0-9-])$flag([^a-z0-9-]|\$)" <<<"$help"; then
      failed=$((failed + 1))
      echo "FAIL $where: 'llm-caching ${path[*]}' has no option $flag (the docs say: $line)"
    fi
  done
done < <(command_lines "$@")

# Every other ```sh block with an llm-caching command says why it is not run: a line
# "# not tested: REASON" (a synopsis, a real key or host, a command that runs until stopped).
while IFS= read -r where; do
  failed=$((failed + 1))
  echo "FAIL $where: a \`\`\`sh block with an llm-caching command is not \`\`\`sh tested and has no" \
    "'# not tested: REASON' line"
done < <(awk '
  function flush() { if (inside && has_cmd && !has_reason) print where; inside = 0 }
  FNR == 1 { inside = 0 }
  !inside && /^```sh[[:space:]]*$/ { inside = 1; has_cmd = 0; has_reason = 0; where = FILENAME ":" FNR; next }
  inside && /^```[[:space:]]*$/ { flush(); next }
  inside && /^[[:space:]]*# not tested: [^[:space:]]/ { has_reason = 1 }
  inside && /(^|[[:space:]|;(])llm-caching[[:space:]]/ { has_cmd = 1 }
' "$@")
if ((blocks == 0)); then
  echo "no \`\`\`sh tested block in: $*" >&2
  exit 1
fi
echo "$blocks documented blocks and $options documented options, $failed failed"
((failed == 0))
