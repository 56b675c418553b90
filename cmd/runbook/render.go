package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/internal/plans"
	"github.com/runbookdev/runbook/internal/preflight"
)

// finish prints the report (text) and writes --report files.
// fullReport is the report the CLI writes: the engine's, with the pod moves this
// invocation watched.
type fullReport struct {
	*engine.Report
	Moves []*moveTimeline `json:"moves,omitempty"`
}

func (s *session) finish(rep *engine.Report) {
	g := s.g
	s.printer().close()
	full := fullReport{Report: rep, Moves: s.printer().moves.timelines()}
	switch g.output {
	case "json":
		b, _ := json.Marshal(map[string]any{"type": "report", "report": full})
		fprintf(g.out, "%s\n", b)
	case "yaml":
		_ = writeStructured(g.out, "yaml", full)
	default:
		fprintf(g.out, "\n")
		printReport(g.out, style{on: g.term.color}, rep)
	}
	for _, path := range s.f.reports {
		var b []byte
		if strings.HasSuffix(path, ".md") {
			b = []byte(markdownReport(full))
		} else {
			b, _ = json.MarshalIndent(full, "", "  ")
		}
		if err := engine.WritePrivateFile(path, b); err != nil {
			fprintf(g.errOut, "warning: write report %s: %v\n", path, err)
		}
	}
}

func printReport(w io.Writer, st style, rep *engine.Report) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fprintf(tw, "STEP\tACTION\tSTATUS\tCHANGED\tDURATION\tDETAIL\n")
	for _, s := range rep.Steps {
		fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\n", s.ID, s.Action, s.Status, s.Changed, s.Duration.Round(time.Millisecond), stepDetail(s))
	}
	_ = tw.Flush()
	fprintf(w, "run %s: %s\n", rep.RunID, (&printer{st: st}).status(rep.Status))
	fprintf(w, "%s\n", st.dim(auditLine(rep.RunbookDigest, rep.ParamsDigest, rep.Env, rep.Source)))
	for _, l := range rep.LeftToDo {
		fprintf(w, "  left to do: %s\n", st.red(l))
	}
	var warn []preflight.Finding
	for _, f := range rep.Preflight {
		if f.Severity != preflight.Info {
			warn = append(warn, f)
		}
	}
	printFindings(w, st, warn)
}

// auditLine ties a run to its inputs in one line: what ran, with which params,
// where, from which commit.
func auditLine(runbookDigest, paramsDigest, env string, src *engine.Source) string {
	parts := []string{"runbook " + shortDigest(runbookDigest), "params " + shortDigest(paramsDigest)}
	if env != "" {
		parts = append(parts, "env "+env)
	}
	if src != nil {
		parts = append(parts, "source "+describeSource(src))
	}
	return strings.Join(parts, ", ")
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

// markdownReport is the report for a change ticket: the outcome, what it ran from
// (digests, environment, commit), each step, and what is left to do as a checklist.
func markdownReport(full fullReport) string {
	rep := full.Report
	var b strings.Builder
	fmt.Fprintf(&b, "## runbook %s — run %s: **%s**\n\n", rep.Runbook, rep.RunID, rep.Status)
	if rep.Resumed {
		b.WriteString("Resumed an interrupted run.\n\n")
	}
	b.WriteString("| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| runbook digest | `%s` |\n| params digest | `%s` |\n", rep.RunbookDigest, rep.ParamsDigest)
	if rep.Env != "" {
		fmt.Fprintf(&b, "| environment | %s |\n", mdCell(rep.Env))
	}
	if src := rep.Source; src != nil {
		fmt.Fprintf(&b, "| source | `%s` |\n", mdCell(src.File))
		if src.Commit != "" {
			fmt.Fprintf(&b, "| commit | `%s`%s |\n", src.Commit, map[bool]string{true: " (uncommitted changes)"}[src.Dirty])
		}
	}
	if !rep.StartedAt.IsZero() {
		fmt.Fprintf(&b, "| started | %s |\n", rep.StartedAt.UTC().Format(time.RFC3339))
	}
	b.WriteString("\n| step | action | status | changed | duration | detail |\n|---|---|---|---|---|---|\n")
	for _, s := range rep.Steps {
		fmt.Fprintf(&b, "| %s | %s | %s | %v | %s | %s |\n", s.ID, s.Action, s.Status, s.Changed, s.Duration.Round(time.Millisecond), mdCell(stepDetail(s)))
	}
	if len(rep.Preflight) > 0 {
		b.WriteString("\n| preflight | severity | subject | finding | fix |\n|---|---|---|---|---|\n")
		for _, f := range rep.Preflight {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", f.ID, f.Severity, mdCell(f.Subject), mdCell(f.Message), mdCell(f.Fix))
		}
	}
	for _, tl := range full.Moves {
		fmt.Fprintf(&b, "\n### %s: the move\n\n%s", tl.Step, tl.mermaid())
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

// mdCell keeps text inside one table cell.
func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// planMark colours a plan mark by what it means for the cluster.
func planMark(st style, change plans.Change) string {
	m := change.Mark()
	switch change {
	case plans.Create:
		return st.green(m)
	case plans.Update, plans.Unknown:
		return st.yellow(m)
	case plans.Delete, plans.Refused:
		return st.red(m)
	case plans.Check:
		return st.cyan(m)
	}
	return st.dim(m)
}

// A reviewer reads the plan in a change ticket: per step the first lines of
// what changes and why (the action puts the summary first), then "and N more";
// plan -v (and -o json) has every line.
const (
	planDetailLines  = 15
	planWarningLines = 6
)

// capLines keeps the first max lines and says how many more there are.
func capLines(lines []string, max int, what string, verbose bool) []string {
	if verbose || len(lines) <= max {
		return lines
	}
	return append(lines[:max:max], fmt.Sprintf("… and %d more %s (plan -v shows all)", len(lines)-max, what))
}

func printPlan(w io.Writer, st style, p *engine.Plan, verbose bool) {
	capped := func(lines []string, max int, what string) []string { return capLines(lines, max, what, verbose) }
	fprintf(w, "Plan for %s", st.bold(p.Runbook))
	if p.Env != "" {
		fprintf(w, " in %s", st.bold(p.Env))
	}
	if p.Resumes != "" {
		fprintf(w, " (resumes run %s)", p.Resumes)
	}
	fprintf(w, ":\n")
	for _, s := range p.Steps {
		extra := ""
		if s.PointOfNoReturn {
			extra = st.yellow("  (point of no return)")
		}
		fprintf(w, "  %s %s: %s %s%s\n", planMark(st, s.Change), s.ID, s.Action, s.Change, extra)
		for _, d := range capped(s.Details, planDetailLines, "line(s)") {
			fprintf(w, "      %s\n", d)
		}
		for _, d := range capped(s.Warnings, planWarningLines, "warning(s)") {
			fprintf(w, "      %s\n", st.yellow("warning: "+d))
		}
		if s.Refusal != "" {
			fprintf(w, "      %s\n", st.red("refused: "+s.Refusal))
		}
	}
	printFindings(w, st, p.Preflight)
	fprintf(w, "%d step(s) would change the cluster.\n", p.Changes())
	if p.Lock != "" {
		fprintf(w, "%s\n", st.dim("apply holds the run lock "+p.Lock+" (one per cluster)"))
	}
	fprintf(w, "%s\n", st.dim(auditLine(p.RunbookDigest, p.ParamsDigest, "", p.Source)))
}

// printFindings lists preflight findings, blocking ones first, each with what to
// do about it.
func printFindings(w io.Writer, st style, fs []preflight.Finding) {
	if len(fs) == 0 {
		return
	}
	fprintf(w, "Preflight:\n")
	for _, f := range fs {
		mark := st.dim("info ")
		switch f.Severity {
		case preflight.Block:
			mark = st.red("BLOCK")
		case preflight.Warn:
			mark = st.yellow("warn ")
		}
		where := f.ID
		if f.Step != "" {
			where += " [" + f.Step + "]"
		}
		fprintf(w, "  %s %s: %s\n", mark, where, f.Message)
		if f.Subject != "" {
			fprintf(w, "        at: %s\n", f.Subject)
		}
		if f.Fix != "" {
			fprintf(w, "        fix: %s\n", f.Fix)
		}
	}
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
	fprintf(tw, "RUN\tRUNBOOK\tENV\tSTATUS\tSTARTED\tUPDATED\tCOMMIT\tHOLDER\n")
	for _, j := range js {
		fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.RunID, j.Runbook, orDash(j.Env), j.Status, j.StartedAt.Format(time.RFC3339),
			j.UpdatedAt.Format(time.RFC3339), commitCell(j.Source), j.Holder)
	}
	return tw.Flush()
}

// commitCell is a short commit, marked with * when the inputs were not committed.
func commitCell(s *engine.Source) string {
	if s == nil || s.Commit == "" {
		return "-"
	}
	if s.Dirty {
		return shortCommit(s.Commit) + "*"
	}
	return shortCommit(s.Commit)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printJournal(g *globalOptions, j *engine.Journal) error {
	if g.output != "text" {
		return writeStructured(g.out, g.output, j)
	}
	fprintf(g.out, "run %s of %s: %s (started %s, updated %s, holder %s)\n", j.RunID, j.Runbook, j.Status,
		j.StartedAt.Format(time.RFC3339), j.UpdatedAt.Format(time.RFC3339), j.Holder)
	fprintf(g.out, "  %s\n", auditLine(j.RunbookDigest, j.ParamsDigest, j.Env, j.Source))
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
