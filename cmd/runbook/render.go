package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/runbookdev/runbook/engine"
)

// printer renders engine events: plain lines for people, JSON lines with -o json.
type printer struct {
	g *globalOptions
}

func (s *session) printer() *printer { return &printer{g: s.g} }

func (p *printer) event(e engine.Event) {
	if p.g.output == "json" {
		b, _ := json.Marshal(e)
		fprintf(p.g.out, "%s\n", b)
		return
	}
	if p.g.output != "text" {
		return
	}
	ts := e.Time.Local().Format("15:04:05")
	switch e.Type {
	case "run.start", "run.resume":
		fprintf(p.g.out, "%s %s\n", ts, e.Message)
	case "step.start":
		fprintf(p.g.out, "%s ▶ %s %s\n", ts, e.Step, e.Message)
	case "step.done":
		mark := "✓ unchanged"
		if e.Changed {
			mark = "✓ changed"
		}
		fprintf(p.g.out, "%s %s %s: %s\n", ts, mark, e.Step, e.Message)
	case "step.skip":
		fprintf(p.g.out, "%s - skipped %s: %s\n", ts, e.Step, e.Message)
	case "step.fail":
		fprintf(p.g.out, "%s ✗ %s %s: %s\n", ts, e.Status, e.Step, e.Message)
	case "step.wait":
		fprintf(p.g.out, "%s ⏸ %s\n", ts, e.Message)
	case "rollback", "cleanup", "run.archive":
		fprintf(p.g.out, "%s   %s %s: %s\n", ts, e.Type, e.Step, e.Message)
	case "run.end":
		fprintf(p.g.out, "%s run %s: %s\n", ts, e.RunID, e.Status)
	}
}

// finish prints the report (text) and writes --report files.
func (s *session) finish(rep *engine.Report) {
	g := s.g
	switch g.output {
	case "json":
		b, _ := json.Marshal(map[string]any{"type": "report", "report": rep})
		fprintf(g.out, "%s\n", b)
	case "yaml":
		_ = writeStructured(g.out, "yaml", rep)
	default:
		fprintf(g.out, "\n")
		printReport(g.out, rep)
	}
	for _, path := range s.f.reports {
		var b []byte
		if strings.HasSuffix(path, ".md") {
			b = []byte(markdownReport(rep))
		} else {
			b, _ = json.MarshalIndent(rep, "", "  ")
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			fprintf(g.errOut, "warning: write report %s: %v\n", path, err)
		}
	}
}

func printReport(w io.Writer, rep *engine.Report) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fprintf(tw, "STEP\tACTION\tSTATUS\tCHANGED\tDURATION\tDETAIL\n")
	for _, s := range rep.Steps {
		detail := stepDetail(s)
		fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\n", s.ID, s.Action, s.Status, s.Changed, s.Duration.Round(time.Millisecond), detail)
	}
	_ = tw.Flush()
	fprintf(w, "run %s: %s\n", rep.RunID, rep.Status)
	for _, l := range rep.LeftToDo {
		fprintf(w, "  left to do: %s\n", l)
	}
}

// stepDetail is the one-line outcome of a step: its error, else its message, and
// what its rollback did.
func stepDetail(s engine.StepReport) string {
	detail := s.Message
	if s.Error != "" {
		detail = s.Error
	}
	if s.Rollback != "" {
		detail += " (rollback: " + s.Rollback + ")"
	}
	return detail
}

func markdownReport(rep *engine.Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## runbook %s — run %s: **%s**\n\n", rep.Runbook, rep.RunID, rep.Status)
	if rep.Resumed {
		b.WriteString("Resumed an interrupted run.\n\n")
	}
	b.WriteString("| step | action | status | changed | duration | detail |\n|---|---|---|---|---|---|\n")
	for _, s := range rep.Steps {
		detail := stepDetail(s)
		fmt.Fprintf(&b, "| %s | %s | %s | %v | %s | %s |\n", s.ID, s.Action, s.Status, s.Changed, s.Duration.Round(time.Millisecond), strings.ReplaceAll(detail, "|", `\|`))
	}
	if rep.Error != "" {
		fmt.Fprintf(&b, "\n**Error:** %s\n", rep.Error)
	}
	for _, l := range rep.LeftToDo {
		fmt.Fprintf(&b, "\n- [ ] %s", l)
	}
	b.WriteString("\n")
	return b.String()
}

func printPlan(w io.Writer, p *engine.Plan) {
	fprintf(w, "Plan for %s", p.Runbook)
	if p.Resumes != "" {
		fprintf(w, " (resumes run %s)", p.Resumes)
	}
	fprintf(w, ":\n")
	for _, s := range p.Steps {
		mark := map[string]string{"none": "=", "create": "+", "update": "~", "delete": "-", "check": "?", "skip": "·", "done": "✓", "unknown": "…", "refused": "✗"}[s.Change]
		extra := ""
		if s.PointOfNoReturn {
			extra = "  (point of no return)"
		}
		fprintf(w, "  %s %s: %s %s%s\n", mark, s.ID, s.Action, s.Change, extra)
		for _, d := range s.Details {
			fprintf(w, "      %s\n", d)
		}
		for _, d := range s.Warnings {
			fprintf(w, "      warning: %s\n", d)
		}
		if s.Refusal != "" {
			fprintf(w, "      refused: %s\n", s.Refusal)
		}
	}
	fprintf(w, "%d step(s) would change the cluster.\n", p.Changes())
}

func printRuns(g *globalOptions, js []*engine.Journal, empty string) error {
	sort.Slice(js, func(a, b int) bool { return js[a].StartedAt.After(js[b].StartedAt) })
	if g.output != "text" {
		return writeStructured(g.out, g.output, js)
	}
	if len(js) == 0 {
		fprintf(g.out, "%s\n", empty)
		return nil
	}
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fprintf(tw, "RUN\tRUNBOOK\tSTATUS\tSTARTED\tUPDATED\tHOLDER\n")
	for _, j := range js {
		fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", j.RunID, j.Runbook, j.Status, j.StartedAt.Format(time.RFC3339), j.UpdatedAt.Format(time.RFC3339), j.Holder)
	}
	return tw.Flush()
}

func printJournal(g *globalOptions, j *engine.Journal) error {
	if g.output != "text" {
		return writeStructured(g.out, g.output, j)
	}
	fprintf(g.out, "run %s of %s: %s (started %s, updated %s, holder %s)\n", j.RunID, j.Runbook, j.Status,
		j.StartedAt.Format(time.RFC3339), j.UpdatedAt.Format(time.RFC3339), j.Holder)
	if j.Error != "" {
		fprintf(g.out, "  %s\n", j.Error)
	}
	ids := make([]string, 0, len(j.Steps))
	for id := range j.Steps {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fprintf(tw, "STEP\tSTATUS\tCHANGED\tATTEMPTS\tDETAIL\n")
	for _, id := range ids {
		r := j.Steps[id]
		detail := r.Message
		if r.Error != "" {
			detail = r.Error
		}
		fprintf(tw, "%s\t%s\t%v\t%d\t%s\n", id, r.Status, r.Changed, r.Attempts, detail)
	}
	return tw.Flush()
}
