# shellcheck shell=bash
# Sourced by hack/release.sh and hack/image/build.sh: the one place that says how a
# shipped binary is stamped, so the release archives and the image hold the same
# bytes for the same commit. Sets, unless already set in the environment:
#   VERSION            git describe of a v* tag (v1.2.3, v1.2.3-4-gabcdef0), or without
#                      one a Go-style pseudo-version v0.0.0-<commit time>-<12 hex>; krew
#                      wants a v-prefixed semantic version. -dirty when tracked files differ.
#   SOURCE_DATE_EPOCH  the last commit's time (reproducible-builds.org's variable)
#   COMMIT             HEAD, or empty outside a repository
# and always sets BUILD_TIME (SOURCE_DATE_EPOCH as RFC 3339 UTC) and LDFLAGS.

_stamp_git() { git -C "$(dirname "${BASH_SOURCE[0]}")/.." "$@" 2>/dev/null; }

SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(_stamp_git log -1 --format=%ct || echo 0)}
COMMIT=${COMMIT-$(_stamp_git rev-parse HEAD || true)}
if [ -z "${VERSION:-}" ]; then
  if ! VERSION=$(_stamp_git describe --tags --match 'v[0-9]*' --dirty); then
    if [ -n "$COMMIT" ]; then
      VERSION="v0.0.0-$(TZ=UTC _stamp_git log -1 --date=format-local:%Y%m%d%H%M%S --format=%cd)-${COMMIT:0:12}"
      if [ -n "$(_stamp_git status --porcelain --untracked-files=no)" ]; then VERSION+=-dirty; fi
    else
      VERSION=v0.0.0-dev
    fi
  fi
fi
# GNU date takes -d @N, BSD (macOS) date -r N.
BUILD_TIME=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null ||
  date -u -r "$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
# -s -w: no symbol table or DWARF (smaller; nothing of this machine's paths);
# -buildid=: no build id, one less field that could differ between builders.
LDFLAGS="-s -w -buildid= -X main.version=$VERSION -X main.commit=$COMMIT -X main.buildTime=$BUILD_TIME"
export VERSION SOURCE_DATE_EPOCH COMMIT BUILD_TIME LDFLAGS
unset -f _stamp_git
