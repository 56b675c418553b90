package main

import (
	"io"
	"os"

	"golang.org/x/term"

	"github.com/runbookdev/runbook/internal/exitcode"
)

// terminal is what the output stream can do. Pipelines get plain lines: no colour,
// no redrawn progress line, nothing that turns a CI log into escape codes.
type terminal struct {
	tty   bool // stdout is a terminal: progress is redrawn in place
	color bool
	width int // columns, for the progress line (it must never wrap)
}

// detectTerminal decides from the output stream, --color and the environment:
// NO_COLOR (https://no-color.org) and TERM=dumb turn colours off in auto mode.
func detectTerminal(out io.Writer, colorFlag string, getenv func(string) string) (terminal, error) {
	tty, width := false, 0
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		tty = true
		if w, _, err := term.GetSize(int(f.Fd())); err == nil {
			width = w
		}
	}
	return terminalFor(tty, width, colorFlag, getenv)
}

func terminalFor(tty bool, width int, colorFlag string, getenv func(string) string) (terminal, error) {
	t := terminal{tty: tty, width: 80}
	if width > 20 {
		t.width = width
	}
	switch colorFlag {
	case "auto":
		t.color = t.tty && getenv("NO_COLOR") == "" && getenv("TERM") != "dumb"
	case "always":
		t.color = true
	case "never":
	default:
		return t, exitcode.Newf(exitcode.Invalid, "--color must be auto, always or never, got %q", colorFlag)
	}
	return t, nil
}

// style colours text when the terminal has colour, and is the identity otherwise.
type style struct{ on bool }

const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiDim    = "\x1b[2m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
)

func (s style) paint(code, text string) string {
	if !s.on || text == "" {
		return text
	}
	return code + text + ansiReset
}

func (s style) bold(t string) string   { return s.paint(ansiBold, t) }
func (s style) dim(t string) string    { return s.paint(ansiDim, t) }
func (s style) red(t string) string    { return s.paint(ansiRed, t) }
func (s style) green(t string) string  { return s.paint(ansiGreen, t) }
func (s style) yellow(t string) string { return s.paint(ansiYellow, t) }
func (s style) cyan(t string) string   { return s.paint(ansiCyan, t) }
