package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runbookdev/runbook/actions"
	"github.com/runbookdev/runbook/internal/exitcode"
	"github.com/runbookdev/runbook/runbooks"
)

// globalOptions are the flags every command shares.
type globalOptions struct {
	output string // text | json | yaml
	out    io.Writer
	errOut io.Writer
	reg    *actions.Registry
}

func (g *globalOptions) validateOutput() error {
	switch g.output {
	case "text", "json", "yaml":
		return nil
	}
	return exitcode.Newf(exitcode.Invalid, "--output must be text, json or yaml, got %q", g.output)
}

func newRootCmd(out, errOut io.Writer) *cobra.Command {
	g := &globalOptions{out: out, errOut: errOut, reg: actions.Default}
	root := &cobra.Command{
		Use:   "runbook",
		Short: "Run declarative runbooks for Kubernetes network operations",
		Long: `runbook executes YAML runbooks against a Kubernetes cluster: guarded, idempotent,
resumable steps with rollback hooks. The first runbook family migrates pods between
Calico IP pools without network disruption (see examples/migrate-ippool).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return g.validateOutput()
		},
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "text", "Output format: text, json or yaml")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return exitcode.New(exitcode.Invalid, err)
	})
	root.AddCommand(
		newValidateCmd(g),
		newSchemaCmd(g),
		newActionsCmd(g),
		newExplainCmd(g),
		newVersionCmd(g),
	)
	for _, c := range newClusterCmds(g) {
		root.AddCommand(c)
	}
	return root
}

// valueFlags are -f and --set, shared by every command that resolves params.
type valueFlags struct {
	files []string
	sets  []string
}

func (v *valueFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringArrayVarP(&v.files, "values", "f", nil, "Values file (repeatable; later files win)")
	cmd.Flags().StringArrayVar(&v.sets, "set", nil, "Set a param: name=value, map.key=value, list={a,b} (repeatable; wins over -f)")
}

func (v *valueFlags) inputs() runbooks.ValueInputs {
	return runbooks.ValueInputs{Files: v.files, Sets: v.sets}
}

// loadRunbook parses a runbook and resolves its params; every error is Invalid.
func loadRunbook(reg *actions.Registry, file string, v *valueFlags) (*runbooks.Runbook, *runbooks.Params, error) {
	rb, err := runbooks.ParseFile(file, reg)
	if err != nil {
		return nil, nil, exitcode.New(exitcode.Invalid, err)
	}
	params, err := runbooks.ResolveParams(rb, v.inputs())
	if err != nil {
		return nil, nil, exitcode.New(exitcode.Invalid, err)
	}
	return rb, params, nil
}

func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return exitcode.Newf(exitcode.Invalid, "expected %s, got %d argument(s)%s", what, len(args), strings.Repeat("", 0))
		}
		return nil
	}
}

func fprintf(w io.Writer, format string, args ...any) { _, _ = fmt.Fprintf(w, format, args...) }
