#!/usr/bin/env bash
# Installs the pinned agent CLIs of package.json (real packages from the npm
# registry) into $1 (default: target/agent-clis), once: the end-to-end tests
# run them as sandboxed workers. Safe to run from several tests at once.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="${1:-$here/../../target/agent-clis}"
mkdir -p "$dest"
exec 9>"$dest/.lock"
flock 9
if cmp -s "$here/package.json" "$dest/package.json" && [ -x "$dest/node_modules/.bin/claude" ] && [ -x "$dest/node_modules/.bin/codex" ] && [ -x "$dest/node_modules/.bin/opencode" ] && [ -x "$dest/node_modules/.bin/mcp-server-filesystem" ]; then
  exit 0
fi
cp "$here/package.json" "$dest/package.json"
# Claude Code's postinstall puts its native binary in place.
(cd "$dest" && npm install --no-audit --no-fund --loglevel=error --foreground-scripts >&2)
cp "$here/package.json" "$dest/package.json"
