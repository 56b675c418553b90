package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runbookdev/runbook/internal/exitcode"
	"github.com/runbookdev/runbook/internal/value"
	"github.com/runbookdev/runbook/runbooks"
)

type validateResult struct {
	File   string           `json:"file" yaml:"file"`
	Valid  bool             `json:"valid" yaml:"valid"`
	Steps  int              `json:"steps,omitempty" yaml:"steps,omitempty"`
	Params map[string]any   `json:"params,omitempty" yaml:"params,omitempty"`
	Errors []validateErrOut `json:"errors,omitempty" yaml:"errors,omitempty"`
}

type validateErrOut struct {
	File    string `json:"file" yaml:"file"`
	Line    int    `json:"line,omitempty" yaml:"line,omitempty"`
	Column  int    `json:"column,omitempty" yaml:"column,omitempty"`
	Path    string `json:"path,omitempty" yaml:"path,omitempty"`
	Message string `json:"message" yaml:"message"`
}

func newValidateCmd(g *globalOptions) *cobra.Command {
	var vf valueFlags
	var ef envFlags
	cmd := &cobra.Command{
		Use:   "validate RUNBOOK...",
		Short: "Check runbooks (and values, when given) without touching a cluster",
		Long: `Parses each runbook and reports every problem with file:line:col and the field path:
unknown fields, wrong types, unknown actions or parameters, step references, and
expressions that do not compile. With -f/--set or --env, the params are resolved too
(--env: the environment's values files from the project file, then -f, then --set),
and every with: value that depends only on them is checked as its step would.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return exitcode.Newf(exitcode.Invalid, "expected at least one runbook file")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var results []validateResult
			invalid := 0
			for _, file := range args {
				res := validateResult{File: file}
				in := valueFlags{files: append([]string(nil), vf.files...), sets: vf.sets}
				err := ef.resolve(file, envSettings{values: &in, flags: cmd.Flags(), note: func(msg string) { fprintf(g.errOut, "%s: %s\n", file, msg) }})
				if err != nil {
					return err
				}
				rb, err := runbooks.ParseFile(file, g.reg)
				if err == nil && (len(in.files) > 0 || len(in.sets) > 0 || ef.env != "") {
					var p *runbooks.Params
					if p, err = runbooks.ResolveParams(rb, in.inputs()); err == nil {
						res.Params = value.JSONMap(p.Values)
						if rb, err = rb.Expand(p, ef.env); err == nil {
							err = rb.CheckParams(p, ef.env, ef.env != "")
						}
					}
				}
				if err != nil {
					invalid++
					res.Errors = errorsOut(err, file)
				} else {
					res.Valid, res.Steps = true, len(rb.Steps)
				}
				results = append(results, res)
			}
			if g.output != "text" {
				if err := writeStructured(g.out, g.output, results); err != nil {
					return err
				}
			} else {
				for _, r := range results {
					if r.Valid {
						fprintf(g.out, "%s: %s (%d steps)\n", r.File, style{on: g.term.color}.green("valid"), r.Steps)
						continue
					}
					for _, e := range r.Errors {
						fprintf(g.errOut, "%s\n", formatErr(e))
					}
				}
			}
			if invalid > 0 {
				return exitcode.Newf(exitcode.Invalid, "%d of %d runbook(s) invalid", invalid, len(args))
			}
			return nil
		},
	}
	vf.bind(cmd)
	ef.bind(cmd)
	return cmd
}

func formatErr(e validateErrOut) string {
	pos := e.File
	if e.Line > 0 {
		pos = fmt.Sprintf("%s:%d", pos, e.Line)
		if e.Column > 0 {
			pos = fmt.Sprintf("%s:%d", pos, e.Column)
		}
	}
	if e.Path != "" {
		return fmt.Sprintf("%s: %s: %s", pos, e.Path, e.Message)
	}
	return fmt.Sprintf("%s: %s", pos, e.Message)
}

func errorsOut(err error, file string) []validateErrOut {
	var errs runbooks.Errors
	if !errors.As(err, &errs) {
		return []validateErrOut{{File: file, Message: err.Error()}}
	}
	out := make([]validateErrOut, len(errs))
	for i, e := range errs {
		out[i] = validateErrOut{File: e.Pos.File, Line: e.Pos.Line, Column: e.Pos.Col, Path: e.Path, Message: e.Msg}
	}
	return out
}

// refuseBoundValues is plan's and apply's check of the with: values the bound
// params decide (runbooks.CheckParams), before either reads or writes the
// cluster: a value the step would refuse is refused now, naming the field.
func refuseBoundValues(s *session) error {
	if err := s.rb.CheckParams(s.param, s.f.env, true); err != nil {
		return refusedByParams(err)
	}
	return nil
}

// refusedByParams is exit 11 for what the bound params make wrong (a with: value,
// a forEach's items), each problem on its own indented line.
func refusedByParams(err error) error {
	return exitcode.New(exitcode.Refused, fmt.Errorf("refused with these params, before anything touched the cluster:%s",
		strings.ReplaceAll("\n"+err.Error(), "\n", "\n  ")))
}
