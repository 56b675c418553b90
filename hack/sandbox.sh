#!/usr/bin/env bash
# Starts, stops and inspects the local test cluster (test/sandbox) in the background.
#
#   bash hack/sandbox.sh up       start it (no-op if running); writes .sandbox/kubeconfig
#   bash hack/sandbox.sh down     stop it (no-op if stopped); logs stay in .sandbox/logs
#   bash hack/sandbox.sh status   running? memory of its processes
#
# Environment: SCENARIO (name in test/scenarios or a file; default "default"),
# FLAVOUR (Calico install: crd (default) | apiserver | operator (tigera-operator
# v1.34.13, the one Calico v3.28.5 ships) | operator-v1.40 (a newer operator)), SANDBOX_DIR
# (default .sandbox), SANDBOX_NETWORK_GUARD (auto (default) | routes | egress-proxy:
# how the cluster's addresses are kept on this machine, test/sandbox/README.md).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
go=${GO:-go}
dir=${SANDBOX_DIR:-.sandbox}
cmd=${1:-}

case "$cmd" in
  up|down|status) ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac

# The daemon is a built binary rather than `go run`, so the process that keeps
# running is a stable file and `down` can recognise it.
mkdir -p "$dir/bin"
[ -x "$dir/bin/sandbox" ] || echo "building the sandbox command (first run: ~2 min)" >&2
"$go" build -o "$dir/bin/sandbox" ./test/sandbox/cmd/sandbox

case "$cmd" in
  up)
    # Only the binary sets this flavour starts (the default flavour needs no Calico API server).
    tools=$(bash hack/build-tools.sh --print-dir --flavour "${FLAVOUR:-crd}" --scenario "${SCENARIO:-default}")
    ln -sfn "$tools/kubectl" "$dir/bin/kubectl"
    exec "$dir/bin/sandbox" up -dir="$dir" -tools="$tools" \
      -scenario="${SCENARIO:-default}" -flavour="${FLAVOUR:-crd}"
    ;;
  down|status)
    exec "$dir/bin/sandbox" "$cmd" -dir="$dir"
    ;;
esac
