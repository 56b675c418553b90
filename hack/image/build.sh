#!/usr/bin/env bash
# Builds the runbook container image with buildah, reproducibly: FROM scratch (no base
# image to pull), one layer holding one static binary, non-root, every timestamp set
# to the commit's time. The same commit gives the same image digest.
#
#   hack/image/build.sh [DEST]   DEST: an image reference for buildah commit,
#                                default oci:bin/image:runbook (an OCI layout)
#
# Environment: VERSION (default: git describe, see hack/stamp.sh), SOURCE_DATE_EPOCH
# (default: the last commit's time), BUILDAH_ROOT (default: a temporary store, removed
# after).
#
# Needs root or a user namespace for buildah's store; uses the vfs storage driver,
# which works inside containers where overlay-on-overlay does not.
set -euo pipefail
cd "$(dirname "$0")/../.."

DEST=${1:-oci:bin/image:runbook}
# VERSION, SOURCE_DATE_EPOCH and LDFLAGS: the same stamp as the release archives.
source hack/stamp.sh
UID_GID=65532:65532   # "nonroot", as distroless images use

work=$(mktemp -d)
cleanup() {
  if [ -n "${ctr:-}" ]; then buildah "${store[@]}" rm "$ctr" >/dev/null 2>&1 || true; fi
  if [ -z "${BUILDAH_ROOT:-}" ]; then buildah "${store[@]}" unshare rm -rf "$work/store" 2>/dev/null || rm -rf "$work/store"; fi
  rm -rf "$work"
}
trap cleanup EXIT
root=${BUILDAH_ROOT:-$work/store}
store=(--root "$root/root" --runroot "$root/run" --storage-driver vfs)

# Static and reproducible: no cgo, no paths of this machine, no build id, no VCS stamp
# (the version and commit are stamped by LDFLAGS).
CGO_ENABLED=0 GOOS=linux GOFLAGS=-buildvcs=false go build -trimpath \
  -ldflags "$LDFLAGS" -o "$work/runbook" ./cmd/runbook
touch -d "@$SOURCE_DATE_EPOCH" "$work/runbook"

ctr=$(buildah "${store[@]}" from --quiet scratch)
buildah "${store[@]}" copy --quiet --chown "$UID_GID" --chmod 0555 "$ctr" "$work/runbook" /runbook >/dev/null
buildah "${store[@]}" config \
  --entrypoint '["/runbook"]' --cmd '["--help"]' --user "$UID_GID" --workingdir / \
  --label org.opencontainers.image.title=runbook \
  --label org.opencontainers.image.version="$VERSION" \
  --label org.opencontainers.image.source=https://github.com/runbookdev/runbook \
  "$ctr"
mkdir -p bin
buildah "${store[@]}" commit --quiet --format oci --timestamp "$SOURCE_DATE_EPOCH" "$ctr" "$DEST"
echo "built $DEST (version $VERSION, timestamp $SOURCE_DATE_EPOCH)" >&2
