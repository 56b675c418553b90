// Pins tigera-operator v1.40.0 for the sandbox's operator-v1.40 flavour, which
// installs the operator's own CRDs (Installation, APIServer, TigeraStatus) from
// this module's pkg/crds/operator. Nothing imports the module; test/sandbox
// finds it with `go mod download -json github.com/tigera/operator` run here,
// verified by go.sum. The first download of a new version needs
// GONOSUMDB=github.com/tigera/operator to write go.sum.
//
// The operator flavour (v1.34.13, the release the pinned Calico ships) needs no
// tools module: the pinned Calico module carries that release's CRDs in
// charts/tigera-operator/crds (and the module proxy does not serve
// github.com/tigera/operator v1.34.x).
module github.com/runbookdev/runbook/hack/tools-operator-v1.40

go 1.26.0

require github.com/tigera/operator v1.40.0
