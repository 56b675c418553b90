package cisnippets

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/runbookdev/runbook/test/sandbox"
)

type glJob struct {
	Stage        string            `yaml:"stage"`
	Script       []string          `yaml:"script"`
	BeforeScript []string          `yaml:"before_script"`
	Variables    map[string]string `yaml:"variables"`
	Rules        []glRule          `yaml:"rules"`
	Needs        []string          `yaml:"needs"`
	Artifacts    struct {
		Paths []string `yaml:"paths"`
		When  string   `yaml:"when"`
	} `yaml:"artifacts"`
}

type glRule struct {
	If   string `yaml:"if"`
	When string `yaml:"when"`
}

type glPipeline struct {
	Stages    []string
	Variables map[string]string
	Default   struct {
		BeforeScript []string `yaml:"before_script"`
	}
	Jobs map[string]*glJob
}

// keywords are the top-level keys that are not jobs.
var glKeywords = map[string]bool{"stages": true, "variables": true, "default": true, "workflow": true, "include": true,
	"image": true, "services": true, "before_script": true, "after_script": true, "cache": true}

func loadGitLab(t *testing.T, path string) *glPipeline {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]yaml.Node
	if err := yaml.Unmarshal(b, &top); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	p := &glPipeline{Jobs: map[string]*glJob{}}
	decode := func(key string, into any) {
		if n, ok := top[key]; ok {
			if err := n.Decode(into); err != nil {
				t.Fatalf("%s: %s: %v", path, key, err)
			}
		}
	}
	decode("stages", &p.Stages)
	decode("variables", &p.Variables)
	decode("default", &p.Default)
	for key, n := range top {
		if glKeywords[key] || strings.HasPrefix(key, ".") {
			continue
		}
		var j glJob
		if err := n.Decode(&j); err != nil {
			t.Fatalf("%s: job %s: %v", path, key, err)
		}
		p.Jobs[key] = &j
	}
	return p
}

// gitlab runs a pipeline for one source (a merge request, or the default branch).
type gitlab struct {
	*world
	p      *glPipeline
	vars   map[string]string // predefined CI variables for this pipeline
	files  map[string]string // File-type CI/CD variables: name → content
	manual bool              // a person starts manual jobs
}

var glCompare = regexp.MustCompile(`^(\$\w+|"[^"]*")\s*==\s*(\$\w+|"[^"]*")$`)

// rule decides whether a job is in the pipeline, and whether it is manual.
func (g *gitlab) rule(job *glJob) (in, manual bool) {
	if len(job.Rules) == 0 {
		return true, false
	}
	for _, r := range job.Rules {
		m := glCompare.FindStringSubmatch(strings.TrimSpace(r.If))
		if m == nil {
			g.t.Fatalf("the harness does not evaluate rules: if: %s", r.If)
		}
		if g.operand(m[1]) == g.operand(m[2]) {
			switch r.When {
			case "", "on_success":
				return true, false
			case "manual":
				return true, true
			case "never":
				return false, false
			}
			g.t.Fatalf("the harness does not know when: %s", r.When)
		}
	}
	return false, false
}

func (g *gitlab) operand(s string) string {
	if name, ok := strings.CutPrefix(s, "$"); ok {
		return g.vars[name]
	}
	return strings.Trim(s, `"`)
}

// run runs the pipeline stage by stage; jobs of a stage in name order.
func (g *gitlab) run() map[string]jobResult {
	results := map[string]jobResult{}
	failed := false
	for _, stage := range g.p.Stages {
		var names []string
		for n, j := range g.p.Jobs {
			if j.Stage == stage {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		for _, name := range names {
			job := g.p.Jobs[name]
			in, manual := g.rule(job)
			if !in || failed || (manual && !g.manual) {
				results[name] = jobResult{}
				continue
			}
			r := g.job(name, job, results)
			results[name] = r
			failed = failed || r.code != 0
		}
	}
	return results
}

func (g *gitlab) job(name string, job *glJob, earlier map[string]jobResult) jobResult {
	g.t.Helper()
	dir := g.checkout()
	// Artifacts of the jobs it needs (or, without needs, of every earlier job).
	for prev, r := range earlier {
		if r.ran && (len(job.Needs) == 0 || slices.Contains(job.Needs, prev)) {
			g.loadArtifacts(dir, "gitlab-"+prev, false)
		}
	}
	env := map[string]string{"GOPATH": filepath.Join(g.t.TempDir(), "gopath")}
	for k, v := range g.vars {
		env[k] = v
	}
	for k, content := range g.files {
		path := filepath.Join(g.t.TempDir(), k)
		writeFile(g.t, path, content)
		env[k] = path // a File variable is the path of a file holding the value
	}
	for _, layer := range []map[string]string{g.p.Variables, job.Variables, g.overrides} {
		for k, v := range layer {
			env[k] = v
		}
	}
	before := job.BeforeScript
	if before == nil {
		before = g.p.Default.BeforeScript
	}
	// The runner runs the lines in one shell, stopping at the first failing line.
	script := strings.Join(append(append([]string(nil), before...), job.Script...), "\n")
	code, out := g.shell(dir, env, script)
	res := jobResult{ran: true, code: code, log: fmt.Sprintf("--- %s\n%s", name, out), dir: dir}
	if code == 0 || job.Artifacts.When == "always" {
		saved := g.saveArtifacts(dir, "gitlab-"+name, job.Artifacts.Paths)
		res.log += fmt.Sprintf("uploaded %v\n", saved)
	}
	return res
}

// TestGitLabCISnippet: a merge request pipeline validates, plans and puts the plan
// in one note (an emulated notes API on 127.0.0.1), which a second push updates;
// the default branch pipeline plans, posts nothing and, once the manual apply job
// is started, applies the reviewed plan on a cluster of its own.
func TestGitLabCISnippet(t *testing.T) {
	c := sandbox.StartForTest(t, sandbox.Options{})
	w := newWorld(t, c)
	p := loadGitLab(t, "../../docs/ci/gitlab-ci.yml")
	files := map[string]string{"KUBECONFIG_STAGING": string(w.kubeconfigBytes())}
	const project, token, iid, marker = "1234", "glpat-test-token", 7, "<!-- runbook-plan migrate-ippool sandbox -->"
	const unrelated = "Please plan it in staging first."
	notes, api := startGitLabNotes(t, project, token)
	notes.mu.Lock()
	// More notes than a page holds, the plan's would-be place on the second page.
	for i := 0; i < 100; i++ {
		notes.s.add(iid, fmt.Sprintf("review note %d", i))
	}
	notes.s.add(iid, unrelated)
	notes.mu.Unlock()
	mrVars := map[string]string{"CI_PIPELINE_SOURCE": "merge_request_event", "CI_COMMIT_BRANCH": "", "CI_DEFAULT_BRANCH": "main",
		"CI_API_V4_URL": api, "CI_PROJECT_ID": project, "CI_MERGE_REQUEST_IID": strconv.Itoa(iid), "RUNBOOK_GITLAB_TOKEN": token}
	reviewNotes := func(s commentState) {
		t.Helper()
		kept := commentState{}
		for _, n := range s.Comments {
			if !strings.HasPrefix(n.Body, "review note ") {
				kept.Comments = append(kept.Comments, n)
			} else if n.Body != fmt.Sprintf("review note %d", n.ID-1) {
				t.Fatalf("note %d changed: %q", n.ID, n.Body)
			}
		}
		if len(s.Comments)-len(kept.Comments) != 100 {
			t.Fatalf("review notes lost: %+v", s.Comments)
		}
	}

	mr := (&gitlab{world: w, p: p, files: files, vars: mrVars}).run()
	for _, j := range []string{"validate", "plan"} {
		if !mr[j].ran || mr[j].code != 0 {
			t.Fatalf("merge request: job %s: %s", j, mr[j])
		}
	}
	if mr["apply"].ran {
		t.Fatalf("merge request: apply ran: %s", mr["apply"])
	}
	mustContain(t, "MR plan log", mr["plan"].log, marker, "### runbook plan: `migrate-ippool` in **sandbox** — 5 step(s) to change",
		"| `+` | add-new-pool | ensurePool | create |", "added the plan note", "uploaded [plan.json plan.md]")
	s := notes.state()
	reviewNotes(s)
	first := requireOnePlanComment(t, filterReview(s), iid, marker, unrelated, readPlan(t, mr["plan"]))
	if got := callList(s); got != "GET page=1 GET page=2 POST" {
		t.Fatalf("first push: API calls %s: %+v", got, s.Calls)
	}

	w.push("runbooks/migrate-ippool/NOTES.md", "reviewed\n") // a second push to the branch
	mr2 := (&gitlab{world: w, p: p, files: files, vars: mrVars}).run()
	if !mr2["plan"].ran || mr2["plan"].code != 0 {
		t.Fatalf("second push: job plan: %s", mr2["plan"])
	}
	mustContain(t, "second push plan log", mr2["plan"].log, fmt.Sprintf("updated note %d", first.ID))
	s = notes.state()
	reviewNotes(s)
	plan2 := readPlan(t, mr2["plan"])
	if plan2 == first.Body {
		t.Fatal("the second push planned the same Markdown; the test cannot tell an update from none")
	}
	if second := requireOnePlanComment(t, filterReview(s), iid, marker, unrelated, plan2); second.ID != first.ID {
		t.Fatalf("the second push's plan is note %d, the first's %d", second.ID, first.ID)
	}
	if got := callList(s); got != "GET page=1 GET page=2 POST GET page=1 GET page=2 PUT" {
		t.Fatalf("API calls %s: %+v", got, s.Calls)
	}
	before := len(s.Calls)

	mainVars := map[string]string{"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main", "CI_DEFAULT_BRANCH": "main",
		"CI_API_V4_URL": api, "CI_PROJECT_ID": project, "RUNBOOK_GITLAB_TOKEN": token}
	main := &gitlab{world: w, p: p, files: files, vars: mainVars}
	if r := main.run(); r["apply"].ran {
		t.Fatalf("the manual apply ran without anyone starting it: %s", r["apply"])
	}
	main.manual = true // someone reviewed the plan and starts the job
	r := main.run()
	for _, j := range []string{"validate", "plan", "apply"} {
		if !r[j].ran || r[j].code != 0 {
			t.Fatalf("default branch: job %s: %s", j, r[j])
		}
	}
	if s = notes.state(); len(s.Calls) != before {
		t.Fatalf("the default branch pipeline called the notes API: %+v", s.Calls[before:])
	}
	mustContain(t, "apply log", r["apply"].log, "run ", ": done", "uploaded [report.md report.json]")
	report, err := os.ReadFile(filepath.Join(r["apply"].dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "report.md", string(report), ": **done**", "| environment | sandbox |", "| move-pods | deletePodsInPool | done | true |")
	requireMigrated(t, c)
}

// filterReview drops the filler review notes.
func filterReview(s commentState) commentState {
	out := s
	out.Comments = nil
	for _, n := range s.Comments {
		if !strings.HasPrefix(n.Body, "review note ") {
			out.Comments = append(out.Comments, n)
		}
	}
	return out
}

// callList is the notes API calls as "GET page=1 POST …".
func callList(s commentState) string {
	var out []string
	for _, c := range s.Calls {
		if c.Method == "GET" {
			out = append(out, "GET page="+c.Query)
		} else {
			out = append(out, c.Method)
		}
	}
	return strings.Join(out, " ")
}
