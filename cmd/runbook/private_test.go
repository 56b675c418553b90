package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestReportsArePrivate: --report files hold the params and what the run saw, like
// the journal: written 0600, also over a file that was 0644 (issue #15).
func TestReportsArePrivate(t *testing.T) {
	dir := t.TempDir()
	md, js := filepath.Join(dir, "report.md"), filepath.Join(dir, "report.json")
	if err := os.WriteFile(js, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	s := &session{g: &globalOptions{output: "text", out: &out, errOut: &errOut}, f: &runFlags{reports: []string{md, js}}}
	s.finish(sampleReport())
	if errOut.Len() > 0 {
		t.Fatalf("stderr: %s", errOut.String())
	}
	for _, p := range []string{md, js} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", p, fi.Mode(), err)
		}
	}
}
