#!/usr/bin/env bash
# Renders the Mermaid charts of a Markdown report (runbook apply --report x.md) to
# PNGs, as a reader's ticket system would draw them: <prefix>-1.png, -2.png, ...
#
#   bash hack/report-pictures.sh .sandbox/demo-report.md docs/report-move
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 REPORT.md OUT-PREFIX" >&2; exit 2; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/hack/mermaid-cli.sh"
mmdc=$(bash "$root/hack/mermaid-cli.sh" --print)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
awk -v dir="$tmp" '/^```mermaid$/ {n++; f=1; next} f && /^```$/ {f=0; next} f {print > (dir "/" n ".mmd")}' "$1"
n=0
for mmd in "$tmp"/*.mmd; do
  [ -e "$mmd" ] || { echo "no Mermaid chart in $1" >&2; exit 1; }
  n=$((n + 1))
  "$mmdc" -q -i "$mmd" -o "$2-$n.png" -w 900 -b white
  echo "$2-$n.png"
done
