package main

import (
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/runbookdev/runbook/internal/exitcode"
	"github.com/runbookdev/runbook/internal/project"
)

// envFlags select an environment of the project file (.runbook.yaml).
type envFlags struct {
	env     string
	project string
	path    string // the project file used, once resolved (for the audit trail)
}

func (e *envFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&e.env, "env", "", "Environment: its context, namespace and values come from the project file "+project.FileName+" (visible to expressions as env)")
	cmd.Flags().StringVar(&e.project, "project", "", "Project file (default: "+project.FileName+" in the runbook's directory or a parent, up to the git repository's root)")
	_ = cmd.RegisterFlagCompletionFunc("env", completeEnvs(e))
}

// load finds and parses the project file for a runbook (or, without one, for the
// working directory); nil when there is none.
func (e *envFlags) load(runbookFile string) (*project.Project, error) {
	path := e.project
	if path == "" {
		dir := "."
		if runbookFile != "" {
			dir = filepath.Dir(runbookFile)
		}
		found, err := project.Find(dir)
		if err != nil {
			return nil, exitcode.New(exitcode.Invalid, err)
		}
		if found == "" {
			return nil, nil
		}
		path = found
	}
	p, err := project.Load(path)
	if err != nil {
		return nil, exitcode.New(exitcode.Invalid, err)
	}
	return p, nil
}

// envSettings is what an environment contributes to a command.
type envSettings struct {
	kube   *kubeFlags  // nil for commands without a cluster (validate)
	values *valueFlags // nil for commands without params
	flags  *pflag.FlagSet
	note   func(string) // where to say which environment is used
}

// resolve applies the selected environment: values files go before any -f (so -f and
// --set still win), and the kubeconfig, context and namespace are used unless the
// flag was given. Without --env nothing changes; without a project file --env only
// names the environment, as before project files existed.
func (e *envFlags) resolve(runbookFile string, s envSettings) error {
	if e.env == "" {
		if e.project != "" {
			return exitcode.Newf(exitcode.Invalid, "--project needs --env to say which environment")
		}
		return nil
	}
	p, err := e.load(runbookFile)
	if err != nil {
		return err
	}
	if p == nil {
		s.note("no " + project.FileName + " found: --env " + e.env + " only names the environment for guards")
		return nil
	}
	e.path = p.Path
	env, err := p.Env(e.env)
	if err != nil {
		return exitcode.New(exitcode.Invalid, err)
	}
	var used []string
	if s.values != nil {
		vals := env.ValuesFor(runbookFile)
		s.values.files = append(vals, s.values.files...)
		for _, v := range vals {
			used = append(used, "values "+relative(v))
		}
	}
	if k := s.kube; k != nil {
		if env.Kubeconfig != "" && !s.flags.Changed("kubeconfig") {
			k.kubeconfig = env.Kubeconfig
			used = append(used, "kubeconfig "+relative(env.Kubeconfig))
		}
		if env.Context != "" && !s.flags.Changed("context") {
			k.context = env.Context
			used = append(used, "context "+env.Context)
		}
		if env.Namespace != "" && !s.flags.Changed("namespace") {
			k.namespace = env.Namespace
			used = append(used, "namespace "+env.Namespace)
		}
	}
	if len(used) == 0 {
		used = []string{"nothing set"}
	}
	s.note("environment " + e.env + " (" + relative(p.Path) + "): " + strings.Join(used, ", "))
	return nil
}

// relative shortens a path for messages when it is under the working directory.
func relative(path string) string {
	if path == "" {
		return ""
	}
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	if r, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}

// completeEnvs completes --env with the project's environments.
func completeEnvs(e *envFlags) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		rb := ""
		if len(args) > 0 {
			rb = args[0]
		}
		p, err := e.load(rb)
		if err != nil || p == nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return p.Names(), cobra.ShellCompDirectiveNoFileComp
	}
}

// envOut is the JSON/YAML form of an environment.
type envOut struct {
	Name       string   `json:"name" yaml:"name"`
	Kubeconfig string   `json:"kubeconfig,omitempty" yaml:"kubeconfig,omitempty"`
	Context    string   `json:"context,omitempty" yaml:"context,omitempty"`
	Namespace  string   `json:"namespace,omitempty" yaml:"namespace,omitempty"`
	Values     []string `json:"values,omitempty" yaml:"values,omitempty"`
}

func newEnvsCmd(g *globalOptions) *cobra.Command {
	var e envFlags
	var quiet bool
	cmd := &cobra.Command{
		Use:   "envs [RUNBOOK]",
		Short: "List the environments of the project file (-q: names only, for shell loops)",
		Long: `Lists the environments declared in ` + project.FileName + ` (found from RUNBOOK's directory, or the
working directory, upwards to the git repository's root; or --project). With RUNBOOK,
the values files listed are the ones apply --env would use for it.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			rb := ""
			if len(args) == 1 {
				rb = args[0]
			}
			p, err := e.load(rb)
			if err != nil {
				return err
			}
			if p == nil {
				return exitcode.Newf(exitcode.Invalid, "no %s found (looked from %s up to the repository's root); see docs/environments.md", project.FileName, orDot(filepath.Dir(rb)))
			}
			var out []envOut
			for _, name := range p.Names() {
				env := p.Envs[name]
				out = append(out, envOut{Name: name, Kubeconfig: env.Kubeconfig, Context: env.Context, Namespace: env.Namespace, Values: env.ValuesFor(rb)})
			}
			if g.output != "text" {
				return writeStructured(g.out, g.output, out)
			}
			if quiet {
				for _, o := range out {
					fprintf(g.out, "%s\n", o.Name)
				}
				return nil
			}
			tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
			fprintf(tw, "ENV\tCONTEXT\tNAMESPACE\tKUBECONFIG\tVALUES\n")
			for _, o := range out {
				var vals []string
				for _, v := range o.Values {
					vals = append(vals, relative(v))
				}
				fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", o.Name, orDash(o.Context), orDash(o.Namespace), orDash(relative(o.Kubeconfig)), orDash(strings.Join(vals, ", ")))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&e.project, "project", "", "Project file (default: "+project.FileName+" found from RUNBOOK's directory or the working directory)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Print only the names, one per line")
	return cmd
}

func orDot(dir string) string {
	if dir == "" {
		return "."
	}
	return dir
}
