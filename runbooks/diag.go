package runbooks

import (
	"fmt"
	"sort"
	"strings"
)

// Pos is a place in a source file; Line and Col are 1-based, 0 when unknown.
type Pos struct {
	File string
	Line int
	Col  int
}

func (p Pos) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Col == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Error is one problem found in a file: where, which field, what is wrong.
type Error struct {
	Pos  Pos
	Path string // field path such as steps[2].with.cidr; empty for the whole file
	Msg  string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("%s: %s", e.Pos, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.Pos, e.Path, e.Msg)
}

// Errors is every problem found, in file order. Validation collects them all instead
// of stopping at the first, so an operator fixes a file in one round.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Err returns nil when there are no errors, so callers can `return errs.Err()`.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	es.sort()
	return es
}

func (es Errors) sort() {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i].Pos, es[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

// collector accumulates errors while walking a file.
type collector struct {
	file string
	errs Errors
}

func (c *collector) add(line, col int, path, format string, args ...any) {
	c.errs = append(c.errs, &Error{Pos: Pos{File: c.file, Line: line, Col: col}, Path: path, Msg: fmt.Sprintf(format, args...)})
}
