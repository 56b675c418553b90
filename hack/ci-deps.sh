#!/usr/bin/env bash
# Debian packages some tests need beyond Go (CI runs as root on a fresh Debian
# machine; on a developer machine the tests that need them skip when they are
# missing, and this script installs them):
#   buildah          test/image builds the container image (hack/image/build.sh)
#   bash-completion  cmd/runbook completes in a real bash with the generated script
#   util-linux       unshare(1) for test/deploy's in-cluster run, script(1) for the TTY test
#   chromium         headless, for the Mermaid CLI that renders the reports' charts (hack/mermaid-cli.sh)
#   zip              test/release packs the windows archive (hack/release.sh)
set -euo pipefail
need=()
command -v buildah >/dev/null || need+=(buildah)
[ -f /usr/share/bash-completion/bash_completion ] || need+=(bash-completion)
command -v unshare >/dev/null && command -v script >/dev/null || need+=(util-linux bsdutils)
command -v chromium >/dev/null || need+=(chromium)
command -v zip >/dev/null || need+=(zip)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "ci-deps: missing ${need[*]}; install them as root (apt-get install -y ${need[*]})" >&2
  exit 1
fi
echo "ci-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${need[@]}" >/dev/null
