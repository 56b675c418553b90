package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/runbookdev/runbook/actions"
	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/runbooks"
)

// printer renders a run as it happens: the engine's events and deletePodsInPool's
// live pod events. On a terminal (-o text) one status line under the log lines is
// redrawn in place (spinner, elapsed time, progress bar); anywhere else every line
// is a plain, append-only log line; -o json prints one JSON object per line.
type printer struct {
	out    io.Writer
	format string // text | json | yaml
	st     style
	loc    *time.Location
	live   *liveLine // nil unless stdout is a terminal and -o text
	// plainProgressEvery throttles progress lines in plain text: a CI log wants a
	// heartbeat, not a line a second for two hours.
	plainProgressEvery time.Duration

	mu           sync.Mutex
	paused       bool // a question is being asked: do not draw over it
	lastProgress map[string]time.Time
	stopTicker   chan struct{}
	tickEvery    time.Duration // 0: no animation (tests draw by hand)
	// moves records the pod moves for the reports (every format).
	moves moveRecorder
}

func newPrinter(g *globalOptions) *printer {
	p := &printer{out: g.out, format: g.output, st: style{on: g.term.color && g.output == "text"}, loc: time.Local,
		plainProgressEvery: 10 * time.Second, lastProgress: map[string]time.Time{}, tickEvery: 100 * time.Millisecond}
	if g.term.tty && g.output == "text" {
		p.live = &liveLine{st: p.st, width: g.term.width, now: time.Now}
	}
	return p
}

// event renders one engine event.
func (p *printer) event(e engine.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch p.format {
	case "json":
		b, _ := json.Marshal(e)
		fprintf(p.out, "%s\n", b)
		return
	case "yaml":
		return // the report is printed at the end
	}
	p.clearLive()
	if line := p.eventLine(e); line != "" {
		fprintf(p.out, "%s\n", line)
	}
	if p.live != nil {
		switch e.Type {
		case "step.start":
			p.live.begin(e.Step, e.Message, e.Time)
			p.startTicker()
		case "step.done", "step.fail", "step.skip", "step.wait", "run.end":
			p.live.end()
			p.stopTickerLocked()
		}
	}
	p.drawLive()
}

func (p *printer) eventLine(e engine.Event) string {
	st := p.st
	ts := st.dim(e.Time.In(p.loc).Format("15:04:05"))
	switch e.Type {
	case "run.start", "run.resume":
		return fmt.Sprintf("%s %s", ts, e.Message)
	case "step.start":
		return fmt.Sprintf("%s %s %s %s", ts, st.cyan("▶"), st.bold(e.Step), e.Message)
	case "step.done":
		mark := st.dim("✓ unchanged")
		if e.Changed {
			mark = st.green("✓ changed")
		}
		return fmt.Sprintf("%s %s %s: %s", ts, mark, e.Step, e.Message)
	case "step.skip":
		return fmt.Sprintf("%s %s %s: %s", ts, st.dim("- skipped"), e.Step, e.Message)
	case "step.fail":
		return fmt.Sprintf("%s %s %s: %s", ts, st.red("✗ "+e.Status), e.Step, e.Message)
	case "step.wait":
		return fmt.Sprintf("%s %s", ts, st.yellow("⏸ "+e.Message))
	case "preflight":
		return fmt.Sprintf("%s %s %s", ts, st.yellow("! preflight"), e.Message)
	case "rollback", "cleanup", "run.archive":
		return fmt.Sprintf("%s   %s %s: %s", ts, e.Type, e.Step, e.Message)
	case "run.end":
		return fmt.Sprintf("%s run %s: %s", ts, e.RunID, p.status(e.Status))
	}
	return ""
}

// status colours a run or step status by outcome.
func (p *printer) status(s string) string {
	switch s {
	case engine.StatusDone:
		return p.st.green(s)
	case engine.StatusFailed, engine.StatusRollbackFailed:
		return p.st.red(s)
	case engine.StatusRolledBack, engine.StatusInterrupted, engine.StatusStopped, engine.StatusAwaitingApproval:
		return p.st.yellow(s)
	}
	return s
}

// podEvent renders deletePodsInPool's live progress (actions.WithPodMoveEvents).
func (p *printer) podEvent(step string, e actions.PodMoveEvent) {
	p.moves.record(step, e)
	p.mu.Lock()
	defer p.mu.Unlock()
	switch p.format {
	case "json":
		b, _ := json.Marshal(struct {
			Step string `json:"step"`
			actions.PodMoveEvent
		}{step, e})
		fprintf(p.out, "%s\n", b)
		return
	case "yaml":
		return
	}
	if p.live != nil {
		p.podEventLive(step, e)
		return
	}
	if e.Type == "progress" && e.Message == "" {
		if last, ok := p.lastProgress[step]; ok && e.Time.Sub(last) < p.plainProgressEvery {
			return
		}
		p.lastProgress[step] = e.Time
	}
	fprintf(p.out, "%s   %s: %s\n", p.st.dim(e.Time.In(p.loc).Format("15:04:05")), step, p.podLine(e))
}

// podEventLive: on a terminal the bar carries progress and the latest pod; only
// what needs attention, and the final summary, become lines.
func (p *printer) podEventLive(step string, e actions.PodMoveEvent) {
	switch e.Type {
	case "progress":
		p.live.setProgress(e)
		if e.Message == "" {
			p.drawLive()
			return
		}
	case "pod.evicted", "pod.deleted", "pod.replaced":
		p.live.setLast(p.podLine(e))
		p.drawLive()
		return
	}
	p.clearLive()
	fprintf(p.out, "%s   %s: %s\n", p.st.dim(e.Time.In(p.loc).Format("15:04:05")), step, p.podLine(e))
	p.drawLive()
}

func (p *printer) podLine(e actions.PodMoveEvent) string {
	switch e.Type {
	case "pod.evicted", "pod.deleted":
		verb := "evicted"
		if e.Type == "pod.deleted" {
			verb = "deleted"
		}
		return fmt.Sprintf("%s %s%s", verb, e.Pod, detailList(e.Owner, e.Node, e.IP))
	case "pod.replaced":
		return replacedLine(e)
	case "pod.refused":
		return p.st.yellow(fmt.Sprintf("eviction of %s refused: %s", e.Pod, e.Message))
	case "pod.skipped":
		return fmt.Sprintf("skipped %s: %s", e.Pod, e.Message)
	case "owner.restarted":
		return fmt.Sprintf("restarted %s: %s", e.Owner, e.Message)
	case "warning":
		return p.st.yellow("warning: " + e.Message)
	case "progress":
		s := progressText(e)
		if e.Message != "" {
			s += "; " + e.Message
		}
		return s
	}
	return e.Type + " " + e.Pod + " " + e.Message
}

// replacedLine says in the reader's terms what became of an evicted pod.
func replacedLine(e actions.PodMoveEvent) string {
	in := "the target pool"
	if len(e.Pools) > 0 {
		in = strings.Join(e.Pools, " or ")
	}
	switch {
	case e.Message != "":
		return fmt.Sprintf("%s gone after %s: %s", e.Pod, e.Took, e.Message)
	case e.Replacement != "":
		return fmt.Sprintf("%s replaced by %s, Ready in %s after %s", e.Pod, e.Replacement, in, e.Took)
	case e.Owner != "":
		return fmt.Sprintf("%s replaced: %s has its Ready pods back, in %s, after %s", e.Pod, e.Owner, in, e.Took)
	}
	return fmt.Sprintf("%s replaced, Ready in %s after %s", e.Pod, in, e.Took)
}

// progressText is the counts of a progress event, shared by plain lines and the bar.
func progressText(e actions.PodMoveEvent) string {
	s := fmt.Sprintf("%d of %d pods replaced, %d evicted", e.Replaced, e.Total, e.Moved)
	if e.InFlight > 0 {
		s += fmt.Sprintf(", %d in flight", e.InFlight)
	}
	if e.WaitingOnPDB > 0 {
		s += fmt.Sprintf(", %d waiting on a PDB", e.WaitingOnPDB)
	}
	if e.ETA > 0 {
		s += fmt.Sprintf(", ETA %s", e.ETA)
	}
	return s
}

func detailList(parts ...string) string {
	var kept []string
	for _, x := range parts {
		if x != "" {
			kept = append(kept, x)
		}
	}
	if len(kept) == 0 {
		return ""
	}
	return " (" + strings.Join(kept, ", ") + ")"
}

// confirm wraps a question so the status line does not draw over it.
func (p *printer) confirm(ask func(*runbooks.Step, string) (bool, error)) func(*runbooks.Step, string) (bool, error) {
	return func(st *runbooks.Step, q string) (bool, error) {
		p.mu.Lock()
		p.clearLive()
		p.paused = true
		p.mu.Unlock()
		defer func() {
			p.mu.Lock()
			p.paused = false
			p.drawLive()
			p.mu.Unlock()
		}()
		return ask(st, q)
	}
}

// close stops the animation and leaves the terminal on a fresh line.
func (p *printer) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopTickerLocked()
	p.clearLive()
	if p.live != nil {
		p.live.end()
	}
}

func (p *printer) clearLive() {
	if p.live != nil {
		fprintf(p.out, "%s", p.live.clear())
	}
}

func (p *printer) drawLive() {
	if p.live != nil && !p.paused {
		fprintf(p.out, "%s", p.live.draw())
	}
}

// startTicker animates the spinner and the elapsed time while a step runs.
func (p *printer) startTicker() {
	if p.tickEvery <= 0 || p.stopTicker != nil {
		return
	}
	stop := make(chan struct{})
	p.stopTicker = stop
	go func() {
		t := time.NewTicker(p.tickEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				p.mu.Lock()
				p.live.tick()
				p.drawLive()
				p.mu.Unlock()
			}
		}
	}()
}

func (p *printer) stopTickerLocked() {
	if p.stopTicker != nil {
		close(p.stopTicker)
		p.stopTicker = nil
	}
}
