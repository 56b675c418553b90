package e2e

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// The live output of a run is read by people in a change window: each line must
// say what happened in their terms. requireLiveOutput keeps the vocabulary of a
// run's plain (non-terminal) output in a golden file: every line, with what
// differs from run to run (times, durations, addresses, pod name hashes, run ids,
// digests, counts of progress) replaced, sorted and without duplicates (pods
// move concurrently, so their order is not fixed). Progress lines other than
// the final one are left out: how many there are depends on timing.
// `go test ./test/e2e -run TestFlavourCRD -update` rewrites it.
func requireLiveOutput(t *testing.T, golden, output string) {
	t.Helper()
	requireGolden(t, "live output", golden, liveVocabulary(output))
}

// mask replaces what differs from run to run with a placeholder.
type mask struct {
	re   *regexp.Regexp
	with string
}

var (
	timeMask   = mask{regexp.MustCompile(`\b\d{2}:\d{2}:\d{2}\b`), "HH:MM:SS"}
	runIDMask  = mask{regexp.MustCompile(`\b\d{8}-\d{6}-[0-9a-f]{6}\b`), "RUN-ID"}
	digestMask = mask{regexp.MustCompile(`sha256:[0-9a-f]{12,64}`), "sha256:…"}
	commitMask = mask{regexp.MustCompile(`@[0-9a-f]{12}( \(uncommitted changes\))?`), "@COMMIT"}
	// Deployment pods: <name>-<replicaset hash>-<5 characters>.
	hashMask = mask{regexp.MustCompile(`-[bcdfghjklmnpqrstvwxz2-9]{8,10}-[bcdfghjklmnpqrstvwxz2-9]{5}\b`), "-HASH"}
)

// liveMasks apply in order (the duration masks after the addresses, the node mask
// after both).
var liveMasks = []mask{
	timeMask, runIDMask, digestMask, commitMask,
	{regexp.MustCompile(`\b\d{1,3}(\.\d{1,3}){3}\b`), "IP"},
	hashMask,
	{regexp.MustCompile(`\b\d+(\.\d+)?(ns|µs|ms|s|m)\b`), "DUR"},
	{regexp.MustCompile(`\b(\d+m)?DUR\b`), "DUR"},
	// The node a pod was scheduled to: the scheduler's choice, not the run's.
	{regexp.MustCompile(`, [a-z0-9-]+, IP\)`), ", NODE, IP)"},
	// Table columns are as wide as their widest cell.
	{regexp.MustCompile(` {2,}`), "  "},
}

// planMasks: a plan keeps its pool CIDRs (planAddr masks only the addresses).
var planMasks = []mask{timeMask, runIDMask, digestMask, commitMask, hashMask}

func liveVocabulary(output string) string {
	var lines []string
	for _, l := range strings.Split(output, "\n") {
		l = strings.TrimRight(l, " ")
		if l == "" || (strings.Contains(l, " pods replaced, ") && !strings.Contains(l, "done: ")) {
			continue
		}
		// How many tunnel addresses move-tunnels still finds depends on how fast
		// calico-node moved them itself after the disable (none to all nodes, seen
		// in CI): its outcome line and table row are not part of the vocabulary.
		if strings.Contains(l, "move-tunnels") && !strings.Contains(l, "▶ move-tunnels") {
			continue
		}
		for _, m := range liveMasks {
			l = m.re.ReplaceAllString(l, m.with)
		}
		lines = append(lines, l)
	}
	slices.Sort(lines)
	return strings.Join(slices.Compact(lines), "\n") + "\n"
}

// requirePlanOutput keeps a plan's text in a golden file, line for line: a
// reviewer reads it in a change ticket, so its wording and size are part of the
// product. What differs between runs is masked: times, digests, the commit, node
// tunnel and pod addresses (pool CIDRs stay), pod name hashes.
func requirePlanOutput(t *testing.T, golden, output string) {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(output, "\n"), "\n") {
		l = strings.TrimRight(l, " ")
		l = planAddr.ReplaceAllStringFunc(l, func(a string) string {
			if strings.Contains(a, "/") {
				return a
			}
			return "IP"
		})
		for _, m := range planMasks {
			l = m.re.ReplaceAllString(l, m.with)
		}
		lines = append(lines, l)
	}
	requireGolden(t, "plan", golden, strings.Join(lines, "\n")+"\n")
}

var planAddr = regexp.MustCompile(`\b\d{1,3}(\.\d{1,3}){3}(/\d{1,2})?\b`)

// requireGolden compares got with testdata/<golden>, or rewrites it with -update.
func requireGolden(t *testing.T, what, golden, got string) {
	t.Helper()
	path := filepath.Join("testdata", golden)
	if *updateGolden {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (-update rewrites it after a deliberate change):\n%s", what, path, lineDiff(string(want), got))
	}
}

// lineDiff lists the lines only one side has.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for _, l := range w {
		if !slices.Contains(g, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range g {
		if !slices.Contains(w, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}
