package runbooks

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runbookdev/runbook/actions"
)

// TestBrokenCorpus parses every file under testdata/broken and compares the errors
// with the file's "# want: line:col: path: message" comments, exactly and in order.
func TestBrokenCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/broken/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 25 {
		t.Fatalf("corpus has %d files, want at least 25", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			want := wantLines(src)
			if len(want) == 0 {
				t.Fatal("no # want: lines")
			}
			_, perr := Parse(f, src, actions.Default)
			var errs Errors
			if !errors.As(perr, &errs) {
				t.Fatalf("want errors, got %v", perr)
			}
			var got []string
			for _, e := range errs {
				if e.Pos.File != f {
					t.Errorf("error names file %q, want %q", e.Pos.File, f)
				}
				got = append(got, strings.TrimPrefix(e.Error(), f+":"))
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("errors differ\n got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		})
	}
}

func wantLines(src []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(src))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "# want: "); ok {
			out = append(out, rest)
		}
	}
	return out
}
