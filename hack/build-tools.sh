#!/usr/bin/env bash
# Builds the local test cluster's binaries from pinned tools modules and caches
# them, so the main module never compiles Kubernetes or the Calico API server.
# The binaries come in sets; a command builds only the sets it needs:
#
#   set                    module                     builds
#   kubernetes             hack/tools                 kube-apiserver, kube-controller-manager,
#                                                     kube-scheduler, kubectl (k8s.io/kubernetes),
#                                                     etcd, kwok
#   calico                 hack/tools-calico          calico-kube-controllers,
#                                                     calico-allocate-tunnel-addrs (calico-node's
#                                                     allocateip); every flavour starts them
#   calico-apiserver       hack/tools-calico          calico-apiserver (the projectcalico.org/v3
#                                                     API server): flavours apiserver, operator,
#                                                     operator-v1.40
#   tigera-operator-v1.40  hack/tools-operator-v1.40  no binary: downloads tigera-operator v1.40.0's
#                                                     module (its CRDs) for flavour operator-v1.40;
#                                                     flavour operator's v1.34.13 CRDs come with Calico
#
#   bash hack/build-tools.sh [selection] [--print-dir | --list-sets | --list-binaries]
#
#   selection: --flavour crd|apiserver|operator|operator-v1.40 and/or --scenario <name|file>
#              (or the environment's FLAVOUR / SCENARIO, as hack/sandbox.sh reads them): the
#              sets that sandbox starts (flavour default crd). Every scenario starts the same
#              binaries; the flavour decides. No selection, or --all: every set (make test).
#   --print-dir      build if needed, print ONLY the binary directory on stdout
#   --list-sets      build nothing, print the selection's set names, one a line
#   --list-binaries  build nothing, print the selection's binaries, one a line: <set> <binary>
#
# Cache: ${RUNBOOK_TOOLS_CACHE:-$HOME/.cache/runbook-tools}/. Each set builds into
# <cache>/<key>/, where <key> hashes its module (go.mod, go.sum, sources), its recipe
# and `go version`, so a change to one set's pins rebuilds only that set. The
# directory printed holds links to the selected sets' binaries, exactly those:
# <cache>/all-<keys hash>/. While a set builds, one progress line every
# ${BUILD_TOOLS_PROGRESS_SECONDS:-15} s; the go command's output goes to
# <cache>/<set>.log, whose tail is printed if the build fails. Progress goes to stderr.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
go=${GO:-go}

usage() {
  echo "usage: $0 [--all | --flavour crd|apiserver|operator|operator-v1.40] [--scenario <name|file>] [--print-dir | --list-sets | --list-binaries]" >&2
  exit 2
}

mode=build all=false flavour="" scenario="" selection_flags=false
while [ $# -gt 0 ]; do
  case "$1" in
    --print-dir) mode=print-dir ;;
    --list-sets) mode=list-sets ;;
    --list-binaries) mode=list-binaries ;;
    --all) all=true ;;
    --flavour|--scenario)
      [ $# -ge 2 ] || usage
      if [ "$1" = --flavour ]; then flavour=$2; else scenario=$2; fi
      selection_flags=true
      shift ;;
    --flavour=*) flavour=${1#*=} selection_flags=true ;;
    --scenario=*) scenario=${1#*=} selection_flags=true ;;
    *) usage ;;
  esac
  shift
done

# --- the sets ---
all_sets=(kubernetes calico calico-apiserver tigera-operator-v1.40)
declare -A set_label set_mod set_ldflags set_specs
# The Kubernetes version stamp kubectl, the apiserver's /version and the skew checks
# read; Kubernetes' own build sets the same variables (hack/lib/version.sh).
k8s_version=v1.37.2
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=37"
  k8s_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
set_label[kubernetes]="the Kubernetes control plane"
set_mod[kubernetes]=$root/hack/tools
set_ldflags[kubernetes]=$k8s_ldflags
set_specs[kubernetes]="k8s.io/kubernetes/cmd/kube-apiserver=kube-apiserver
k8s.io/kubernetes/cmd/kube-controller-manager=kube-controller-manager
k8s.io/kubernetes/cmd/kube-scheduler=kube-scheduler
k8s.io/kubernetes/cmd/kubectl=kubectl
sigs.k8s.io/kwok/cmd/kwok=kwok
./cmd/etcd=etcd"
set_label[calico]="Calico's kube-controllers and tunnel-address allocator"
set_mod[calico]=$root/hack/tools-calico
set_ldflags[calico]="-s -w"
set_specs[calico]="github.com/projectcalico/calico/kube-controllers/cmd/kube-controllers=calico-kube-controllers
./cmd/calico-allocate-tunnel-addrs=calico-allocate-tunnel-addrs"
set_label[calico-apiserver]="the Calico API server"
set_mod[calico-apiserver]=$root/hack/tools-calico
set_ldflags[calico-apiserver]="-s -w"
set_specs[calico-apiserver]="github.com/projectcalico/calico/apiserver/cmd/apiserver=calico-apiserver"
set_label[tigera-operator-v1.40]="tigera-operator v1.40.0's module (CRDs)"
set_mod[tigera-operator-v1.40]=$root/hack/tools-operator-v1.40
set_specs[tigera-operator-v1.40]=""

# sets_for_flavour prints the sets a sandbox of that flavour starts binaries from
# (test/sandbox: toolsFor; a test keeps the two and README's table in step).
sets_for_flavour() {
  case "$1" in
    crd) echo kubernetes calico ;;
    apiserver|operator) echo kubernetes calico calico-apiserver ;;
    operator-v1.40) echo kubernetes calico calico-apiserver tigera-operator-v1.40 ;;
    *) echo "build-tools: flavour \"$1\" is not supported (supported: crd, apiserver, operator, operator-v1.40)" >&2
       return 2 ;;
  esac
}

if $all && $selection_flags; then
  echo "build-tools: --all builds every set; it takes no --flavour/--scenario" >&2
  exit 2
fi
# Without flags, the environment's selection (FLAVOUR, SCENARIO), except with --all.
if ! $all && ! $selection_flags; then flavour=${FLAVOUR:-} scenario=${SCENARIO:-}; fi
if [ -n "$scenario" ] && [ ! -f "$root/test/scenarios/$scenario.yaml" ] && [ ! -f "$scenario" ]; then
  echo "build-tools: scenario \"$scenario\" is neither test/scenarios/$scenario.yaml nor a file" >&2
  exit 2
fi
if [ -z "$flavour" ] && [ -z "$scenario" ]; then
  selected=("${all_sets[@]}")
else
  read -r -a selected <<<"$(sets_for_flavour "${flavour:-crd}")" || exit 2
  [ ${#selected[@]} -gt 0 ] || exit 2
fi

case "$mode" in
  list-sets) printf '%s\n' "${selected[@]}"; exit 0 ;;
  list-binaries)
    for s in "${selected[@]}"; do
      [ -z "${set_specs[$s]}" ] || while read -r spec; do echo "$s ${spec#*=}"; done <<<"${set_specs[$s]}"
    done
    exit 0 ;;
esac

cache=${RUNBOOK_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/runbook-tools}
mkdir -p "$cache"
# One builder at a time: `make test` runs this script several times, CI may run it in
# parallel. Children close fd 9, so none keeps holding the lock after the script.
exec 9>"$cache/.lock"
flock 9

# What runs in the background while a set builds, and its unfinished directory:
# stopped and removed whichever way the script ends (failure, ctrl-C, TERM).
builder_pid="" ticker_pid="" tmp_dir=""
cleanup() {
  local pid
  [ -z "$builder_pid" ] || kill -- -"$builder_pid" 2>/dev/null || true
  for pid in $ticker_pid $builder_pid; do kill "$pid" 2>/dev/null || true; done
  for pid in $ticker_pid $builder_pid; do wait "$pid" 2>/dev/null || true; done
  [ -z "$tmp_dir" ] || rm -rf "$tmp_dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

duration() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# ticker <label> <total> <log> <start>: every few seconds, how many of the set's
# <total> packages to compile the go command has compiled (go build -v prints each
# one's path as it is compiled; packages from the build cache are not printed).
ticker() {
  local label=$1 total=$2 log=$3 start=$4 parent=$$ n sleeper=""
  trap '[ -z "$sleeper" ] || kill "$sleeper" 2>/dev/null; exit 0' TERM
  while :; do
    sleep "${BUILD_TOOLS_PROGRESS_SECONDS:-15}" &
    sleeper=$!
    wait "$sleeper" || true
    kill -0 "$parent" 2>/dev/null || exit 0
    n=$(grep -cv -e '^go: ' -e '^#' "$log" || true)
    echo "build-tools: building $label: $n/$total packages, $(duration $((SECONDS - start)))" >&2
  done
}

# build_set <set>: builds into $cache/<key>/ unless complete there, then sets $set_dir.
build_set() {
  local set=$1 label=${set_label[$1]} mod=${set_mod[$1]} flags=${set_ldflags[$1]}
  local specs_a key dir spec
  mapfile -t specs_a <<<"${set_specs[$set]}"
  # The recipe in the key is what main's one-set-per-module script hashed, so a set
  # whose module, flags and binaries are unchanged keeps its cached build.
  key=$(
    {
      cat "$mod/go.mod" "$mod/go.sum"
      find "$mod" -name '*.go' -print0 | sort -z | xargs -0 cat
      echo "$flags" "${specs_a[*]}" CGO_ENABLED=0
      "$go" version
    } | sha256sum | cut -c1-16
  )
  dir="$cache/$key"
  set_dir=$dir
  local complete=true
  [ -f "$dir/.complete" ] || complete=false
  for spec in "${specs_a[@]}"; do [ -x "$dir/${spec#*=}" ] || complete=false; done
  $complete && return 0

  local pkgs=() total log="$cache/$set.log" start=$SECONDS
  for spec in "${specs_a[@]}"; do pkgs+=("${spec%%=*}"); done
  tmp_dir="$dir.tmp.$$"
  rm -rf "$tmp_dir"
  mkdir -p "$tmp_dir"
  # GOWORK=off and -mod=readonly: build exactly the pinned graph, whatever the
  # caller's environment. One go build for the whole set (links in parallel).
  export GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0
  echo "build-tools: first run: building $label ($set set: ${specs_a[*]##*=}); log $log" >&2
  # The packages to compile: those of the set not in the Go build cache already
  # (.Stale, with the build's flags; another set of the module may have compiled
  # many). With a cold module cache this is where the modules download.
  local listed cached
  if ! listed=$(cd "$mod" && "$go" list -deps -trimpath -ldflags "$flags" -f '{{if .Stale}}stale{{else}}cached{{end}}' "${pkgs[@]}" 2>"$log" 9>&-); then
    echo "build-tools: listing the packages of $label failed; the end of $log:" >&2
    tail -n 30 "$log" >&2
    return 1
  fi
  total=$(grep -cx stale <<<"$listed" || true)
  cached=$(grep -cx cached <<<"$listed" || true)
  # In its own process group (setsid), so that stopping it stops the compilers too.
  (cd "$mod" && exec setsid "$go" build -v -trimpath -ldflags "$flags" -o "$tmp_dir/" "${pkgs[@]}") >"$log" 2>&1 9>&- &
  builder_pid=$!
  ticker "$label" "$total" "$log" "$start" 9>&- &
  ticker_pid=$!
  local rc=0
  wait "$builder_pid" || rc=$?
  builder_pid=""
  kill "$ticker_pid" 2>/dev/null || true
  wait "$ticker_pid" 2>/dev/null || true
  ticker_pid=""
  if [ $rc -ne 0 ]; then
    echo "build-tools: building $label failed (exit $rc) after $(duration $((SECONDS - start))); the end of $log:" >&2
    tail -n 40 "$log" >&2
    return 1
  fi
  for spec in "${specs_a[@]}"; do # go build names a binary after its package
    local built
    built=$(basename "${spec%%=*}")
    [ "$built" = "${spec#*=}" ] || mv "$tmp_dir/$built" "$tmp_dir/${spec#*=}"
  done
  touch "$tmp_dir/.complete"
  rm -rf "$dir"
  mv "$tmp_dir" "$dir"
  tmp_dir=""
  local compiled
  compiled=$(grep -cv -e '^go: ' -e '^#' "$log" || true)
  echo "build-tools: $label built in $(duration $((SECONDS - start))) ($compiled packages compiled, $cached from the Go build cache) into $dir" >&2
}

# fetch_module <set>: not a binary. Flavour operator-v1.40 installs tigera-operator
# v1.40.0's CRDs from its module, pinned by hack/tools-operator-v1.40; fetching it here
# keeps tests offline. (Flavour operator's, v1.34.13's, are in the pinned Calico module.)
fetch_module() {
  local log="$cache/$1.log"
  if ! (cd "${set_mod[$1]}" && GOWORK=off GOFLAGS=-mod=readonly "$go" mod download github.com/tigera/operator) >"$log" 2>&1 9>&-; then
    echo "build-tools: downloading ${set_label[$1]} failed; the end of $log:" >&2
    tail -n 20 "$log" >&2
    return 1
  fi
}

dirs=()
for s in "${selected[@]}"; do
  if [ -z "${set_specs[$s]}" ]; then
    fetch_module "$s"
  else
    build_set "$s"
    dirs+=("$set_dir")
  fi
done

# The directory handed to the sandbox links the selected sets' binaries, and only
# those: one directory per combination of sets.
all="$cache/all-$(printf '%s\n' "${dirs[@]}" | sha256sum | cut -c1-16)"
if [ ! -f "$all/.complete" ]; then
  tmp_dir="$all.tmp.$$"
  rm -rf "$tmp_dir"
  mkdir -p "$tmp_dir"
  for d in "${dirs[@]}"; do
    for b in "$d"/*; do ln -s "$b" "$tmp_dir/$(basename "$b")"; done
  done
  touch "$tmp_dir/.complete"
  rm -rf "$all"
  mv "$tmp_dir" "$all"
  tmp_dir=""
fi

if [ "$mode" = print-dir ]; then
  echo "$all"
else
  echo "tools: $all (sets: ${selected[*]})" >&2
fi
