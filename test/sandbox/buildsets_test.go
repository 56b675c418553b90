package sandbox

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/runbookdev/runbook/test/scenarios"
)

// The binary sets hack/build-tools.sh builds per flavour, what the sandbox starts
// (toolsFor) and the README's tables of them ("Two commands") say the same: a
// flavour whose binary is not built fails at start-up, a set built for nobody
// costs a newcomer minutes, and a README that names the wrong sets misleads them.
// No cluster needed.
func TestBuildSetsMatchFlavours(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	commands := readmeTable(t, string(readme), "| Command ")
	setsTable := readmeTable(t, string(readme), "| Set ")

	// What each set builds: README's set table against the script.
	binaries := map[string][]string{} // set -> binaries, from the script
	var allBinaries []string
	for _, line := range buildTools(t, "--list-binaries", "--all") {
		set, bin, _ := strings.Cut(line, " ")
		binaries[set] = append(binaries[set], bin)
		allBinaries = append(allBinaries, bin)
	}
	allSets := buildTools(t, "--list-sets", "--all")
	var readmeSets []string
	for _, row := range setsTable {
		set := strings.Trim(row[0], "` ")
		readmeSets = append(readmeSets, set)
		var want []string
		if !strings.HasPrefix(row[1], "no binary") {
			for _, b := range strings.Split(row[1], ",") {
				want = append(want, strings.Trim(b, "` "))
			}
		}
		if got := binaries[set]; !slices.Equal(got, want) {
			t.Errorf("README: set %s builds %q; hack/build-tools.sh --list-binaries: %q", set, want, got)
		}
	}
	if !slices.Equal(readmeSets, allSets) {
		t.Errorf("README's set table lists %q; hack/build-tools.sh --list-sets --all: %q", readmeSets, allSets)
	}

	// Which command builds which sets: README's command table against the script,
	// and the script's binaries against what the sandbox of each flavour starts.
	flavourRE := regexp.MustCompile("FLAVOUR=([a-z0-9.-]+)")
	covered := map[string]bool{}
	sawTest := false
	for _, row := range commands {
		var readmeRow []string
		for _, s := range strings.Split(row[1], ",") {
			readmeRow = append(readmeRow, strings.Trim(s, "` "))
		}
		flavours := flavourRE.FindAllStringSubmatch(row[0], -1)
		if len(flavours) == 0 {
			if !strings.Contains(row[0], "make test") {
				t.Errorf("README command table: row %q names no FLAVOUR= and is not make test's", row[0])
				continue
			}
			sawTest = true
			if got := buildTools(t, "--list-sets", "--all"); !slices.Equal(readmeRow, got) {
				t.Errorf("README: %s builds %q; hack/build-tools.sh --list-sets --all: %q", row[0], readmeRow, got)
			}
			continue
		}
		for _, m := range flavours {
			f := m[1]
			if covered[f] {
				t.Errorf("README command table: FLAVOUR=%s in two rows", f)
			}
			covered[f] = true
			if err := CheckFlavour(f); err != nil {
				t.Errorf("README command table: %v", err)
				continue
			}
			if got := buildTools(t, "--list-sets", "--flavour", f); !slices.Equal(readmeRow, got) {
				t.Errorf("README: FLAVOUR=%s builds %q; hack/build-tools.sh --list-sets --flavour %s: %q", f, readmeRow, f, got)
			}
		}
	}
	if !sawTest {
		t.Error("README command table: no row for make test")
	}
	for _, f := range Flavours() {
		if !covered[f] {
			t.Errorf("README command table: no row names FLAVOUR=%s", f)
		}
		var built []string
		for _, line := range buildTools(t, "--list-binaries", "--flavour", f) {
			if _, bin, _ := strings.Cut(line, " "); bin != "kubectl" { // for hack/sandbox.sh and tests
				built = append(built, bin)
			}
		}
		slices.Sort(built)
		starts := slices.Sorted(slices.Values(toolsFor(f)))
		if !slices.Equal(built, starts) {
			t.Errorf("flavour %s starts %q (toolsFor), hack/build-tools.sh --flavour %s builds %q (kubectl aside)", f, starts, f, built)
		}
		for _, b := range starts {
			if !slices.Contains(allBinaries, b) {
				t.Errorf("flavour %s starts %s, which no set of hack/build-tools.sh --all builds", f, b)
			}
		}
		// Every scenario starts the same binaries: the flavour decides.
		for _, s := range scenarios.Names() {
			if got, want := buildTools(t, "--list-sets", "--flavour", f, "--scenario", s), buildTools(t, "--list-sets", "--flavour", f); !slices.Equal(got, want) {
				t.Errorf("flavour %s scenario %s: sets %q, without the scenario %q", f, s, got, want)
			}
		}
	}
}

// TestMissingToolsNamesBinaryAndCommand: a tools directory built for another
// flavour fails Start with the missing binary and the command that builds it.
func TestMissingToolsNamesBinaryAndCommand(t *testing.T) {
	dir := t.TempDir()
	for _, b := range toolsFor(FlavourCRD) {
		if err := os.WriteFile(dir+"/"+b, nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := missingTools(dir, FlavourCRD); err != nil {
		t.Fatalf("crd's binaries present: %v", err)
	}
	_, err := Options{ToolsDir: dir, Flavour: FlavourAPIServer}.withDefaults()
	if err == nil {
		t.Fatal("flavour apiserver without calico-apiserver: no error")
	}
	for _, want := range []string{"has no calico-apiserver,", "bash hack/build-tools.sh --flavour apiserver"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// buildTools runs hack/build-tools.sh (a listing mode: builds nothing) and returns
// its output lines, without FLAVOUR/SCENARIO from the environment.
func buildTools(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command("bash", append([]string{"../../hack/build-tools.sh"}, args...)...)
	cmd.Env = append(os.Environ(), "FLAVOUR=", "SCENARIO=")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hack/build-tools.sh %s: %v", strings.Join(args, " "), err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// readmeTable returns the first two cells of each row of the README table whose
// header line starts with header.
func readmeTable(t *testing.T, readme, header string) [][2]string {
	t.Helper()
	var rows [][2]string
	in := false
	for _, line := range strings.Split(readme, "\n") {
		switch {
		case strings.HasPrefix(line, header):
			in = true
		case in && strings.HasPrefix(line, "|-"), in && strings.HasPrefix(line, "| -"):
		case in && strings.HasPrefix(line, "|"):
			cells := strings.Split(strings.Trim(line, "|"), "|")
			if len(cells) < 2 {
				t.Fatalf("README table %q: row %q has fewer than two cells", header, line)
			}
			rows = append(rows, [2]string{strings.TrimSpace(cells[0]), strings.TrimSpace(cells[1])})
		case in:
			return rows
		}
	}
	if len(rows) == 0 {
		t.Fatalf("README has no table with header %q", header)
	}
	return rows
}
