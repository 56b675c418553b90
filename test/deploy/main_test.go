package deploy

import (
	"testing"

	"github.com/runbookdev/runbook/test/sandbox"
)

// The migration these tests run changes the cluster: a cluster of this package's own.
func TestMain(m *testing.M) { sandbox.Main(m, sandbox.Options{}) }
