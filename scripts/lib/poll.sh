# Sourced by the benchmarks: reading the server's answers while an import is timed, with curl and the
# shell alone. A python3 per poll (through pyenv's shims, 0.2 s of processor each) took most of a core
# from the server being measured, on a machine of two.

# A top-level scalar of the JSON on stdin, unquoted: json_field item_queue_id <<<"$answer"
json_field() {
  grep -o "\"$1\":[^,}]*" | head -n 1 | cut -d: -f2- | tr -d '"'
}

# Polls an import until it ends; prints its last status (JSON).
#   wait_import http://127.0.0.1:PORT KEY ID
wait_import() {
  local base=$1 key=$2 id=$3 status
  while :; do
    status=$(curl -sf "$base/api/v1/imports/$id?api_key=$key")
    case "$status" in *'"state":"complete"'* | *'"state":"failure"'*) break ;; esac
    sleep 0.1
  done
  printf '%s\n' "$status"
}
