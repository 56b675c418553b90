#!/usr/bin/env bash
# Runs the reliability and fault campaigns (test/reliability, test/faults) and
# prints their summary: each test's verdict and the campaign's numbers (crashes
# injected and survived, restarts survived, fault scenarios passed, lock and
# fencing results). The whole verbose output is kept in a file, and printed when
# a test fails. Called by `make test`; arguments go to `go test`.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp -t runbook-campaign-XXXXXX.log)
status=0
RUNBOOK_FAULTS=1 go test -count=1 -p 1 -timeout 40m -v "$@" ./test/reliability ./test/faults >"$log" 2>&1 || status=$?
grep -E '^(--- |ok |FAIL|PASS$)|crashes injected|FAULTS:|two applies at once|SIGKILL of|SIGSTOP of' "$log" | grep -v '^    ---' || true
if [ "$status" -ne 0 ]; then
	echo "campaign failed (exit $status); full output:"
	cat "$log"
fi
echo "campaign output: $log"
exit "$status"
