#!/usr/bin/env bash
# Builds the local test cluster's binaries (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, etcd, kwok) from the pinned modules in hack/tools and
# caches them, so the main module never compiles Kubernetes.
#
#   bash hack/build-tools.sh              build if needed, report where the binaries are
#   bash hack/build-tools.sh --print-dir  print ONLY the binary directory on stdout
#
# Cache: ${RUNBOOK_TOOLS_CACHE:-$HOME/.cache/runbook-tools}/<key>/, where <key> hashes
# the tools module (go.mod, go.sum, sources), this recipe and `go version`: any change
# to the pins or the toolchain builds into a fresh directory. Progress goes to stderr.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools_mod="$root/hack/tools"
go=${GO:-go}

print_dir=false
case "${1:-}" in
  --print-dir) print_dir=true ;;
  "") ;;
  *) echo "usage: $0 [--print-dir]" >&2; exit 2 ;;
esac

k8s_version=v1.37.2
# The version stamp kubectl, the apiserver's /version and the skew checks read;
# Kubernetes' own build sets the same variables (hack/lib/version.sh).
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=37"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
packages=(
  k8s.io/kubernetes/cmd/kube-apiserver
  k8s.io/kubernetes/cmd/kube-controller-manager
  k8s.io/kubernetes/cmd/kube-scheduler
  k8s.io/kubernetes/cmd/kubectl
  sigs.k8s.io/kwok/cmd/kwok
  ./cmd/etcd
)
binaries=(kube-apiserver kube-controller-manager kube-scheduler kubectl kwok etcd)

key=$(
  {
    cat "$tools_mod/go.mod" "$tools_mod/go.sum" "$tools_mod/cmd/etcd/main.go"
    echo "$ldflags" "${packages[*]}" CGO_ENABLED=0
    "$go" version
  } | sha256sum | cut -c1-16
)
cache=${RUNBOOK_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/runbook-tools}
dir="$cache/$key"

complete() {
  [ -f "$dir/.complete" ] || return 1
  local b
  for b in "${binaries[@]}"; do [ -x "$dir/$b" ] || return 1; done
}

build() {
  mkdir -p "$cache"
  # One builder at a time: `make test` runs this script twice, CI may run it in parallel.
  exec 9>"$cache/.lock"
  flock 9
  if complete; then return 0; fi
  echo "first run: building the Kubernetes control plane (~5 min)" >&2
  local tmp="$dir.tmp.$$" start=$SECONDS
  rm -rf "$tmp"
  mkdir -p "$tmp"
  # GOWORK=off and -mod=readonly: build exactly the pinned graph, whatever the caller's environment.
  if ! (cd "$tools_mod" && GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0 \
        "$go" build -trimpath -ldflags "$ldflags" -o "$tmp/" "${packages[@]}") >&2; then
    rm -rf "$tmp"
    echo "build-tools: building the control plane failed (see above)" >&2
    return 1
  fi
  touch "$tmp/.complete"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  echo "build-tools: built in $((SECONDS - start))s into $dir" >&2
}

complete || build

if $print_dir; then
  echo "$dir"
else
  echo "tools: $dir" >&2
fi
