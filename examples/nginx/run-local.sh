#!/usr/bin/env bash
# Run three mcp-migrate proxy replicas on 127.0.0.1:3101-3103, each serving the MCP stdio server given
# after `--` (default: @modelcontextprotocol/server-everything), sharing one Redis, behind nginx
# round-robin on http://127.0.0.1:8080/mcp. Ctrl-C stops everything.
#
#   examples/nginx/run-local.sh                          # server-everything over stdio
#   examples/nginx/run-local.sh -- node my-server.js     # your own stdio server
#
# Environment:
#   MCP_MIGRATE     how to run the CLI (default: the repository's build, else `npx mcp-migrate`)
#   REDIS_URL       use this Redis instead of starting redis-server on 127.0.0.1:6390
#   SESSION_SECRET  shared by all replicas (default: a random one for this run)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

if [[ -z "${MCP_MIGRATE:-}" ]]; then
  if [[ -f "$root/dist/src/cli/index.js" ]]; then MCP_MIGRATE="node $root/dist/src/cli/index.js"; else MCP_MIGRATE="npx mcp-migrate"; fi
fi
server=()
if [[ "${1:-}" == "--" ]]; then shift; server=("$@"); fi
if [[ ${#server[@]} -eq 0 ]]; then
  if [[ -f "$root/node_modules/@modelcontextprotocol/server-everything/dist/index.js" ]]; then
    server=(node "$root/node_modules/@modelcontextprotocol/server-everything/dist/index.js" stdio)
  else
    server=(npx -y @modelcontextprotocol/server-everything stdio)
  fi
fi
SESSION_SECRET="${SESSION_SECRET:-$(node -e 'console.log(require("crypto").randomBytes(32).toString("base64url"))')}"

prefix="$(mktemp -d)"
mkdir -p "$prefix/logs" "$prefix/tmp"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$prefix"
}
trap cleanup EXIT INT TERM

if [[ -z "${REDIS_URL:-}" ]]; then
  redis-server --port 6390 --bind 127.0.0.1 --save '' --appendonly no --dir "$prefix" --logfile "$prefix/logs/redis.log" &
  pids+=($!)
  REDIS_URL="redis://127.0.0.1:6390"
  for _ in $(seq 50); do redis-cli -p 6390 ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

for port in 3101 3102 3103; do
  $MCP_MIGRATE proxy --listen "127.0.0.1:$port" --path /mcp --store "$REDIS_URL" \
    --session-secret "$SESSION_SECRET" -- "${server[@]}" >"$prefix/logs/proxy-$port.log" 2>&1 &
  pids+=($!)
done

# As root, nginx would switch its workers to `nobody`, who cannot write the temp prefix.
globals='daemon off;'
[[ "$(id -u)" == 0 ]] && globals='daemon off; user root;'
nginx -p "$prefix" -c "$here/nginx.conf" -e "$prefix/logs/error.log" -g "$globals" &
pids+=($!)

echo "MCP endpoint: http://127.0.0.1:8080/mcp  (3 replicas, round-robin; logs in $prefix/logs)"
echo "Try: npx @modelcontextprotocol/inspector  → Streamable HTTP → http://127.0.0.1:8080/mcp"
wait -n "${pids[@]}"
