package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/runbookdev/runbook/internal/exitcode"
)

// TestREADMEExitCodes keeps the README's exit-code table equal to the code's.
func TestREADMEExitCodes(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range exitcode.Table {
		line := fmt.Sprintf("| %d | %s | %s |", row.Code, row.Name, row.Meaning)
		if !strings.Contains(string(b), line) {
			t.Errorf("README lacks the row:\n%s", line)
		}
	}
}
