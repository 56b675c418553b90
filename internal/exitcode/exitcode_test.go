package exitcode

import (
	"errors"
	"fmt"
	"testing"
)

func TestOf(t *testing.T) {
	tests := []struct {
		err  error
		want Code
	}{
		{nil, OK},
		{errors.New("x"), Internal},
		{New(LockHeld, errors.New("held")), LockHeld},
		{fmt.Errorf("wrapped: %w", Newf(Invalid, "bad")), Invalid},
	}
	for _, tt := range tests {
		if got := Of(tt.err); got != tt.want {
			t.Errorf("Of(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestTableIsComplete(t *testing.T) {
	seen := map[Code]bool{}
	for i, row := range Table {
		if int(row.Code) != i || seen[row.Code] || row.Name == "" || row.Meaning == "" {
			t.Errorf("row %d (%d %s) is out of order, duplicated or empty", i, row.Code, row.Name)
		}
		seen[row.Code] = true
	}
}
