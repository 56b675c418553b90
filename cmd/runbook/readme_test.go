package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/runbookdev/runbook/internal/exitcode"
)

// TestREADMEExitCodes keeps the exit-code tables of the README and of the CI guide
// equal to the code's.
func TestREADMEExitCodes(t *testing.T) {
	for _, doc := range []string{"../../README.md", "../../docs/ci.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range exitcode.Table {
			line := fmt.Sprintf("| %d | %s | %s |", row.Code, row.Name, row.Meaning)
			if !strings.Contains(string(b), line) {
				t.Errorf("%s lacks the row:\n%s", doc, line)
			}
		}
	}
}
