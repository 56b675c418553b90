// Package release checks hack/release.sh (make release): two builds of the same
// commit, one of them from a copy of the tree at another path with another TMPDIR,
// give the same bytes in every file; checksums.txt, the SBOMs and the krew manifest
// describe the archives; the archives hold what krew installs; the binary reports the
// stamped version, commit and build time.
//
// The platforms built are RELEASE_PLATFORMS, default linux/amd64: a cold cross build
// of each further platform costs minutes on a 2-core machine. RELEASE_PLATFORMS=all
// builds the five of a release (the zip of windows/amd64 included).
package release

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// The stamp of both builds: fixed, so the test does not depend on this checkout's tags.
const (
	version = "v1.2.3-test.1"
	commit  = "0123456789abcdef0123456789abcdef01234567"
	epoch   = 1700000000 // SOURCE_DATE_EPOCH
	baseURL = "https://example.invalid/runbook/releases/" + version
)

var allPlatforms = []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64"}

func platforms() []string {
	switch p := os.Getenv("RELEASE_PLATFORMS"); p {
	case "":
		return []string{"linux/amd64"}
	case "all":
		return allPlatforms
	default:
		return strings.Fields(p)
	}
}

// requireCommand skips without a packaging tool, except in CI, which installs them
// (hack/ci-deps.sh) and must run this.
func requireCommand(t *testing.T, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed: CI runs hack/ci-deps.sh first", name)
	}
	t.Skipf("%s is not installed (apt-get install -y %s, or bash hack/ci-deps.sh)", name, pkg)
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// copyTree copies the files git would commit (tracked and untracked, not ignored) to
// dst: the same source at another path, which -trimpath must make irrelevant.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	out, err := exec.Command("git", "-C", src, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for name := range strings.SplitSeq(strings.TrimSuffix(string(out), "\x00"), "\x00") {
		from := filepath.Join(src, name)
		fi, err := os.Lstat(from)
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the work tree, not yet in the index
		}
		if err != nil {
			t.Fatal(err)
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		to := filepath.Join(dst, name)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}

// release runs hack/release.sh of the tree at root into a new directory and returns
// it, with the wall time taken.
func release(t *testing.T, root string, extraEnv ...string) (string, time.Duration) {
	t.Helper()
	dist := filepath.Join(t.TempDir(), "dist")
	tmp := t.TempDir()
	cmd := exec.Command("bash", filepath.Join(root, "hack/release.sh"), dist)
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"VERSION="+version, "COMMIT="+commit, fmt.Sprintf("SOURCE_DATE_EPOCH=%d", epoch),
		"RELEASE_URL="+baseURL, "PLATFORMS="+strings.Join(platforms(), " "), "TMPDIR="+tmp)
	cmd.Env = append(cmd.Env, extraEnv...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("hack/release.sh in %s: %v\n%s", root, err, out)
	}
	t.Logf("hack/release.sh in %s: %s\n%s", root, time.Since(start).Round(time.Second), out)
	return dist, time.Since(start)
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

type archive struct {
	os, arch, name, bin string
}

func archives() []archive {
	var as []archive
	for _, p := range platforms() {
		goos, arch, _ := strings.Cut(p, "/")
		a := archive{os: goos, arch: arch, name: fmt.Sprintf("runbook_%s_%s_%s.tar.gz", version, goos, arch), bin: "kubectl-runbook"}
		if goos == "windows" {
			a.name = strings.TrimSuffix(a.name, ".tar.gz") + ".zip"
			a.bin += ".exe"
		}
		as = append(as, a)
	}
	return as
}

func TestRelease(t *testing.T) {
	requireCommand(t, "gzip", "gzip")
	requireCommand(t, "tar", "tar")
	if slices.ContainsFunc(platforms(), func(p string) bool { return strings.HasPrefix(p, "windows/") }) {
		requireCommand(t, "zip", "zip")
	}
	root := repoRoot(t)
	// The container image is test/image's; building it twice more here would double
	// this test's time for a check that test/image makes.
	first, took := release(t, root, "IMAGE=no")
	copied := filepath.Join(t.TempDir(), "elsewhere", "runbook")
	copyTree(t, root, copied)
	second, tookAgain := release(t, copied, "IMAGE=no")
	t.Logf("release of %s: %s, then from a copy of the tree %s", strings.Join(platforms(), " "),
		took.Round(time.Second), tookAgain.Round(time.Second))

	t.Run("reproducible", func(t *testing.T) {
		a, b := listDir(t, first), listDir(t, second)
		if !slices.Equal(a, b) {
			t.Fatalf("the two builds wrote different files:\n%v\n%v", a, b)
		}
		for _, name := range a {
			if x, y := sha256File(t, filepath.Join(first, name)), sha256File(t, filepath.Join(second, name)); x != y {
				t.Errorf("%s differs between the two builds: sha256 %s and %s", name, x, y)
			}
		}
	})

	t.Run("files", func(t *testing.T) {
		want := []string{"checksums.txt", "runbook.yaml"}
		for _, a := range archives() {
			want = append(want, a.name, fmt.Sprintf("runbook_%s_%s_%s.cdx.json", version, a.os, a.arch))
		}
		slices.Sort(want)
		if got := listDir(t, first); !slices.Equal(got, want) {
			t.Errorf("dist holds %v, want %v", got, want)
		}
		for _, name := range listDir(t, first) {
			fi, _ := os.Stat(filepath.Join(first, name))
			t.Logf("%10d  %s", fi.Size(), name)
		}
	})

	t.Run("checksums", func(t *testing.T) { checkChecksums(t, first) })
	t.Run("archives", func(t *testing.T) {
		for _, a := range archives() {
			checkArchive(t, first, a)
		}
	})
	t.Run("krew manifest", func(t *testing.T) { checkManifest(t, first) })
	t.Run("sbom", func(t *testing.T) {
		for _, a := range archives() {
			checkSBOM(t, filepath.Join(first, fmt.Sprintf("runbook_%s_%s_%s.cdx.json", version, a.os, a.arch)), a)
		}
	})
	t.Run("version", func(t *testing.T) { checkVersion(t, first) })
}

// checksums.txt is sha256sum's format ("<hex>  <name>"), sorted, one line for each
// other file, each right.
func checkChecksums(t *testing.T, dist string) {
	f, err := os.Open(filepath.Join(dist, "checksums.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line := regexp.MustCompile(`^([0-9a-f]{64})  ([^/ ]+)$`)
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Errorf("checksums.txt: not sha256sum's format: %q", sc.Text())
			continue
		}
		names = append(names, m[2])
		if got := sha256File(t, filepath.Join(dist, m[2])); got != m[1] {
			t.Errorf("checksums.txt says %s for %s, the file's sha256 is %s", m[1], m[2], got)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	want := slices.DeleteFunc(listDir(t, dist), func(n string) bool { return n == "checksums.txt" })
	if !slices.Equal(names, want) {
		t.Errorf("checksums.txt lists %v, want every other file, sorted: %v", names, want)
	}
}

// entry is a file in an archive, as the checks see it from tar or zip.
type entry struct {
	name  string
	mode  os.FileMode
	mtime time.Time
	data  []byte
}

// readArchive reads a release archive. With check, it checks on the way what makes
// it reproducible: a gzip header without name or time; tar entries owned by 0:0
// with no user or group names; zip entries without extra fields (uid/gid, times).
func readArchive(t *testing.T, path string, check bool) []entry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var entries []entry
	if strings.HasSuffix(path, ".zip") {
		fi, _ := f.Stat()
		zr, err := zip.NewReader(f, fi.Size())
		if err != nil {
			t.Fatal(err)
		}
		for _, zf := range zr.File {
			if check && len(zf.Extra) > 0 {
				t.Errorf("%s: %s has extra fields %x (zip -X drops them)", path, zf.Name, zf.Extra)
			}
			rc, err := zf.Open()
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			// The DOS time has no zone: written in UTC (TZ=UTC zip), read as UTC.
			entries = append(entries, entry{zf.Name, zf.Mode(), zf.Modified, data})
		}
		return entries
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if check && (zr.Name != "" || !zr.ModTime.IsZero()) {
		t.Errorf("%s: gzip header has name %q, time %s (want none: gzip -n)", path, zr.Name, zr.ModTime)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if check && (h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "") {
			t.Errorf("%s: %s owned by %d:%d (%q:%q), want 0:0 and no names", path, h.Name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		if check && h.Typeflag != tar.TypeReg {
			t.Errorf("%s: %s is not a regular file (type %c)", path, h.Name, h.Typeflag)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, entry{h.Name, h.FileInfo().Mode(), h.ModTime, data})
	}
	return entries
}

// checkArchive: the binary krew links (bin), executable, LICENSE when the repository
// has one, sorted, every time SOURCE_DATE_EPOCH, and a binary for the archive's platform.
func checkArchive(t *testing.T, dist string, a archive) {
	t.Helper()
	path := filepath.Join(dist, a.name)
	entries := readArchive(t, path, true)
	want := []string{a.bin}
	if _, err := os.Stat(filepath.Join(repoRoot(t), "LICENSE")); err == nil {
		want = append(want, "LICENSE")
	}
	slices.Sort(want)
	var names []string
	for _, e := range entries {
		names = append(names, e.name)
		if !e.mtime.Equal(time.Unix(epoch, 0)) {
			t.Errorf("%s: %s has mtime %s, want SOURCE_DATE_EPOCH %s", a.name, e.name, e.mtime.UTC(), time.Unix(epoch, 0).UTC())
		}
		wantMode := os.FileMode(0o644)
		if e.name == a.bin {
			wantMode = 0o755
			checkBinary(t, a, e.data)
		}
		if e.mode.Perm() != wantMode {
			t.Errorf("%s: %s has mode %v, want %v", a.name, e.name, e.mode.Perm(), wantMode)
		}
	}
	if !slices.Equal(names, want) {
		t.Errorf("%s holds %v, want %v in this order", a.name, names, want)
	}
}

// checkBinary: the executable format of the archive's OS and architecture (a build
// that ignored GOOS/GOARCH would ship the host's binary under every name).
func checkBinary(t *testing.T, a archive, b []byte) {
	t.Helper()
	magic := map[string][]byte{"linux": []byte("\x7fELF"), "windows": []byte("MZ")}
	switch a.os {
	case "darwin":
		// Mach-O 64-bit, little-endian: cf fa ed fe; then the CPU type (x86_64 7, arm64 12).
		cpu := map[string]byte{"amd64": 7, "arm64": 12}[a.arch]
		if len(b) < 8 || !bytes.Equal(b[:4], []byte{0xcf, 0xfa, 0xed, 0xfe}) || b[4] != cpu {
			t.Errorf("%s: %s is not a Mach-O binary for %s", a.name, a.bin, a.arch)
		}
	default:
		if !bytes.HasPrefix(b, magic[a.os]) {
			t.Errorf("%s: %s does not start with %q", a.name, a.bin, magic[a.os])
		}
	}
	if a.os == "linux" {
		// ELF e_machine at offset 18: x86-64 62, AArch64 183.
		m := map[string]byte{"amd64": 62, "arm64": 183}[a.arch]
		if len(b) < 20 || b[18] != m {
			t.Errorf("%s: %s is an ELF binary for machine %d, want %d", a.name, a.bin, b[18], m)
		}
	}
}

// The krew manifest, as https://krew.sigs.k8s.io/docs/developer-guide/plugin-manifest/
// describes it and krew's validation checks it.
type krewManifest struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		Version          string `yaml:"version"`
		Homepage         string `yaml:"homepage"`
		ShortDescription string `yaml:"shortDescription"`
		Description      string `yaml:"description"`
		Platforms        []struct {
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
			URI    string `yaml:"uri"`
			SHA256 string `yaml:"sha256"`
			Bin    string `yaml:"bin"`
		} `yaml:"platforms"`
	} `yaml:"spec"`
}

// semverV is semver.org's grammar with krew's required "v" prefix.
var semverV = regexp.MustCompile(`^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`)

func checkManifest(t *testing.T, dist string) {
	b, err := os.ReadFile(filepath.Join(dist, "runbook.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var m krewManifest
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true) // a misspelt field is one krew would reject
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("runbook.yaml: %v\n%s", err, b)
	}
	s := m.Spec
	switch {
	case m.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || m.Kind != "Plugin":
		t.Errorf("apiVersion %q kind %q", m.APIVersion, m.Kind)
	case m.Metadata.Name != "runbook":
		t.Errorf("metadata.name %q: krew wants the manifest's file name, runbook.yaml, and runs it as kubectl runbook", m.Metadata.Name)
	case s.Version != version || !semverV.MatchString(s.Version):
		t.Errorf("spec.version %q, want %q (a v-prefixed semantic version)", s.Version, version)
	case !strings.HasPrefix(s.Homepage, "https://"):
		t.Errorf("spec.homepage %q", s.Homepage)
	case s.ShortDescription == "" || len(s.ShortDescription) > 60 || strings.Contains(s.ShortDescription, "\n"):
		t.Errorf("spec.shortDescription %q: want one short line", s.ShortDescription)
	case strings.TrimSpace(s.Description) == "":
		t.Error("spec.description is empty")
	case strings.Contains(string(b), "{{"):
		t.Errorf("placeholders left:\n%s", b)
	}
	as := archives()
	if len(s.Platforms) != len(as) {
		t.Fatalf("%d platforms, want one for each of the %d archives", len(s.Platforms), len(as))
	}
	for i, p := range s.Platforms {
		a := as[i]
		path := filepath.Join(dist, a.name)
		if l := p.Selector.MatchLabels; len(l) != 2 || l["os"] != a.os || l["arch"] != a.arch {
			t.Errorf("platform %d: matchLabels %v, want os %s arch %s", i, l, a.os, a.arch)
		}
		if want := baseURL + "/" + a.name; p.URI != want {
			t.Errorf("platform %s/%s: uri %q, want %q (ending in the archive's name)", a.os, a.arch, p.URI, want)
		}
		if got := sha256File(t, path); p.SHA256 != got {
			t.Errorf("platform %s/%s: sha256 %q, the archive's is %s", a.os, a.arch, p.SHA256, got)
		}
		var found bool
		for _, e := range readArchive(t, path, false) {
			found = found || (e.name == p.Bin && e.mode.Perm()&0o111 != 0)
		}
		if !found {
			t.Errorf("platform %s/%s: bin %q is not an executable file in %s", a.os, a.arch, p.Bin, a.name)
		}
		if a.os == "windows" && !strings.HasSuffix(p.Bin, ".exe") {
			t.Errorf("platform windows: bin %q lacks .exe", p.Bin)
		}
	}
}

// checkSBOM: CycloneDX JSON of the archive's binary, the stamped version and the
// platform in the main component, the modules listed, nothing that varies per run.
func checkSBOM(t *testing.T, path string, a archive) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var bom struct {
		BOMFormat    string `json:"bomFormat"`
		SpecVersion  string `json:"specVersion"`
		SerialNumber string `json:"serialNumber"`
		Metadata     struct {
			Timestamp string `json:"timestamp"`
			Component struct {
				Name, Version, Purl string
			} `json:"component"`
		} `json:"metadata"`
		Components []struct{ Name, Version string } `json:"components"`
	}
	if err := json.Unmarshal(b, &bom); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	c := bom.Metadata.Component
	switch {
	case bom.BOMFormat != "CycloneDX" || bom.SpecVersion == "":
		t.Errorf("%s: bomFormat %q specVersion %q", path, bom.BOMFormat, bom.SpecVersion)
	case c.Name != "github.com/runbookdev/runbook" || c.Version != version:
		t.Errorf("%s: main component %s@%s, want github.com/runbookdev/runbook@%s", path, c.Name, c.Version, version)
	case !strings.Contains(c.Purl, "goos="+a.os) || !strings.Contains(c.Purl, "goarch="+a.arch):
		t.Errorf("%s: purl %q does not name %s/%s", path, c.Purl, a.os, a.arch)
	case bom.Metadata.Timestamp != "":
		t.Errorf("%s: timestamp %q: a build's wall clock", path, bom.Metadata.Timestamp)
	case !regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-a[0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(bom.SerialNumber):
		t.Errorf("%s: serialNumber %q", path, bom.SerialNumber)
	}
	var names []string
	for _, m := range bom.Components {
		names = append(names, m.Name)
	}
	// Modules every platform links; a list without them is not this binary's.
	for _, want := range []string{"github.com/spf13/cobra", "k8s.io/client-go", "gopkg.in/yaml.v3"} {
		if !slices.Contains(names, want) {
			t.Errorf("%s: components %v lack %s", path, names, want)
		}
	}
	for _, leak := range []string{os.TempDir(), os.Getenv("HOME"), repoRoot(t)} {
		if leak != "" && leak != "/" && bytes.Contains(b, []byte(leak)) {
			t.Errorf("%s names the build machine's %s", path, leak)
		}
	}
}

// checkVersion runs the archive's binary for this machine, if one was built: the
// stamped version, commit and build time (SOURCE_DATE_EPOCH, not the clock).
func checkVersion(t *testing.T, dist string) {
	var a *archive
	for _, x := range archives() {
		if x.os == runtime.GOOS && x.arch == runtime.GOARCH {
			a = &x
		}
	}
	if a == nil {
		t.Skipf("no archive for this machine's %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	var bin []byte
	for _, e := range readArchive(t, filepath.Join(dist, a.name), false) {
		if e.name == a.bin {
			bin = e.data
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, a.bin)
	if err := os.WriteFile(path, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	built := time.Unix(epoch, 0).UTC().Format(time.RFC3339)
	out, err := exec.Command(path, "version", "-o", "json").Output()
	if err != nil {
		t.Fatalf("%s version -o json: %v", a.bin, err)
	}
	var v struct{ Version, Commit, BuildTime, GoVersion, Platform string }
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("%s version -o json: %v\n%s", a.bin, err, out)
	}
	want := struct{ Version, Commit, BuildTime, GoVersion, Platform string }{version, commit, built, runtime.Version(), a.os + "/" + a.arch}
	if v != want {
		t.Errorf("%s version -o json:\n got %+v\nwant %+v", a.bin, v, want)
	}
	// Plain text, as run by its krew name: the same stamp, in one line.
	out, err = exec.Command(path, "version").Output()
	wantText := fmt.Sprintf("runbook %s (commit %s, built %s, %s, %s)\n", version, commit, built, runtime.Version(), want.Platform)
	if err != nil || string(out) != wantText {
		t.Errorf("%s version: %v\n got %q\nwant %q", a.bin, err, out, wantText)
	}
}

// TestStampDefaults: without VERSION and SOURCE_DATE_EPOCH in the environment,
// hack/stamp.sh takes the commit's time and a v-prefixed semantic version (krew
// refuses anything else), so a plain `make release` gives a manifest krew accepts.
func TestStampDefaults(t *testing.T) {
	root := repoRoot(t)
	if err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Run(); err != nil {
		t.Skip("not a git checkout")
	}
	cmd := exec.Command("bash", "-c", `set -euo pipefail; unset VERSION SOURCE_DATE_EPOCH COMMIT; source hack/stamp.sh; echo "$VERSION $SOURCE_DATE_EPOCH $COMMIT $BUILD_TIME"`)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("source hack/stamp.sh: %v", err)
	}
	f := strings.Fields(string(out))
	ct, err := exec.Command("git", "-C", root, "log", "-1", "--format=%ct %H").Output()
	if err != nil || len(f) != 4 {
		t.Fatalf("hack/stamp.sh printed %q (git log: %v)", out, err)
	}
	want := strings.Fields(string(ct))
	if !semverV.MatchString(f[0]) {
		t.Errorf("VERSION %q is not a v-prefixed semantic version", f[0])
	}
	if f[1] != want[0] || f[2] != want[1] {
		t.Errorf("SOURCE_DATE_EPOCH %s COMMIT %s, want the last commit's time and hash: %s", f[1], f[2], ct)
	}
	var sec int64
	fmt.Sscan(f[1], &sec)
	if f[3] != time.Unix(sec, 0).UTC().Format(time.RFC3339) {
		t.Errorf("BUILD_TIME %s is not SOURCE_DATE_EPOCH %s in RFC 3339 UTC", f[3], f[1])
	}
}
