package main

import (
	"fmt"
	"strings"

	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/internal/preflight"
)

// planMarker starts every Markdown plan: a pipeline finds its earlier comment
// on the pull request by it and updates that one instead of adding another
// (one comment per runbook and environment).
func planMarker(p *engine.Plan) string {
	return fmt.Sprintf("<!-- runbook-plan %s %s -->", p.Runbook, nonEmptyOr(p.Env, "-"))
}

func nonEmptyOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// markdownPlan is the plan as a pull-request comment: a headline with the
// counts, one table row per step, what blocks it, and the details of each
// changing step folded in <details> (GitHub, GitLab and most ticket systems
// render it). Each step's lines are capped as in the text plan unless verbose.
func markdownPlan(p *engine.Plan, verbose bool) string {
	var b strings.Builder
	refusals := p.Refusals()
	b.WriteString(planMarker(p) + "\n")
	fmt.Fprintf(&b, "### runbook plan: `%s`", p.Runbook)
	if p.Env != "" {
		fmt.Fprintf(&b, " in **%s**", mdCell(p.Env))
	}
	switch {
	case len(refusals) > 0:
		fmt.Fprintf(&b, " — ✗ **refused** (%d)\n\n", len(refusals))
	case p.Changes() > 0:
		fmt.Fprintf(&b, " — %d step(s) to change\n\n", p.Changes())
	default:
		b.WriteString(" — no changes\n\n")
	}
	if p.Resumes != "" {
		fmt.Fprintf(&b, "Resumes run `%s`.\n\n", p.Resumes)
	}
	b.WriteString("| | step | action | change | summary |\n|---|---|---|---|---|\n")
	for _, s := range p.Steps {
		summary := ""
		if len(s.Details) > 0 {
			summary = s.Details[0]
		}
		if s.Refusal != "" {
			summary = "refused: " + s.Refusal
		}
		change := string(s.Change)
		if s.PointOfNoReturn {
			change += " (point of no return)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", s.Change.Mark(), s.ID, s.Action, change, mdCell(summary))
	}
	if len(refusals) > 0 {
		b.WriteString("\n**Refused:**\n")
		for _, r := range refusals {
			fmt.Fprintf(&b, "- %s\n", mdCell(r))
		}
	}
	var notes []preflight.Finding
	for _, f := range p.Preflight {
		if f.Severity != preflight.Info {
			notes = append(notes, f)
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n| preflight | severity | finding | fix |\n|---|---|---|---|\n")
		for _, f := range notes {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", f.ID, f.Severity, mdCell(f.Message), mdCell(f.Fix))
		}
	}
	b.WriteString("\n<details><summary>Details of each step</summary>\n\n")
	for _, s := range p.Steps {
		if len(s.Details) <= 1 && len(s.Warnings) == 0 {
			continue
		}
		fmt.Fprintf(&b, "**%s** (%s %s)\n\n", s.ID, s.Action, s.Change)
		for _, d := range capLines(s.Details, planDetailLines, "line(s)", verbose) {
			fmt.Fprintf(&b, "- %s\n", mdCell(d))
		}
		for _, w := range capLines(s.Warnings, planWarningLines, "warning(s)", verbose) {
			fmt.Fprintf(&b, "- ⚠ %s\n", mdCell(w))
		}
		b.WriteString("\n")
	}
	b.WriteString("</details>\n\n")
	fmt.Fprintf(&b, "<sub>%s</sub>\n", mdCell(auditLine(p.RunbookDigest, p.ParamsDigest, "", p.Source)))
	return b.String()
}
