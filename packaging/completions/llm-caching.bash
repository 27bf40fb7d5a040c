# bash completion for llm-caching. It reads the commands and options from the program's own
# --help, so it never falls behind the program.
_llm_caching_help() {
  "$1" "${@:2}" --help 2>/dev/null
}
_llm_caching_subcommands() {
  sed -n '/^Subcommands:/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p'
}
_llm_caching_options() {
  sed -n 's/^  \(-[a-zA-Z],\)\{0,1\}\(--[a-z0-9-]*\).*/\2/p'
}
_llm_caching() {
  local cur=${COMP_WORDS[COMP_CWORD]} program=${COMP_WORDS[0]} word help subs
  local -a path=()
  # The subcommands typed so far: only words that the level above lists as its subcommands (an
  # option's value is never taken for one).
  for word in "${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
    subs=$(_llm_caching_help "$program" "${path[@]}" | _llm_caching_subcommands)
    if [[ $word != -* ]] && grep -qx -- "$word" <<<"$subs"; then path+=("$word"); fi
  done
  help=$(_llm_caching_help "$program" "${path[@]}")
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$(_llm_caching_options <<<"$help")" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$(_llm_caching_subcommands <<<"$help")" -- "$cur"))
    ((${#COMPREPLY[@]})) || COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -F _llm_caching llm-caching
