#!/usr/bin/env bash
# Builds the local test cluster's binaries from pinned tools modules and caches
# them, so the main module never compiles Kubernetes or the Calico API server:
#   hack/tools                    kube-apiserver, kube-controller-manager, kube-scheduler,
#                                 kubectl (k8s.io/kubernetes), etcd, kwok
#   hack/tools-calico             calico-apiserver (the projectcalico.org/v3 API server),
#                                 calico-kube-controllers, calico-allocate-tunnel-addrs
#                                 (calico-node's allocateip), k8s.io/* v0.29 like the
#                                 Calico monorepo
# and downloads the tigera-operator module pinned by hack/tools-operator-v1.40 (its
# CRDs, for flavour operator-v1.40; flavour operator's v1.34.13 CRDs come with Calico).
#
#   bash hack/build-tools.sh              build if needed, report where the binaries are
#   bash hack/build-tools.sh --print-dir  print ONLY the binary directory on stdout
#
# Cache: ${RUNBOOK_TOOLS_CACHE:-$HOME/.cache/runbook-tools}/. Each set builds into
# <cache>/<key>/, where <key> hashes its module (go.mod, go.sum, sources), its recipe
# and `go version`, so a change to one set's pins rebuilds only that set. The
# directory printed holds links to every set's binaries: <cache>/all-<keys hash>/.
# Progress goes to stderr.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
go=${GO:-go}

print_dir=false
case "${1:-}" in
  --print-dir) print_dir=true ;;
  "") ;;
  *) echo "usage: $0 [--print-dir]" >&2; exit 2 ;;
esac

cache=${RUNBOOK_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/runbook-tools}
mkdir -p "$cache"
# One builder at a time: `make test` runs this script twice, CI may run it in parallel.
exec 9>"$cache/.lock"
flock 9

# build_set <label> <module dir> <ldflags> <"pkg=binary" ...>: builds into
# $cache/<key>/ unless complete there, then sets $set_dir.
build_set() {
  local label=$1 mod=$2 ldflags=$3
  shift 3
  local specs=("$@") key dir spec
  key=$(
    {
      cat "$mod/go.mod" "$mod/go.sum"
      find "$mod" -name '*.go' -print0 | sort -z | xargs -0 cat
      echo "$ldflags" "${specs[*]}" CGO_ENABLED=0
      "$go" version
    } | sha256sum | cut -c1-16
  )
  dir="$cache/$key"
  set_dir=$dir
  local complete=true
  [ -f "$dir/.complete" ] || complete=false
  for spec in "${specs[@]}"; do [ -x "$dir/${spec#*=}" ] || complete=false; done
  $complete && return 0

  echo "first run: building $label" >&2
  local tmp="$dir.tmp.$$" start=$SECONDS
  rm -rf "$tmp"
  mkdir -p "$tmp"
  local pkgs=()
  for spec in "${specs[@]}"; do pkgs+=("${spec%%=*}"); done
  # One go build for the whole set (links in parallel). GOWORK=off and
  # -mod=readonly: build exactly the pinned graph, whatever the caller's environment.
  if ! (cd "$mod" && GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0 \
        "$go" build -trimpath -ldflags "$ldflags" -o "$tmp/" "${pkgs[@]}") >&2; then
    rm -rf "$tmp"
    echo "build-tools: building $label failed (see above)" >&2
    return 1
  fi
  for spec in "${specs[@]}"; do # go build names a binary after its package
    local built
    built=$(basename "${spec%%=*}")
    [ "$built" = "${spec#*=}" ] || mv "$tmp/$built" "$tmp/${spec#*=}"
  done
  touch "$tmp/.complete"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  echo "build-tools: $label built in $((SECONDS - start))s into $dir" >&2
}

# The Kubernetes version stamp kubectl, the apiserver's /version and the skew checks
# read; Kubernetes' own build sets the same variables (hack/lib/version.sh).
k8s_version=v1.37.2
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=37"
  k8s_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

dirs=()
build_set "the Kubernetes control plane (~5 min)" "$root/hack/tools" "$k8s_ldflags" \
  k8s.io/kubernetes/cmd/kube-apiserver=kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager=kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler=kube-scheduler \
  k8s.io/kubernetes/cmd/kubectl=kubectl \
  sigs.k8s.io/kwok/cmd/kwok=kwok \
  ./cmd/etcd=etcd
dirs+=("$set_dir")
build_set "the Calico API server, kube-controllers, tunnel allocator (~5 min)" "$root/hack/tools-calico" "-s -w" \
  github.com/projectcalico/calico/apiserver/cmd/apiserver=calico-apiserver \
  github.com/projectcalico/calico/kube-controllers/cmd/kube-controllers=calico-kube-controllers \
  ./cmd/calico-allocate-tunnel-addrs=calico-allocate-tunnel-addrs
dirs+=("$set_dir")

# Not a binary: flavour operator-v1.40 installs tigera-operator v1.40.0's CRDs from
# its module, pinned by hack/tools-operator-v1.40; fetching it here keeps tests
# offline. (Flavour operator's, v1.34.13's, are in the pinned Calico module.)
(cd "$root/hack/tools-operator-v1.40" && GOWORK=off GOFLAGS=-mod=readonly "$go" mod download github.com/tigera/operator) >&2

# The directory handed to the sandbox links every set's binaries.
all="$cache/all-$(printf '%s\n' "${dirs[@]}" | sha256sum | cut -c1-16)"
if [ ! -f "$all/.complete" ]; then
  tmp="$all.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  for d in "${dirs[@]}"; do
    for b in "$d"/*; do ln -s "$b" "$tmp/$(basename "$b")"; done
  done
  touch "$tmp/.complete"
  rm -rf "$all"
  mv "$tmp" "$all"
fi

if $print_dir; then
  echo "$all"
else
  echo "tools: $all" >&2
fi
