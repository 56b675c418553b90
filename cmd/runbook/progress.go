package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/runbookdev/runbook/actions"
)

// liveLine is the status line a terminal run redraws under its log lines: which step
// runs, for how long, and, for steps that report it, a progress bar.
type liveLine struct {
	st    style
	width int
	now   func() time.Time

	step, name string
	started    time.Time
	frame      int
	progress   *actions.PodMoveEvent
	last       string // the latest pod event, for a sense of movement between progress events
	shown      bool
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

const barWidth = 20

func (l *liveLine) begin(step, name string, at time.Time) {
	*l = liveLine{st: l.st, width: l.width, now: l.now, step: step, name: name, started: at}
}

func (l *liveLine) end() { l.step, l.progress, l.last = "", nil, "" }

func (l *liveLine) tick() { l.frame++ }

func (l *liveLine) setProgress(e actions.PodMoveEvent) { l.progress = &e }

func (l *liveLine) setLast(s string) { l.last = s }

// clear erases the line if one is shown: carriage return, erase to end of line.
func (l *liveLine) clear() string {
	if !l.shown {
		return ""
	}
	l.shown = false
	return "\r\x1b[K"
}

// draw writes the line without a newline, so the next clear can take it back.
func (l *liveLine) draw() string {
	if l.step == "" {
		return ""
	}
	l.shown = true
	return "\r" + l.render() + "\x1b[K"
}

func (l *liveLine) render() string {
	elapsed := l.now().Sub(l.started).Round(time.Second)
	if elapsed < 0 {
		elapsed = 0
	}
	head := fmt.Sprintf("%s %s %s", spinner[l.frame%len(spinner)], l.step, elapsed)
	var tail string
	if e := l.progress; e != nil && e.Total > 0 {
		tail = " " + bar(e.Replaced, e.Total) + " " + progressText(*e)
	} else if l.name != "" {
		tail = "  " + l.name
	}
	if l.last != "" {
		tail += " · " + l.last
	}
	// The line must never wrap: a wrapped line cannot be taken back with \r.
	text := truncate(head+tail, l.width-1)
	if len(text) > len(head) && strings.HasPrefix(text, head) {
		return l.st.cyan(head) + text[len(head):]
	}
	return l.st.cyan(text)
}

// bar is a fixed-width progress bar of done out of total.
func bar(done, total int) string {
	filled := 0
	if total > 0 {
		filled = min(barWidth, done*barWidth/total)
	}
	return "[" + strings.Repeat("█", filled) + strings.Repeat("░", barWidth-filled) + "]"
}

// truncate cuts s to n runes, marking the cut.
func truncate(s string, n int) string {
	r := []rune(s)
	if n <= 0 || len(r) <= n {
		return s
	}
	if n == 1 {
		return "…"
	}
	return string(r[:n-1]) + "…"
}
