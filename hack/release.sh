#!/usr/bin/env bash
# Builds a release of runbook, reproducibly: the same commit, VERSION and
# SOURCE_DATE_EPOCH give the same bytes in every file, on any machine with the same
# Go toolchain and GNU tar, gzip and zip.
#
#   hack/release.sh [DIST]     (make release)   DIST: default dist/ of the repository,
#                                                 emptied first (a release's only)
#
# Writes into DIST:
#   runbook_<ver>_<os>_<arch>.tar.gz   linux and darwin, amd64 and arm64
#   runbook_<ver>_windows_amd64.zip    each holding the binary as kubectl-runbook[.exe]
#                                      (krew's and kubectl's plugin name; renamed
#                                      runbook it is the plain CLI) and LICENSE if any
#   runbook_<ver>_<os>_<arch>.cdx.json a CycloneDX SBOM of each archive's binary
#                                      (cyclonedx-gomod, pinned by hack/tools-release):
#                                      the modules linked differ by platform
#   runbook_<ver>_linux_<arch>.oci.tar the container image (hack/image/build.sh) as an
#                                      OCI archive, when buildah is installed
#   runbook.yaml                       the krew manifest, from deploy/krew/runbook.yaml
#   checksums.txt                      sha256sum of every other file
#
# Environment:
#   VERSION, SOURCE_DATE_EPOCH  see hack/stamp.sh (default: git describe, commit time)
#   PLATFORMS  os/arch list, default all five above (tests build fewer)
#   IMAGE      auto (default: build when buildah is installed), yes (fail without
#              buildah), no
#   SBOM       yes (default) or no
#   RELEASE_URL  where the archives will be downloaded from, for the krew manifest's
#              uri (default: the GitHub release of VERSION)
set -euo pipefail
# The whole script is one block: bash parses it before running any of it, so editing
# this file while a release runs (minutes) cannot change the running one midway.
{
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# DIST as given, relative to where the script was run; dist/ is the repository's.
DIST=${1:-$root/dist}
case $DIST in /*) ;; *) DIST=$PWD/$DIST ;; esac
cd "$root"

PLATFORMS=${PLATFORMS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64}
IMAGE=${IMAGE:-auto}
SBOM=${SBOM:-yes}
go=${GO:-go}
source hack/stamp.sh
RELEASE_URL=${RELEASE_URL:-https://github.com/runbookdev/runbook/releases/download/$VERSION}

die() { echo "release: $*" >&2; exit 1; }
log() { echo "release: [${SECONDS}s] $*" >&2; }

# The archives' reproducibility rests on GNU tar's --sort and --mtime; BSD tar (macOS)
# has neither.
tar --version 2>/dev/null | grep -q 'GNU tar' || die "needs GNU tar (apt-get install tar; on macOS brew install gnu-tar and put it first on PATH)"
command -v gzip >/dev/null || die "needs gzip"
command -v sha256sum >/dev/null || die "needs sha256sum (coreutils)"
case " $PLATFORMS " in
  *" windows/"*) command -v zip >/dev/null || die "needs zip for the windows archive (apt-get install zip, or bash hack/ci-deps.sh)" ;;
esac
case $IMAGE in
  yes) command -v buildah >/dev/null || die "IMAGE=yes but buildah is not installed (apt-get install buildah)" ;;
  auto) if command -v buildah >/dev/null; then IMAGE=yes; else IMAGE=no; log "buildah is not installed: SKIPPING the container image (IMAGE=yes makes this an error)"; fi ;;
  no) log "IMAGE=no: skipping the container image" ;;
  *) die "IMAGE=$IMAGE: want auto, yes or no" ;;
esac
case $SBOM in yes | no) ;; *) die "SBOM=$SBOM: want yes or no" ;; esac
# DIST is emptied: only if it holds nothing but what a release (or an interrupted one)
# writes, so that a mistyped argument cannot remove a directory of something else.
if [ -e "$DIST" ] && [ ! -d "$DIST" ]; then die "$DIST is not a directory"; fi
if [ -e "$DIST" ] && find "$DIST" -mindepth 1 -maxdepth 1 ! -name 'runbook*' ! -name checksums.txt | grep -q .; then
  die "$DIST holds files that a release does not write: not emptying it"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$DIST"
mkdir -p "$DIST"
DIST=$(cd "$DIST" && pwd)
log "version $VERSION, commit ${COMMIT:-none}, build time $BUILD_TIME (SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH)"

# Every file that goes into an archive gets the same mtime, owner and mode, whatever
# this checkout's umask and clock were.
normalize() {
  chmod "$1" "$2"
  touch -h -d "@$SOURCE_DATE_EPOCH" "$2"
}

if [ "$SBOM" = yes ]; then
  # `go tool` builds the pinned tool once and caches it.
  sbomtool=("$go" -C hack/tools-release tool cyclonedx-gomod)
  "${sbomtool[@]}" version >/dev/null || die "cannot build cyclonedx-gomod from hack/tools-release"
fi

archives=()
for platform in $PLATFORMS; do
  os=${platform%/*} arch=${platform#*/}
  if [ -z "$os" ] || [ -z "$arch" ] || [ "$os/$arch" != "$platform" ]; then die "platform $platform: want os/arch"; fi
  base=runbook_${VERSION}_${os}_${arch}
  exe=kubectl-runbook
  [ "$os" = windows ] && exe+=.exe
  stage=$work/$base
  mkdir -p "$stage"
  log "building $platform"
  # -trimpath and -buildvcs=false: no path of this machine and no VCS stamp in the
  # binary (the commit is in LDFLAGS); CGO_ENABLED=0: static, nothing of the build
  # machine's C libraries.
  CGO_ENABLED=0 GOOS=$os GOARCH=$arch GOFLAGS=-buildvcs=false \
    "$go" build -trimpath -ldflags "$LDFLAGS" -o "$stage/$exe" ./cmd/runbook
  normalize 0755 "$stage/$exe"
  files=("$exe")
  if [ -f LICENSE ]; then
    cp LICENSE "$stage/LICENSE"
    normalize 0644 "$stage/LICENSE"
    files+=(LICENSE)
  fi
  # Sorted names, as sort(1) orders them in the C locale, for zip's argument order.
  mapfile -t files < <(printf '%s\n' "${files[@]}" | LC_ALL=C sort)

  if [ "$os" = windows ]; then
    archive=$base.zip
    # -X: no uid/gid or extended-timestamp fields; -D: no directory entries. zip
    # writes the DOS time in local time: TZ=UTC makes it the same everywhere.
    (cd "$stage" && TZ=UTC zip -q -X -D -9 "$DIST/$archive" "${files[@]}")
  else
    archive=$base.tar.gz
    # ustar: no pax headers (which would carry atime/ctime); gzip -n: no name or
    # time in the gzip header.
    tar --format=ustar --sort=name --owner=0 --group=0 --numeric-owner \
      --mtime="@$SOURCE_DATE_EPOCH" -C "$stage" -cf - "${files[@]}" | gzip -n -9 >"$DIST/$archive"
  fi
  archives+=("$os $arch $archive $exe")

  if [ "$SBOM" = yes ]; then
    # Of the binary itself (`bin`: the modules its build info lists, which differ by
    # platform), not of the source tree (`app` wants a git repository that go-git can
    # read, which a git worktree is not, and its own idea of the version).
    # -notimestamp, and a serial derived from the archive's name instead of a random
    # one: either would make every run differ. GOPROXY=off: the license detection
    # reads the modules the build just used from the module cache; it would ask the
    # proxy for runbook itself at an unpublished version (and warns that it cannot).
    serial=$(printf '%s' "$base" | sha256sum | cut -c1-32)
    serial="urn:uuid:${serial:0:8}-${serial:8:4}-5${serial:13:3}-a${serial:17:3}-${serial:20:12}"
    GOPROXY=off GOFLAGS=-mod=mod "${sbomtool[@]}" bin -json -licenses -notimestamp \
      -serial "$serial" -version "$VERSION" -output "$DIST/$base.cdx.json" "$stage/$exe" 2>"$work/sbom.log" ||
      { cat "$work/sbom.log" >&2; die "cyclonedx-gomod failed for $platform"; }
  fi
done

if [ "$IMAGE" = yes ]; then
  # The image's binary is built by hack/image/build.sh with the same LDFLAGS (hack/stamp.sh);
  # its OCI layout is tarred like the archives, so the archive is reproducible too.
  arch=$("$go" env GOARCH)
  log "building the container image (linux/$arch)"
  bash hack/image/build.sh "oci:$work/image:$VERSION"
  find "$work/image" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  tar --format=ustar --sort=name --owner=0 --group=0 --numeric-owner --mode=u+rw,go+r,go-w \
    --mtime="@$SOURCE_DATE_EPOCH" -C "$work/image" -cf "$DIST/runbook_${VERSION}_linux_${arch}.oci.tar" .
fi

# The krew manifest: the template's platform block once per archive.
manifest=deploy/krew/runbook.yaml
if ! grep -q '^  # platform: begin$' "$manifest" || ! grep -q '^  # platform: end$' "$manifest"; then
  die "$manifest: the platform markers are missing"
fi
{
  echo "# Generated by hack/release.sh from $manifest for $VERSION."
  awk '/^  # platform: begin$/ {exit} !/^ *#/' "$manifest"
  block=$(awk '/^  # platform: end$/ {p=0} p && !/^ *#/ {print} /^  # platform: begin$/ {p=1}' "$manifest")
  for a in "${archives[@]}"; do
    read -r os arch archive exe <<<"$a"
    sum=$(sha256sum "$DIST/$archive" | cut -d' ' -f1)
    b=${block//\{\{OS\}\}/$os}
    b=${b//\{\{ARCH\}\}/$arch}
    b=${b//\{\{URI\}\}/$RELEASE_URL/$archive}
    b=${b//\{\{SHA256\}\}/$sum}
    b=${b//\{\{BIN\}\}/$exe}
    printf '%s\n' "$b"
  done
  awk 'e && !/^ *#/ {print} /^  # platform: end$/ {e=1}' "$manifest"
} | sed "s/{{VERSION}}/$VERSION/g" >"$DIST/runbook.yaml"
if grep -n '{{' "$DIST/runbook.yaml" >&2; then die "runbook.yaml: placeholders left unfilled (above)"; fi

# Written aside and moved in, so that it never lists itself.
(cd "$DIST" && find . -maxdepth 1 -type f -printf '%P\n' | LC_ALL=C sort | xargs sha256sum) >"$work/checksums.txt"
mv "$work/checksums.txt" "$DIST/checksums.txt"

log "wrote $DIST:"
find "$DIST" -maxdepth 1 -type f -printf '  %10s  %f\n' | LC_ALL=C sort -k2 >&2
exit 0
}
