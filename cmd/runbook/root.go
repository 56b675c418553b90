package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/runbookdev/runbook/actions"
	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/internal/exitcode"
	"github.com/runbookdev/runbook/internal/suggest"
	"github.com/runbookdev/runbook/runbooks"
)

// globalOptions are the flags every command shares.
type globalOptions struct {
	output string // text | json | yaml
	color  string // auto | always | never
	term   terminal
	out    io.Writer
	errOut io.Writer
	reg    *decl.Registry
}

// outputMarkdown marks a command that also prints -o markdown (plan: a
// pull-request comment).
const outputMarkdown = "runbook.dev/output-markdown"

func (g *globalOptions) validateOutput(cmd *cobra.Command) error {
	switch g.output {
	case "text", "json", "yaml":
		return nil
	case "markdown":
		if cmd.Annotations[outputMarkdown] != "" {
			return nil
		}
		return exitcode.Newf(exitcode.Invalid, "--output markdown is for plan (a pull-request comment); %s prints text, json or yaml", cmd.Name())
	}
	return exitcode.Newf(exitcode.Invalid, "--output must be text, json or yaml (plan also markdown), got %q", g.output)
}

// invokedAs is the name the binary was run by. Installed as kubectl-runbook
// it is a kubectl plugin (kubectl finds kubectl-* on PATH), and its help and
// errors say "kubectl runbook …", as the user typed it.
var invokedAs = filepath.Base(os.Args[0])

// displayName is the command as the user runs it.
func displayName() string {
	name := strings.TrimSuffix(invokedAs, ".exe")
	if plugin, ok := strings.CutPrefix(name, "kubectl-"); ok && plugin != "" {
		return "kubectl " + strings.ReplaceAll(plugin, "_", "-")
	}
	return "runbook"
}

func newRootCmd(out, errOut io.Writer) *cobra.Command {
	g := &globalOptions{out: out, errOut: errOut, reg: actions.Default}
	root := &cobra.Command{
		// cobra prints this name in usage, help and completion (kubectl plugins
		// are displayed as "kubectl <name>": cobra.CommandDisplayNameAnnotation).
		Annotations: map[string]string{cobra.CommandDisplayNameAnnotation: displayName()},
		Use:         "runbook",
		Short:       "Run declarative runbooks for Kubernetes network operations",
		Long: `runbook executes YAML runbooks against a Kubernetes cluster: guarded, idempotent,
resumable steps with rollback hooks. The first runbook family migrates pods between
Calico IP pools without network disruption (see examples/migrate-ippool).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Runnable with an Args check so that a mistyped command is bad usage (exit 2)
		// with a suggestion, rather than cobra's generic error (exit 1).
		Args: unknownCommand,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.validateOutput(cmd); err != nil {
				return err
			}
			t, err := detectTerminal(g.out, g.color, os.Getenv)
			g.term = t
			return err
		},
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "text", "Output format: text, json or yaml (plan also markdown)")
	root.PersistentFlags().StringVar(&g.color, "color", "auto", "Colour: auto (a terminal without NO_COLOR), always or never")
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json", "yaml", "markdown"}, cobra.ShellCompDirectiveNoFileComp))
	_ = root.RegisterFlagCompletionFunc("color", cobra.FixedCompletions([]string{"auto", "always", "never"}, cobra.ShellCompDirectiveNoFileComp))
	root.SetFlagErrorFunc(flagError)
	root.AddCommand(
		newValidateCmd(g),
		newSchemaCmd(g),
		newActionsCmd(g),
		newExplainCmd(g),
		newVersionCmd(g),
		newEnvsCmd(g),
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
func loadRunbook(reg *decl.Registry, file string, v *valueFlags) (*runbooks.Runbook, *runbooks.Params, error) {
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

// unknownCommand refuses arguments to the bare command: they are a mistyped command.
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			names = append(names, c.Name())
		}
	}
	return exitcode.Newf(exitcode.Invalid, "unknown command %q%s; see %s --help", args[0], suggest.Hint(args[0], names), displayName())
}

// flagError makes flag errors bad usage (exit 2) and suggests the flag meant.
func flagError(cmd *cobra.Command, err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "unknown flag: --"); ok {
		var names []string
		cmd.Flags().VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
		if c, ok := suggest.Closest(name, names); ok {
			msg += fmt.Sprintf(" (did you mean --%s?)", c)
		}
	}
	return exitcode.New(exitcode.Invalid, errors.New(msg))
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
