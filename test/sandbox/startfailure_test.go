package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLastLines(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"", 3, ""},
		{"a\n", 3, "a"},
		{"a\nb\nc\nd\n", 2, "c\nd"},
		{"a\nb\nc\nd", 2, "c\nd"},
		{"a\nb", 5, "a\nb"},
	} {
		if got := lastLines([]byte(tc.in), tc.n); got != tc.want {
			t.Errorf("lastLines(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

// A failed start keeps its logs and prints what explains it.
func TestStartFailedKeepsLogs(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(logDir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(logDir(dir), Kwok+".log"), []byte("line 1\nSkip pod reason=read only\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &Cluster{workDir: dir, ownWorkDir: true}
	err := c.startFailed(os.ErrDeadlineExceeded)
	if c.ownWorkDir {
		t.Error("the work directory would be removed on Stop")
	}
	msg := err.Error()
	for _, want := range []string{"logs kept in " + logDir(dir), "Skip pod reason=read only", Scheduler + ".log"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
}
