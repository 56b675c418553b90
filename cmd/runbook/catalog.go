package main

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/internal/exitcode"
	"github.com/runbookdev/runbook/internal/value"
	"github.com/runbookdev/runbook/schema"
)

func newSchemaCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema (2020-12) of the runbook format, for editors and CI",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(*cobra.Command, []string) error {
			b, err := schema.Generate(g.reg)
			if err != nil {
				return err
			}
			_, err = g.out.Write(b)
			return err
		},
	}
}

// declOut is the JSON/YAML form of an action declaration.
type declOut struct {
	Name            string     `json:"name" yaml:"name"`
	Summary         string     `json:"summary" yaml:"summary"`
	Description     string     `json:"description,omitempty" yaml:"description,omitempty"`
	PointOfNoReturn bool       `json:"pointOfNoReturn" yaml:"pointOfNoReturn"`
	Inverse         string     `json:"inverse,omitempty" yaml:"inverse,omitempty"`
	Params          []paramOut `json:"params" yaml:"params"`
	Outputs         []paramOut `json:"outputs,omitempty" yaml:"outputs,omitempty"`
}

type paramOut struct {
	Name        string `json:"name" yaml:"name"`
	Type        string `json:"type" yaml:"type"`
	Required    bool   `json:"required,omitempty" yaml:"required,omitempty"`
	Default     any    `json:"default,omitempty" yaml:"default,omitempty"`
	Enum        []any  `json:"enum,omitempty" yaml:"enum,omitempty"`
	PoolRole    string `json:"poolRole,omitempty" yaml:"poolRole,omitempty"`
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
}

func toDeclOut(d *decl.Action, full bool) declOut {
	o := declOut{Name: d.Name, Summary: d.Summary, PointOfNoReturn: d.PointOfNoReturn, Inverse: d.Inverse}
	if full {
		o.Description = d.Description
	}
	for _, p := range d.Params {
		po := paramOut{Name: p.Name, Type: string(p.Type), Required: p.Required, Default: value.JSON(p.Default), PoolRole: string(p.Pool), Description: p.Description}
		for _, e := range p.Enum {
			po.Enum = append(po.Enum, value.JSON(e))
		}
		o.Params = append(o.Params, po)
	}
	for _, out := range d.Outputs {
		o.Outputs = append(o.Outputs, paramOut{Name: out.Name, Type: string(out.Type), Description: out.Description})
	}
	return o
}

func newActionsCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "actions",
		Short: "List the actions a step can use",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(*cobra.Command, []string) error {
			if g.output != "text" {
				var out []declOut
				for _, d := range g.reg.Actions() {
					out = append(out, toDeclOut(d, true))
				}
				return writeStructured(g.out, g.output, out)
			}
			tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
			fprintf(tw, "ACTION\tROLLBACK\tSUMMARY\n")
			for _, d := range g.reg.Actions() {
				rb := "auto"
				switch {
				case d.PointOfNoReturn:
					rb = "point of no return"
				case d.Inverse == "":
					rb = "-"
				}
				fprintf(tw, "%s\t%s\t%s\n", d.Name, rb, d.Summary)
			}
			fprintf(tw, "\nGuard functions: ")
			var names []string
			for _, f := range g.reg.Funcs() {
				names = append(names, f.Name)
			}
			fprintf(tw, "%s (runbook explain <name>)\n", strings.Join(names, ", "))
			return tw.Flush()
		},
	}
}

func newExplainCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "explain ACTION|FUNCTION",
		Short: "Describe an action (parameters, outputs, idempotency, rollback) or a guard function",
		Args:  exactArgs(1, "one action or function name"),
		ValidArgsFunction: func(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var names []string
			for _, d := range g.reg.Actions() {
				if strings.HasPrefix(d.Name, toComplete) {
					names = append(names, d.Name+"\t"+d.Summary)
				}
			}
			for _, f := range g.reg.Funcs() {
				if strings.HasPrefix(f.Name, toComplete) {
					names = append(names, f.Name+"\t"+f.Signature)
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(_ *cobra.Command, args []string) error {
			name := args[0]
			if d, ok := g.reg.Action(name); ok {
				if g.output != "text" {
					return writeStructured(g.out, g.output, toDeclOut(d, true))
				}
				return explainAction(g, d)
			}
			for _, f := range g.reg.Funcs() {
				if f.Name == name {
					if g.output != "text" {
						return writeStructured(g.out, g.output, map[string]string{"name": f.Name, "signature": f.Signature, "description": f.Description})
					}
					fprintf(g.out, "FUNCTION %s\n\n  %s\n\n%s\n", f.Name, f.Signature, indent(f.Description))
					return nil
				}
			}
			var names []string
			for _, d := range g.reg.Actions() {
				names = append(names, d.Name)
			}
			for _, f := range g.reg.Funcs() {
				names = append(names, f.Name)
			}
			sort.Strings(names)
			return exitcode.Newf(exitcode.Invalid, "unknown action or function %q%s; known: %s", name, didYouMean(name, names), strings.Join(names, ", "))
		},
	}
}

// explainPoolRoles lists what the step does to each pool it names: plan and
// preflight read these roles (not the action's name) to follow a runbook's
// pools through its steps.
func explainPoolRoles(g *globalOptions, d *decl.Action) error {
	roles := d.PoolParams()
	if len(roles) == 0 {
		return nil
	}
	fprintf(g.out, "\n")
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fprintf(tw, "POOL PARAMETER\tROLE\tTHE STEP\n")
	for _, r := range roles {
		fprintf(tw, "%s\t%s\t%s\n", r.Param, r.Role, r.Role.Describe())
	}
	return tw.Flush()
}

func explainAction(g *globalOptions, d *decl.Action) error {
	fprintf(g.out, "ACTION %s\n\n%s\n\n%s\n\n", d.Name, indent(d.Summary), indent(d.Description))
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fprintf(tw, "PARAMETER\tTYPE\tREQUIRED\tDEFAULT\tDESCRIPTION\n")
	for _, p := range d.Params {
		def := "-"
		if p.Default != nil {
			def = value.Format(p.Default)
		}
		desc := p.Description
		if len(p.Enum) > 0 {
			var e []string
			for _, x := range p.Enum {
				e = append(e, value.Format(x))
			}
			desc += " One of " + strings.Join(e, ", ") + "."
		}
		req := ""
		if p.Required {
			req = "yes"
		}
		fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Name, p.Type, req, def, desc)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := explainPoolRoles(g, d); err != nil {
		return err
	}
	if len(d.Outputs) > 0 {
		fprintf(g.out, "\n")
		tw = tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
		fprintf(tw, "OUTPUT\tTYPE\tDESCRIPTION\n")
		for _, o := range d.Outputs {
			fprintf(tw, "%s\t%s\t%s\n", o.Name, o.Type, o.Description)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	switch {
	case d.PointOfNoReturn:
		fprintf(g.out, "\nROLLBACK: none — a point of no return. Rollback never crosses it; a terminal run asks before it.\n")
	case d.Inverse != "":
		fprintf(g.out, "\nROLLBACK (rollback: auto): %s\n", d.Inverse)
	default:
		fprintf(g.out, "\nROLLBACK: no inverse; list explicit rollback hooks if needed.\n")
	}
	return nil
}

func indent(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "  " + l
		}
	}
	return strings.Join(lines, "\n")
}

// didYouMean suggests the closest known name (prefix or small edit distance).
func didYouMean(name string, names []string) string {
	lower := strings.ToLower(name)
	for _, n := range names {
		if strings.ToLower(n) == lower || (len(lower) >= 4 && strings.HasPrefix(strings.ToLower(n), lower)) {
			return fmt.Sprintf(" (did you mean %q?)", n)
		}
	}
	return ""
}
