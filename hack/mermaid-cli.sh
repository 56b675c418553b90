#!/usr/bin/env bash
# Installs the Mermaid CLI (npm @mermaid-js/mermaid-cli, pinned) for the test that
# renders the reports' charts (cmd/runbook TestMoveChartsRender), driving Debian's
# Chromium (hack/ci-deps.sh installs it) instead of the browser puppeteer would
# download (the machine reaches npm, not Google's storage).
#
#   bash hack/mermaid-cli.sh          install if needed (cache: ~/.cache/runbook-tools/)
#   bash hack/mermaid-cli.sh --print  print the mmdc wrapper's path if installed, else nothing
set -euo pipefail
version=11.17.0
cache=${RUNBOOK_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/runbook-tools}
dir="$cache/mermaid-cli-$version"
wrapper="$dir/mmdc"

case "${1:-}" in
  --print) [ -x "$wrapper" ] && echo "$wrapper"; exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--print]" >&2; exit 2 ;;
esac
[ -x "$wrapper" ] && exit 0

chromium=$(command -v chromium || true)
if [ -z "$chromium" ]; then
  echo "mermaid-cli: Chromium is missing (apt-get install -y chromium, or bash hack/ci-deps.sh)" >&2
  exit 1
fi
command -v npm >/dev/null || { echo "mermaid-cli: npm is missing (apt-get install -y npm)" >&2; exit 1; }
echo "mermaid-cli: installing @mermaid-js/mermaid-cli@$version into $dir" >&2
tmp="$dir.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
(cd "$tmp" && PUPPETEER_SKIP_DOWNLOAD=true npm install --no-audit --no-fund --loglevel=error \
  "@mermaid-js/mermaid-cli@$version" >&2)
# Root in a container has no user namespace sandbox for Chromium.
printf '{"executablePath": "%s", "args": ["--no-sandbox", "--disable-gpu"]}\n' "$chromium" > "$tmp/puppeteer.json"
cat > "$tmp/mmdc" <<WRAP
#!/usr/bin/env bash
exec "$dir/node_modules/.bin/mmdc" -p "$dir/puppeteer.json" "\$@"
WRAP
chmod +x "$tmp/mmdc"
rm -rf "$dir"
mv "$tmp" "$dir"
echo "mermaid-cli: $wrapper" >&2
