package cisnippets

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// A comment on a pull request (GitHub) or a note on a merge request (GitLab).
type comment struct {
	ID    int    `json:"id"`
	Issue int    `json:"issue"` // the PR/MR number it is on
	Body  string `json:"body"`
}

// call is one API request a stand-in served, for the tests' assertions.
type call struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Query  string `json:"query,omitempty"` // GitLab: the page asked for
}

// commentState is what the stand-ins keep: the comments and every call made.
type commentState struct {
	Token    string    `json:"token"` // the one token accepted
	Repo     string    `json:"repo"`  // owner/name (GitHub) or project id (GitLab)
	NextID   int       `json:"nextID"`
	Comments []comment `json:"comments"`
	Calls    []call    `json:"calls"`
}

func (s *commentState) find(id int) *comment {
	for i := range s.Comments {
		if s.Comments[i].ID == id {
			return &s.Comments[i]
		}
	}
	return nil
}

func (s *commentState) on(issue int) []comment {
	out := []comment{}
	for _, c := range s.Comments {
		if c.Issue == issue {
			out = append(out, c)
		}
	}
	return out
}

func (s *commentState) add(issue int, body string) comment {
	s.NextID++
	c := comment{ID: s.NextID, Issue: issue, Body: body}
	s.Comments = append(s.Comments, c)
	return c
}

func (s *commentState) methods() []string {
	var out []string
	for _, c := range s.Calls {
		out = append(out, c.Method)
	}
	return out
}

func readState(t *testing.T, path string) *commentState {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s commentState
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func writeState(t *testing.T, path string, s *commentState) {
	t.Helper()
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(b))
}

// fakeGHStateEnv names the state file of the gh stand-in.
const fakeGHStateEnv = "RUNBOOK_FAKE_GH_STATE"

// installFakeGH puts the gh stand-in (this test binary, under the name gh; see
// fakeGHMain) first on PATH with an empty state for repo, accepting token.
func (w *world) installFakeGH(repo, token string) string {
	w.t.Helper()
	exe, err := os.Executable()
	if err != nil {
		w.t.Fatal(err)
	}
	if err := os.Symlink(exe, filepath.Join(w.fakeBin, "gh")); err != nil {
		w.t.Fatal(err)
	}
	state := filepath.Join(w.t.TempDir(), "gh-state.json")
	writeState(w.t, state, &commentState{Token: token, Repo: repo})
	return state
}

var (
	ghListPath  = regexp.MustCompile(`^repos/([^/]+/[^/]+)/issues/(\d+)/comments$`)
	ghEditPath  = regexp.MustCompile(`^repos/([^/]+/[^/]+)/issues/comments/(\d+)$`)
	ghBodyField = regexp.MustCompile(`^body=@(.+)$`)
)

// fakeGHMain is gh for the pipelines: `gh api` for a pull request's comments
// (GET the list, POST one, PATCH one by id) against the JSON state file named by
// RUNBOOK_FAKE_GH_STATE, recording every call. Anything else fails, so a snippet
// cannot use more of gh without this stand-in knowing.
func fakeGHMain(args []string) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "fake gh (test/cisnippets): "+format+"\n", a...)
		return 1
	}
	path := os.Getenv(fakeGHStateEnv)
	b, err := os.ReadFile(path)
	if err != nil {
		return fail("state: %v", err)
	}
	var s commentState
	if err := json.Unmarshal(b, &s); err != nil {
		return fail("state: %v", err)
	}
	if len(args) == 0 || args[0] != "api" {
		return fail("unsupported: gh %s", strings.Join(args, " "))
	}
	method, endpoint, body, hasBody, paginate := "GET", "", "", false, false
	for i := 1; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-X" && i+1 < len(args):
			i++
			method = args[i]
		case a == "--paginate":
			paginate = true
		case (a == "-F" || a == "--field") && i+1 < len(args):
			i++
			m := ghBodyField.FindStringSubmatch(args[i])
			if m == nil {
				return fail("unsupported field %s", args[i])
			}
			content, err := os.ReadFile(m[1])
			if err != nil {
				return fail("%v", err)
			}
			body, hasBody = string(content), true
		case endpoint == "" && !strings.HasPrefix(a, "-"):
			endpoint = a
		default:
			return fail("unsupported argument %q in gh %s", a, strings.Join(args, " "))
		}
	}
	if os.Getenv("GH_TOKEN") != s.Token || s.Token == "" {
		return fail("HTTP 401: Bad credentials (GH_TOKEN)")
	}
	s.Calls = append(s.Calls, call{Method: method, Path: endpoint})
	var out any
	if m := ghListPath.FindStringSubmatch(endpoint); m != nil && m[1] == s.Repo {
		n, _ := strconv.Atoi(m[2])
		switch {
		case method == "GET" && !hasBody:
			if !paginate {
				return fail("listing comments without --paginate misses all but the first 30")
			}
			out = s.on(n)
		case method == "POST" && hasBody:
			out = s.add(n, body)
		default:
			return fail("unsupported: %s %s", method, endpoint)
		}
	} else if m := ghEditPath.FindStringSubmatch(endpoint); m != nil && m[1] == s.Repo && method == "PATCH" && hasBody {
		id, _ := strconv.Atoi(m[2])
		c := s.find(id)
		if c == nil {
			return fail("HTTP 404: Not Found (%s)", endpoint)
		}
		c.Body = body
		out = *c
	} else {
		return fail("unsupported: %s %s", method, endpoint)
	}
	nb, _ := json.MarshalIndent(&s, "", "  ")
	if err := os.WriteFile(path, nb, 0o644); err != nil {
		return fail("state: %v", err)
	}
	ob, _ := json.Marshal(out)
	fmt.Println(string(ob))
	return 0
}

// gitlabNotes is GitLab's notes API of merge requests on 127.0.0.1: list (paged,
// with X-Next-Page), add, edit; PRIVATE-TOKEN must be the state's token. Bodies are
// form fields, as curl --data-urlencode sends them.
type gitlabNotes struct {
	mu sync.Mutex
	s  commentState
	t  *testing.T
}

var glNotesPath = regexp.MustCompile(`^/api/v4/projects/([^/]+)/merge_requests/(\d+)/notes(?:/(\d+))?$`)

func startGitLabNotes(t *testing.T, project, token string) (*gitlabNotes, string) {
	g := &gitlabNotes{t: t, s: commentState{Token: token, Repo: project}}
	srv := httptest.NewServer(g) // listens on 127.0.0.1
	t.Cleanup(srv.Close)
	return g, srv.URL + "/api/v4"
}

func (g *gitlabNotes) state() commentState {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.s
	s.Comments = append([]comment(nil), g.s.Comments...)
	s.Calls = append([]call(nil), g.s.Calls...)
	return s
}

func (g *gitlabNotes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.s.Calls = append(g.s.Calls, call{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query().Get("page")})
	if r.Header.Get("PRIVATE-TOKEN") != g.s.Token {
		http.Error(w, `{"message":"401 Unauthorized"}`, http.StatusUnauthorized)
		return
	}
	m := glNotesPath.FindStringSubmatch(r.URL.Path)
	if m == nil || m[1] != g.s.Repo {
		http.Error(w, `{"message":"404 Not Found"}`, http.StatusNotFound)
		return
	}
	iid, _ := strconv.Atoi(m[2])
	reply := func(code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	body := func() (string, bool) {
		if err := r.ParseForm(); err != nil {
			return "", false
		}
		b, ok := r.PostForm["body"]
		return strings.Join(b, ""), ok && len(b) == 1
	}
	switch {
	case r.Method == http.MethodGet && m[3] == "":
		perPage, page := atoiOr(r.URL.Query().Get("per_page"), 20), atoiOr(r.URL.Query().Get("page"), 1)
		all := g.s.on(iid)
		from, to := min((page-1)*perPage, len(all)), min(page*perPage, len(all))
		if to < len(all) {
			w.Header().Set("X-Next-Page", strconv.Itoa(page+1))
		} else {
			w.Header().Set("X-Next-Page", "")
		}
		reply(http.StatusOK, all[from:to])
	case r.Method == http.MethodPost && m[3] == "":
		b, ok := body()
		if !ok {
			http.Error(w, `{"message":"body is missing"}`, http.StatusBadRequest)
			return
		}
		reply(http.StatusCreated, g.s.add(iid, b))
	case r.Method == http.MethodPut && m[3] != "":
		id, _ := strconv.Atoi(m[3])
		c := g.s.find(id)
		b, ok := body()
		switch {
		case c == nil || c.Issue != iid:
			http.Error(w, `{"message":"404 Note Not Found"}`, http.StatusNotFound)
		case !ok:
			http.Error(w, `{"message":"body is missing"}`, http.StatusBadRequest)
		default:
			c.Body = b
			reply(http.StatusOK, *c)
		}
	default:
		http.Error(w, `{"message":"405 Method Not Allowed"}`, http.StatusMethodNotAllowed)
	}
}

func atoiOr(s string, def int) int {
	if n, err := strconv.Atoi(s); err == nil && n > 0 {
		return n
	}
	return def
}

// requireOnePlanComment checks the comments on issue after a pipeline: the one
// unrelated comment untouched, and exactly one starting with marker whose body is
// the plan the job wrote.
func requireOnePlanComment(t *testing.T, s commentState, issue int, marker, unrelated, plan string) comment {
	t.Helper()
	var plans []comment
	sawUnrelated := false
	for _, c := range s.on(issue) {
		switch {
		case strings.HasPrefix(c.Body, marker):
			plans = append(plans, c)
		case c.Body == unrelated:
			sawUnrelated = true
		default:
			t.Errorf("comment %d was changed or added: %q", c.ID, c.Body)
		}
	}
	if !sawUnrelated {
		t.Errorf("the unrelated comment is gone or changed: %+v", s.Comments)
	}
	if len(plans) != 1 {
		t.Fatalf("%d plan comments, want 1: %+v", len(plans), plans)
	}
	if plans[0].Body != plan {
		t.Fatalf("the plan comment is not the plan:\n--- comment\n%s\n--- plan.md\n%s", plans[0].Body, plan)
	}
	return plans[0]
}

func readPlan(t *testing.T, r jobResult) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.dir, "plan.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
