package reliability

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// The campaign drives the real command (testbin.Runbook builds it once), its
// flags, signals and exit codes, as a pipeline would. Every test starts clusters
// of its own (sandbox.StartForTest), one at a time: a shared package cluster
// would sit beside them and double the memory.

// longRun reports whether the full campaign was asked for (RELIABILITY=long):
// more trials, each boundary crash in a migration of its own, lease expiry waited
// out instead of `runbook unlock`.
func longRun() bool { return os.Getenv("RELIABILITY") == "long" }

// seed returns the campaign's random seed: RELIABILITY_SEED when set (to replay a
// failure), else one from the clock. It is always logged.
func seed(t *testing.T) uint64 {
	t.Helper()
	if s := os.Getenv("RELIABILITY_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("RELIABILITY_SEED=%q: %v", s, err)
		}
		t.Logf("seed %d (from RELIABILITY_SEED)", n)
		return n
	}
	n := uint64(time.Now().UnixNano())
	t.Logf("seed %d (replay with RELIABILITY_SEED=%d)", n, n)
	return n
}

func newRand(s uint64) *rand.Rand { return rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15)) }

// Paths of the example migration, relative to this package's directory.
var (
	exampleRunbook = filepath.Join("..", "..", "examples", "migrate-ippool", "runbook.yaml")
	exampleValues  = filepath.Join("..", "..", "examples", "migrate-ippool", "values", "sandbox.yaml")
)

// journalNS is the namespace of the journal and lock (the CLI's default).
const journalNS = "runbook-system"
