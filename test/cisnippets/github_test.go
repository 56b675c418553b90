package cisnippets

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/runbookdev/runbook/test/sandbox"
)

type ghWorkflow struct {
	Env  map[string]string `yaml:"env"`
	Jobs map[string]*ghJob `yaml:"jobs"`
}

type ghJob struct {
	If    string            `yaml:"if"`
	Needs stringList        `yaml:"needs"`
	Env   map[string]string `yaml:"env"`
	Steps []ghStep          `yaml:"steps"`
}

type ghStep struct {
	Name string            `yaml:"name"`
	Uses string            `yaml:"uses"`
	Run  string            `yaml:"run"`
	If   string            `yaml:"if"`
	Env  map[string]string `yaml:"env"`
	With map[string]string `yaml:"with"`
}

// stringList is a YAML string or list of strings (needs: a | needs: [a, b]).
type stringList []string

func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = []string{n.Value}
		return nil
	}
	var s []string
	if err := n.Decode(&s); err != nil {
		return err
	}
	*l = s
	return nil
}

// github runs a GitHub Actions workflow for one event.
type github struct {
	*world
	wf      *ghWorkflow
	secrets map[string]string
	event   string
	// token is github.token; pr the pull request's number (pull_request events);
	// ghState the gh stand-in's state file and repo the repository it serves.
	token, ghState, repo string
	pr                   int
}

func loadGitHub(t *testing.T, path string) *ghWorkflow {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var wf ghWorkflow
	if err := yaml.Unmarshal(b, &wf); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &wf
}

// order sorts jobs so that each comes after what it needs (then by name).
func (g *github) order() []string {
	var names []string
	for n := range g.wf.Jobs {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []string
	done := map[string]bool{}
	var visit func(string)
	visit = func(n string) {
		if done[n] {
			return
		}
		done[n] = true
		for _, d := range g.wf.Jobs[n].Needs {
			if g.wf.Jobs[d] == nil {
				g.t.Fatalf("job %s needs unknown job %s", n, d)
			}
			visit(d)
		}
		out = append(out, n)
	}
	for _, n := range names {
		visit(n)
	}
	return out
}

var ghExpr = regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)

// expr evaluates the few expressions the snippets use; anything else fails the test.
func (g *github) expr(e string) string {
	e = strings.TrimSpace(e)
	if name, ok := strings.CutPrefix(e, "secrets."); ok {
		v, ok := g.secrets[name]
		if !ok {
			g.t.Fatalf("the harness has no secret %s", name)
		}
		return v
	}
	switch e {
	case "github.token":
		if g.token == "" {
			g.t.Fatal("the harness has no github.token for this run")
		}
		return g.token
	case "github.event.pull_request.number":
		if g.event != "pull_request" {
			return "" // the event has no pull_request
		}
		return strconv.Itoa(g.pr)
	}
	g.t.Fatalf("the harness does not evaluate ${{ %s }}", e)
	return ""
}

// cond evaluates an if: condition.
func (g *github) cond(c string, upstreamOK bool) bool {
	c = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(c), "${{"), "}}"))
	switch c {
	case "":
		return upstreamOK
	case "always()":
		return true
	case "success()":
		return upstreamOK
	}
	if m := regexp.MustCompile(`^github\.event_name == '([a-z_]+)'$`).FindStringSubmatch(c); m != nil {
		return upstreamOK && g.event == m[1]
	}
	g.t.Fatalf("the harness does not evaluate if: %s", c)
	return false
}

func (g *github) env(layers ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, l := range layers {
		for k, v := range l {
			out[k] = ghExpr.ReplaceAllStringFunc(v, func(m string) string { return g.expr(ghExpr.FindStringSubmatch(m)[1]) })
		}
	}
	for k, v := range g.overrides {
		out[k] = v
	}
	return out
}

// run runs every job of the workflow for the event, in dependency order.
func (g *github) run() map[string]jobResult {
	results := map[string]jobResult{}
	for _, name := range g.order() {
		job := g.wf.Jobs[name]
		upstreamOK := true
		for _, d := range job.Needs {
			if r := results[d]; !r.ran || r.code != 0 {
				upstreamOK = false
			}
		}
		if !g.cond(job.If, upstreamOK) {
			results[name] = jobResult{}
			continue
		}
		results[name] = g.job(name, job)
	}
	return results
}

func (g *github) job(name string, job *ghJob) jobResult {
	g.t.Helper()
	dir := g.checkout()
	state := g.t.TempDir()
	summary, pathFile := filepath.Join(state, "summary.md"), filepath.Join(state, "path")
	writeFile(g.t, summary, "")
	writeFile(g.t, pathFile, "")
	res := jobResult{ran: true, dir: dir}
	var log strings.Builder
	for i, st := range job.Steps {
		if !g.cond(st.If, res.code == 0) {
			continue
		}
		label := st.Name
		if label == "" {
			label = st.Uses
		}
		fmt.Fprintf(&log, "--- %s / step %d: %s\n", name, i+1, label)
		switch action, _, _ := strings.Cut(st.Uses, "@"); {
		case st.Run != "":
			if ghExpr.MatchString(st.Run) {
				// Expressions in scripts are a script-injection risk; the snippets pass
				// values through env instead, and so must any change to them.
				g.t.Fatalf("step %q interpolates ${{ }} into its script", label)
			}
			env := g.env(g.wf.Env, job.Env, st.Env)
			env["GITHUB_STEP_SUMMARY"], env["GITHUB_PATH"], env["RUNNER_TEMP"] = summary, pathFile, g.t.TempDir()
			env["GITHUB_WORKSPACE"], env["GITHUB_EVENT_NAME"], env["GOPATH"] = dir, g.event, filepath.Join(state, "gopath")
			env["GITHUB_REPOSITORY"], env[fakeGHStateEnv] = g.repo, g.ghState
			if extra := readLines(g.t, pathFile); len(extra) > 0 {
				env["PATH"] = strings.Join(extra, ":") + ":" + g.fakeBin + ":" + os.Getenv("PATH")
			}
			code, out := g.shell(dir, env, st.Run)
			log.WriteString(out)
			if code != 0 {
				fmt.Fprintf(&log, "--- exit %d\n", code)
				res.code = code
			}
		case action == "actions/checkout", action == "actions/setup-go":
			// The workspace is a fresh clone already; Go is the runner's.
		case action == "actions/upload-artifact":
			saved := g.saveArtifacts(dir, st.With["name"], strings.Fields(st.With["path"]))
			fmt.Fprintf(&log, "uploaded %v\n", saved)
		case action == "actions/download-artifact":
			g.loadArtifacts(dir, st.With["name"], true)
		default:
			g.t.Fatalf("the harness does not emulate %s", st.Uses)
		}
	}
	res.log = log.String()
	b, _ := os.ReadFile(summary)
	res.summary = string(b)
	return res
}

func readLines(t *testing.T, path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// TestGitHubActionsSnippet: a pull request validates and plans (exit 4 shown in the
// summary, apply skipped) and puts the plan in one comment, which a second push
// updates; the merge plans again, comments nothing, and applies the reviewed plan,
// migrating the example's pods on the test cluster.
func TestGitHubActionsSnippet(t *testing.T) {
	c := sandbox.ForTest(t)
	w := newWorld(t, c)
	wf := loadGitHub(t, "../../docs/ci/github-actions.yml")
	secrets := map[string]string{"KUBECONFIG_STAGING": w.kubeconfigBase64()}
	const repo, token, pr, marker = "acme/infra", "ghs_test-token", 42, "<!-- runbook-plan migrate-ippool sandbox -->"
	const unrelated = "LGTM, but please plan it in staging first."
	ghState := w.installFakeGH(repo, token)
	st := readState(t, ghState)
	st.add(pr, unrelated)
	st.add(pr+1, marker+"\nthe plan of another pull request")
	writeState(t, ghState, st)
	run := func(event string) map[string]jobResult {
		return (&github{world: w, wf: wf, secrets: secrets, event: event, token: token, pr: pr, ghState: ghState, repo: repo}).run()
	}

	pr1 := run("pull_request")
	for _, j := range []string{"validate", "plan"} {
		if !pr1[j].ran || pr1[j].code != 0 {
			t.Fatalf("pull request: job %s: %s", j, pr1[j])
		}
	}
	if pr1["apply"].ran {
		t.Fatalf("pull request: apply ran: %s", pr1["apply"])
	}
	mustContain(t, "PR plan summary", pr1["plan"].summary, marker,
		"### runbook plan: `migrate-ippool` in **sandbox** — 5 step(s) to change", "| `+` | add-new-pool | ensurePool | create | create pool new-pool 10.0.0.0/16", "<details><summary>Details of each step</summary>")
	mustContain(t, "PR validate log", pr1["validate"].log, "runbooks/migrate-ippool/runbook.yaml: valid (6 steps)")
	mustContain(t, "PR plan log", pr1["plan"].log, "added the plan comment")
	st = readState(t, ghState)
	plan1 := readPlan(t, pr1["plan"])
	first := requireOnePlanComment(t, *st, pr, marker, unrelated, plan1)
	if got := strings.Join(st.methods(), " "); got != "GET POST" {
		t.Fatalf("first push: gh calls %s, want GET POST: %+v", got, st.Calls)
	}
	if other := st.on(pr + 1); len(other) != 1 || other[0].Body != marker+"\nthe plan of another pull request" {
		t.Fatalf("another pull request's comment changed: %+v", other)
	}

	w.push("runbooks/migrate-ippool/NOTES.md", "reviewed\n") // a second push to the branch
	pr2 := run("pull_request")
	if !pr2["plan"].ran || pr2["plan"].code != 0 {
		t.Fatalf("second push: job plan: %s", pr2["plan"])
	}
	mustContain(t, "second push plan log", pr2["plan"].log, fmt.Sprintf("updated comment %d", first.ID))
	st = readState(t, ghState)
	plan2 := readPlan(t, pr2["plan"])
	if plan2 == plan1 {
		t.Fatal("the second push planned the same Markdown; the test cannot tell an update from none")
	}
	second := requireOnePlanComment(t, *st, pr, marker, unrelated, plan2)
	if second.ID != first.ID {
		t.Fatalf("the second push's plan is comment %d, the first's %d", second.ID, first.ID)
	}
	if got := strings.Join(st.methods(), " "); got != "GET POST GET PATCH" {
		t.Fatalf("gh calls %s, want GET POST GET PATCH: %+v", got, st.Calls)
	}
	before := len(st.Calls)

	merge := run("push")
	for _, j := range []string{"validate", "plan", "apply"} {
		if !merge[j].ran || merge[j].code != 0 {
			t.Fatalf("merge: job %s: %s", j, merge[j])
		}
	}
	if st = readState(t, ghState); len(st.Calls) != before {
		t.Fatalf("the merge pipeline called gh: %+v", st.Calls[before:])
	}
	mustContain(t, "apply summary", merge["apply"].summary, "## runbook migrate-ippool", ": **done**", "| environment | sandbox |", "| move-pods | deletePodsInPool | done | true |")
	mustContain(t, "apply log", merge["apply"].log, "uploaded [report.json report.md]")
	requireMigrated(t, c)
}
