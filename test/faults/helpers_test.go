package faults

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/test/sandbox"
	"github.com/runbookdev/runbook/test/sandbox/faultproxy"
	"github.com/runbookdev/runbook/test/scenarios"
	"github.com/runbookdev/runbook/test/testbin"
)

const (
	journalNS   = "runbook-system"
	journalCM   = "runbook-migrate-ippool"
	oldPool     = "default-ipv4-ippool"
	newPoolCIDR = "10.0.0.0/16"
)

var (
	repo      = filepath.Join("..", "..", "examples", "migrate-ippool")
	exampleRB = filepath.Join(repo, "runbook.yaml")
	values    = filepath.Join(repo, "values", "sandbox.yaml")
	ippools   = schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "ippools"}
)

// runbookBinary is the CLI the campaign drives, built once for all test
// packages (test/testbin).
func runbookBinary(t *testing.T) string {
	t.Helper()
	return testbin.Runbook(t)
}

// startProxy puts the sandbox's fault proxy between the CLI and the apiserver and
// returns it with a kubeconfig that goes through it.
func startProxy(t *testing.T, c *sandbox.Cluster) (*faultproxy.Proxy, string) {
	t.Helper()
	p, err := c.StartFaultProxy()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "proxy.kubeconfig")
	if err := p.WriteKubeconfig(kubeconfig); err != nil {
		t.Fatal(err)
	}
	return p, kubeconfig
}

// slowScenario is the doc's cluster with pods that take startDelay to become
// Ready, so deletePodsInPool lasts long enough for a fault to land inside it.
func slowScenario(t *testing.T, startDelay time.Duration) *scenarios.Scenario {
	t.Helper()
	s, err := scenarios.Load(scenarios.Default)
	if err != nil {
		t.Fatal(err)
	}
	s.Pods.StartDelay = metav1.Duration{Duration: startDelay}
	return s
}

// event is one JSON line of `runbook apply -o json`.
type event struct {
	Type    string `json:"type"`
	Step    string `json:"step"`
	Status  string `json:"status"`
	Pod     string `json:"pod"`
	Message string `json:"message"`
}

// apply is a running `runbook apply` of the example migration.
type apply struct {
	cmd    *exec.Cmd
	events chan event // closed when stdout ends
	out    *bytes.Buffer
	errOut *bytes.Buffer
	mu     sync.Mutex
	code   int
	done   chan struct{}
}

// startApply starts the example migration with -o json, so the test can act on
// its progress (a step starting, a pod evicted) while it runs.
func startApply(t *testing.T, kubeconfig string, extra ...string) *apply {
	t.Helper()
	args := append([]string{"apply", exampleRB, "-f", values, "-n", journalNS, "--yes", "-o", "json", "--kubeconfig", kubeconfig}, extra...)
	cmd := exec.Command(runbookBinary(t), args...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	a := &apply{cmd: cmd, events: make(chan event, 4096), out: &bytes.Buffer{}, errOut: &bytes.Buffer{}, done: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &lockedWriter{mu: &a.mu, w: a.errOut}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			a.mu.Lock()
			a.out.Write(line)
			a.out.WriteByte('\n')
			a.mu.Unlock()
			var e event
			if json.Unmarshal(line, &e) == nil && e.Type != "" {
				select {
				case a.events <- e:
				default: // nobody listening any more
				}
			}
		}
		close(a.events)
		err := cmd.Wait()
		var ee *exec.ExitError
		a.mu.Lock()
		switch {
		case errors.As(err, &ee):
			a.code = ee.ExitCode()
		case err != nil:
			a.code = -1
		}
		a.mu.Unlock()
		close(a.done)
	}()
	t.Cleanup(func() {
		select {
		case <-a.done:
		default:
			_ = cmd.Process.Kill()
			<-a.done
		}
	})
	return a
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// until waits for the first event matching ok; false when the run ended first.
func (a *apply) until(ok func(event) bool) (event, bool) {
	for e := range a.events {
		if ok(e) {
			return e, true
		}
	}
	return event{}, false
}

// wait waits for the run to end (draining events) and returns its exit code.
func (a *apply) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	go func() {
		for range a.events {
		}
	}()
	select {
	case <-a.done:
	case <-time.After(within):
		_ = a.cmd.Process.Kill()
		<-a.done
		t.Fatalf("the run did not end within %v\n%s", within, a.output())
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.code
}

func (a *apply) output() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return "stdout:\n" + a.out.String() + "\nstderr:\n" + a.errOut.String()
}

// cli runs the binary to completion and returns its exit code and output.
func cli(t *testing.T, kubeconfig string, args ...string) (int, string) {
	t.Helper()
	r := testbin.Run(t, testbin.Opts{Kubeconfig: kubeconfig, Env: []string{"NO_COLOR=1"}, Timeout: 5 * time.Minute}, args...)
	return r.Code, r.Stdout + r.Stderr
}

// loadJournal reads the run journal the way a resume does: Load verifies its
// format and sha256 checksum, so a half-written journal fails here.
func loadJournal(ctx context.Context, t *testing.T, cs kubernetes.Interface) *engine.Journal {
	t.Helper()
	j, _, err := (&engine.ConfigMapStore{Client: cs, Namespace: journalNS, Name: journalCM}).Load(ctx)
	if err != nil {
		t.Fatalf("the journal does not load: %v", err)
	}
	if j == nil {
		t.Fatal("no journal")
	}
	return j
}

// requireMigrated checks the end state of a finished migration: the old pool gone,
// every running pod off the host network in the new pool, the verification
// namespace gone, the lock released, the journal's run finished with every step
// done once.
func requireMigrated(ctx context.Context, t *testing.T, c *sandbox.Cluster) {
	t.Helper()
	cs := kubernetes.NewForConfigOrDie(c.RESTConfig())
	dyn := dynamic.NewForConfigOrDie(c.RESTConfig())
	if _, err := dyn.Resource(ippools).Get(ctx, oldPool, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("old pool %s: still there (err %v)", oldPool, err)
	}
	want := netip.MustParsePrefix(newPoolCIDR)
	// Replacements may still be starting when apply returns (the step waits for
	// owners' Ready counts, not for every pod): wait a little for Running.
	var bad []string
	err := wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		bad = bad[:0]
		for _, p := range pods.Items {
			if p.Spec.HostNetwork || p.DeletionTimestamp != nil {
				continue
			}
			if p.Status.Phase != corev1.PodRunning {
				bad = append(bad, fmt.Sprintf("%s/%s %s", p.Namespace, p.Name, p.Status.Phase))
				continue
			}
			for _, ip := range p.Status.PodIPs {
				if a, err := netip.ParseAddr(ip.IP); err != nil || !want.Contains(a) {
					bad = append(bad, fmt.Sprintf("%s/%s has %s", p.Namespace, p.Name, ip.IP))
				}
			}
		}
		return len(bad) == 0, nil
	})
	if err != nil {
		t.Errorf("pods not all Running in %s: %s", newPoolCIDR, strings.Join(bad, ", "))
	}
	if ns, err := cs.CoreV1().Namespaces().Get(ctx, "ippool-test", metav1.GetOptions{}); err == nil && ns.DeletionTimestamp == nil {
		t.Errorf("verification namespace ippool-test left behind")
	}
	if l, err := cs.CoordinationV1().Leases(journalNS).Get(ctx, "runbook-lock-calico-ipam", metav1.GetOptions{}); err == nil &&
		l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "" {
		t.Errorf("lock still held by %q", *l.Spec.HolderIdentity)
	}
	j := loadJournal(ctx, t, cs)
	if j.Status != engine.StatusDone {
		t.Errorf("journal status %q, want done (error %q)", j.Status, j.Error)
	}
	for id, s := range j.Steps {
		if s.Status != engine.StatusDone {
			t.Errorf("step %s: %s (%s)", id, s.Status, s.Error)
		}
	}
}

// campaignEnv turns the campaign on: it starts a cluster of its own per scenario
// (about ten in all), too long for every `make test`; the long CI job sets it.
const campaignEnv = "RUNBOOK_FAULTS"

func requireCampaign(t *testing.T) {
	t.Helper()
	if os.Getenv(campaignEnv) != "1" {
		t.Skipf("the fault campaign runs with %s=1 (a cluster per scenario)", campaignEnv)
	}
}
