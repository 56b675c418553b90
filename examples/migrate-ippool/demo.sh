#!/usr/bin/env bash
# make demo: the example migration on the bundled local test cluster (a fresh one).
#
#   1. validate the runbook with the sandbox values
#   2. show the starting point: pods on the old pool 192.168.0.0/16
#   3. plan (exit 4: changes pending)
#   4. apply: add new-pool, disable the old pool, move every pod (PDB-aware
#      evictions), prove new pods land in new-pool, delete the old pool
#   5. show the end state: every pod in 10.0.0.0/16, the old pool gone
#   6. apply again: a new run in which every step is unchanged
set -euo pipefail
cd "$(dirname "$0")/../.."
RB=examples/migrate-ippool/runbook.yaml
VALUES=examples/migrate-ippool/values/sandbox.yaml
KUBECONFIG_PATH=.sandbox/kubeconfig
TOOLS=$(bash hack/build-tools.sh --print-dir --flavour "${FLAVOUR:-crd}" --scenario "${SCENARIO:-default}")
kubectl() { "$TOOLS/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
runbook() { bin/runbook "$@" --kubeconfig "$KUBECONFIG_PATH"; }
show() {
  kubectl get ippools.crd.projectcalico.org -o custom-columns=POOL:.metadata.name,CIDR:.spec.cidr,DISABLED:.spec.disabled
  kubectl get pods -A -o custom-columns=NAMESPACE:.metadata.namespace,POD:.metadata.name,IP:.status.podIP,NODE:.spec.nodeName \
    --field-selector=status.phase=Running | grep -v ' 172\.' # hide hostNetwork pods
}

echo "== 1. validate"
bin/runbook validate "$RB" -f "$VALUES"

echo; echo "== 2. the starting point"
show

echo; echo "== 3. plan"
set +e
runbook plan "$RB" -f "$VALUES"
rc=$?
set -e
[ "$rc" -eq 4 ] || { echo "plan: expected exit 4 (changes pending), got $rc"; exit 1; }

echo; echo "== 4. apply"
runbook apply "$RB" -f "$VALUES" --yes --report .sandbox/demo-report.md --report .sandbox/demo-report.json

echo; echo "== 5. the end state"
show
if kubectl get pods -A -o jsonpath='{range .items[*]}{.status.podIP}{"\n"}{end}' | grep -q '^192\.168\.'; then
  echo "some pod still has an address in the old pool"; exit 1
fi

echo; echo "== 6. apply again: nothing changes"
runbook apply "$RB" -f "$VALUES" --yes | tail -8
echo
echo "Reports: .sandbox/demo-report.md, .sandbox/demo-report.json; history: bin/runbook history --kubeconfig $KUBECONFIG_PATH"
echo "The sandbox stays up: make sandbox-down stops it."
