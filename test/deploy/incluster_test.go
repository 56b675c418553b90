package deploy

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/test/sandbox"
	"github.com/runbookdev/runbook/test/testbin"
)

// podEnv is what a pod of the runbook ServiceAccount sees: the kubernetes Service's
// address in its environment, and the token, CA and namespace files.
type podEnv struct {
	host, port string
	secretsDir string // mounted at /var/run/secrets/kubernetes.io/serviceaccount
}

func newPodEnv(t *testing.T, cs kubernetes.Interface, hostPort string, caPEM []byte) podEnv {
	t.Helper()
	exp := int64(3600)
	tr, err := cs.CoreV1().ServiceAccounts("runbook-system").CreateToken(context.Background(), "runbook",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for the runbook ServiceAccount: %v", err)
	}
	dir := t.TempDir()
	for name, content := range map[string][]byte{"token": []byte(tr.Status.Token), "ca.crt": caPEM, "namespace": []byte("runbook-system")} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	host, port, _ := strings.Cut(hostPort, ":")
	return podEnv{host: host, port: port, secretsDir: dir}
}

// mountScript runs the binary in a mount namespace of its own where the fixed
// path client-go's rest.InClusterConfig reads holds the pod's files: the unmodified
// binary, nothing test-only in it. /run (where /var/run points) is a fresh tmpfs in
// that namespace only, so the host is untouched.
const mountScript = `set -e
run=$(readlink -f /var/run)
mount -t tmpfs tmpfs "$run"
mkdir -p "$run/secrets/kubernetes.io/serviceaccount"
mount --bind "$SECRETS_DIR" "$run/secrets/kubernetes.io/serviceaccount"
exec "$@"`

// result is a finished run of the binary (testbin's, whichever way it ran).
type result = testbin.Result

// run runs the binary as in the pod.
func (p podEnv) run(t *testing.T, dir string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	argv := append([]string{"-m", "--propagation", "private", "sh", "-c", mountScript, "sh", testbin.Runbook(t)}, args...)
	cmd := exec.CommandContext(ctx, "unshare", argv...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "SECRETS_DIR=" + p.secretsDir,
		"KUBERNETES_SERVICE_HOST=" + p.host, "KUBERNETES_SERVICE_PORT=" + p.port, "NO_COLOR=1"}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := result{Args: args, Stdout: out.String(), Stderr: errOut.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return r
}

// requireMountNamespaces skips where a private mount namespace cannot be made
// (not root, no unshare), except in CI, which runs as root and must run this.
func requireMountNamespaces(t *testing.T) {
	t.Helper()
	err := exec.Command("unshare", "-m", "--propagation", "private", "true").Run()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("unshare -m: %v (CI runs as root and must run the in-cluster test)", err)
	}
	t.Skipf("unshare -m: %v (needs root)", err)
}

// requireAllowed fails the test for every recorded call that no rule allows (the
// bootstrap policy's grants to every user aside: those need no rule) and returns
// the rules the calls used.
func requireAllowed(t *testing.T, rules ruleSet, calls []apiCall) map[ruleKey]bool {
	t.Helper()
	var denied []string
	used := map[ruleKey]bool{}
	for _, call := range calls {
		if grantedToEveryone[apiCall{Verb: call.Verb, Group: call.Group, Resource: call.Resource, Namespace: call.Namespace}] {
			continue
		}
		keys := rules.allowing(call)
		if len(keys) == 0 {
			denied = append(denied, call.String())
		}
		for _, k := range keys {
			used[k] = true
		}
	}
	if len(denied) > 0 {
		t.Errorf("requests the RBAC does not allow (the apiserver would have refused them):\n  %s", strings.Join(denied, "\n  "))
	}
	return used
}

// grantedToEveryone are calls the default bootstrap policy allows every
// authenticated identity (ClusterRole system:basic-user), so deploy/rbac.yaml need
// not grant them: the permissions preflight asks about itself with
// SelfSubjectAccessReviews.
var grantedToEveryone = map[apiCall]bool{
	{Verb: "create", Group: "authorization.k8s.io", Resource: "selfsubjectaccessreviews"}: true,
}

// TestInClusterAsServiceAccount applies deploy/rbac.yaml, then runs the example
// migration with the binary's in-cluster configuration as the runbook
// ServiceAccount: once straight to the apiserver, once through a proxy that records
// every request. The migration succeeding proves the RBAC sufficient; every rule
// being used (or listed below with the path that needs it) proves it minimal.
func TestInClusterAsServiceAccount(t *testing.T) {
	requireMountNamespaces(t)
	c := sandbox.ForTest(t)
	ctx := context.Background()
	a := newApplier(t, c.RESTConfig())
	for _, u := range readObjects(t, "../../deploy/rbac.yaml") {
		if err := a.apply(ctx, u, false); err != nil {
			t.Fatalf("apply %s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
	cs := kubernetes.NewForConfigOrDie(c.RESTConfig())
	repo := filepath.Join("..", "..", "examples", "migrate-ippool")
	rb, values := filepath.Join(repo, "runbook.yaml"), filepath.Join(repo, "values", "sandbox.yaml")

	// Straight to the apiserver, with its CA, as a pod in the cluster would.
	apiserver, err := url.Parse(c.RESTConfig().Host)
	if err != nil {
		t.Fatal(err)
	}
	direct := newPodEnv(t, cs, apiserver.Host, c.RESTConfig().CAData)
	direct.run(t, ".", "plan", rb, "-f", values, "-n", "runbook-system").Must(t, 4, "Plan for migrate-ippool")
	noToken := direct
	noToken.secretsDir = t.TempDir()
	r := noToken.run(t, ".", "history", "-n", "runbook-system")
	if r.Code == 0 {
		t.Fatalf("without a token file the in-cluster configuration still connected:\n%s%s", r.Stdout, r.Stderr)
	}

	// The full migration through the recording proxy.
	proxy := startRecordingProxy(t, c.RESTConfig())
	pod := newPodEnv(t, cs, proxy.addr, proxy.caPEM)
	report := filepath.Join(t.TempDir(), "report.md")
	pod.run(t, ".", "apply", rb, "-f", values, "-n", "runbook-system", "--yes", "--report", report).
		Must(t, 0, "run ", ": done")
	pod.run(t, ".", "history", "-n", "runbook-system").Must(t, 0, "migrate-ippool", "done")
	// A second apply changes nothing (and exercises the archive of a finished run).
	pod.run(t, ".", "apply", rb, "-f", values, "-n", "runbook-system", "--yes").Must(t, 0, "✓ unchanged move-pods")

	rules := loadRules(t, "../../deploy/rbac.yaml", "runbook-system", "runbook")
	calls := proxy.recorded()
	used := requireAllowed(t, rules, calls)
	_, flavours := declaredNeeds()
	var unused []string
	for _, k := range rules.keys() {
		if used[k] {
			continue
		}
		if onlyFor(flavours[k], decl.FlavourCRD) {
			// The sandbox is a manifest install: the Calico API server and operator
			// rules are proved by TestLeastPrivilegePerFlavour.
			t.Logf("rule %s: not used on a manifest install; needed on flavour(s) %v", k, flavours[k])
			continue
		}
		if why, ok := notOnTheHappyPath[k.String()]; ok {
			t.Logf("rule %s: not used by this migration; needed %s", k, why)
			continue
		}
		unused = append(unused, k.String())
	}
	if len(unused) > 0 {
		t.Errorf("rules no request used (drop them, or name the code path in notOnTheHappyPath):\n  %s", strings.Join(unused, "\n  "))
	}
	if t.Failed() {
		var all []string
		for _, c := range calls {
			all = append(all, c.String())
		}
		t.Logf("recorded requests:\n  %s", strings.Join(all, "\n  "))
	}
}
