// Pins tigera-operator for the sandbox's operator flavour, which installs the
// operator's own CRDs (Installation, APIServer, TigeraStatus) from this module's
// pkg/crds/operator. Nothing imports the module; test/sandbox finds it with
// `go mod download -json github.com/tigera/operator` run here, verified by go.sum.
// The first download of a new version needs GONOSUMDB=github.com/tigera/operator
// to write go.sum.
module github.com/runbookdev/runbook/hack/tools-operator

go 1.26.0

require github.com/tigera/operator v1.40.0
