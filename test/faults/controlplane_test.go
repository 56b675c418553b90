package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/test/sandbox"
	"github.com/runbookdev/runbook/test/sandbox/faultproxy"
)

// TestControlPlaneRestartsMidRun restarts a control-plane component while the
// example migration runs, each on a fresh cluster: kube-apiserver while
// deletePodsInPool evicts (its connections refused for seconds, every watch cut),
// and etcd while ensurePool's create is on its way (held 2 s by the proxy so the
// write reaches an apiserver whose storage is gone). The run must finish in one
// invocation, with the end state of an undisturbed run.
func TestControlPlaneRestartsMidRun(t *testing.T) {
	requireCampaign(t)
	survived := 0
	for _, tc := range []struct {
		name, component string
		// viaProxy runs the CLI through the fault proxy with latency on pool
		// writes, to land the restart inside the write.
		viaProxy bool
		trigger  func(event) bool
	}{
		{name: "kube-apiserver during deletePodsInPool", component: sandbox.APIServer,
			trigger: func(e event) bool { return e.Type == "pod.evicted" }},
		{name: "etcd during a pool write", component: sandbox.Etcd, viaProxy: true,
			trigger: func(e event) bool { return e.Type == "step.start" && e.Step == "add-new-pool" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := sandbox.StartForTest(t, sandbox.Options{Scenario: slowScenario(t, 2*time.Second)})
			ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
			defer cancel()
			kubeconfig := c.KubeconfigPath()
			if tc.viaProxy {
				var p *faultproxy.Proxy
				p, kubeconfig = startProxy(t, c)
				p.Set(faultproxy.Fault{Methods: []string{"POST", "PATCH"}, Path: regexp.MustCompile(`/ippools`), Latency: 2 * time.Second, Times: 1})
			}
			start := time.Now()
			a := startApply(t, kubeconfig)
			if _, ok := a.until(tc.trigger); !ok {
				t.Fatalf("the run ended before the trigger\n%s", a.output())
			}
			down, err := c.Restart(ctx, tc.component)
			if err != nil {
				t.Fatalf("restart %s: %v", tc.component, err)
			}
			t.Logf("%s restarted %v after the run started, down %v", tc.component, time.Since(start).Round(time.Millisecond), down.Round(time.Millisecond))
			if code := a.wait(t, 5*time.Minute); code != 0 {
				t.Fatalf("the run did not ride out the %s restart: exit %d\n%s", tc.component, code, a.output())
			}
			t.Logf("run finished in %v", time.Since(start).Round(time.Millisecond))
			requireMigrated(ctx, t, c)
			if !t.Failed() {
				survived++
			}
		})
	}
	t.Logf("FAULTS: control-plane restarts survived: %d of 2", survived)
}

// seed is the fault schedule's seed: FAULT_SEED to replay one, else the time.
func seed(t *testing.T) uint64 {
	if s := os.Getenv("FAULT_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("FAULT_SEED=%q: %v", s, err)
		}
		return n
	}
	return uint64(time.Now().UnixNano())
}

// transientFaults is a seeded schedule of short-lived faults of every kind a
// flaky control plane produces: 503 with and without Retry-After, connection
// resets of reads, watches cut, and latency, each for a few requests.
func transientFaults(r *rand.Rand) []faultproxy.Fault {
	isWatch, notWatch := true, false
	kinds := []func() faultproxy.Fault{
		func() faultproxy.Fault { return faultproxy.Fault{Status: 503, Times: 1 + r.IntN(3), Watch: &notWatch} },
		func() faultproxy.Fault {
			return faultproxy.Fault{Status: 503, RetryAfter: time.Second, Times: 1 + r.IntN(2), Watch: &notWatch}
		},
		func() faultproxy.Fault {
			return faultproxy.Fault{Methods: []string{"GET"}, Reset: true, Times: 1 + r.IntN(3), Watch: &notWatch}
		},
		func() faultproxy.Fault { return faultproxy.Fault{Reset: true, Times: 1 + r.IntN(2), Watch: &isWatch} },
		func() faultproxy.Fault {
			return faultproxy.Fault{Latency: time.Duration(100+r.IntN(900)) * time.Millisecond, Times: 1 + r.IntN(5)}
		},
	}
	out := make([]faultproxy.Fault, 12+r.IntN(8))
	for i := range out {
		out[i] = kinds[r.IntN(len(kinds))]()
	}
	return out
}

func describe(fs []faultproxy.Fault) string {
	var parts []string
	for _, f := range fs {
		var s string
		switch {
		case f.Status != 0 && f.RetryAfter > 0:
			s = fmt.Sprintf("%d+Retry-After", f.Status)
		case f.Status != 0:
			s = strconv.Itoa(f.Status)
		case f.Reset && f.Watch != nil && *f.Watch:
			s = "reset-watch"
		case f.Reset:
			s = "reset-" + strings.Join(f.Methods, "")
		default:
			s = "latency " + f.Latency.String()
		}
		parts = append(parts, fmt.Sprintf("%s×%d", s, f.Times))
	}
	return strings.Join(parts, ", ")
}

// TestTransientFaultsThroughProxy runs the example migration through the fault
// proxy while a seeded schedule of transient faults is fed to it one by one: the
// run must finish in one invocation with the end state of an undisturbed run.
func TestTransientFaultsThroughProxy(t *testing.T) {
	requireCampaign(t)
	sd := seed(t)
	t.Logf("FAULTS: seed %d (FAULT_SEED=%d replays the schedule)", sd, sd)
	r := rand.New(rand.NewPCG(sd, sd^0x9e3779b97f4a7c15))
	c := sandbox.StartForTest(t, sandbox.Options{Scenario: slowScenario(t, 3*time.Second)})
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	p, kubeconfig := startProxy(t, c)
	// One fault at a time, and the next one only a seeded pause after the last
	// was used up: transient means a retry soon passes. A request retries for
	// ~12 s (internal/kuberetry: after 0.25, 0.5, 1, 2, 4, 4 s); a fault fails at
	// most 3 tries in a row, and a pause of at least 2 s keeps the next fault off
	// the same request's following tries. Queued faster than requests use them (a
	// quiet step sends few), consecutive faults would hit every retry of one
	// request: an outage, not a blip (TestPersistentFaultStopsResumable).
	faults := append(transientFaults(r), transientFaults(r)...)
	gaps := make([]time.Duration, len(faults))
	for i := range gaps {
		gaps[i] = time.Duration(2000+r.IntN(1000)) * time.Millisecond
	}
	t.Logf("schedule: %s", describe(faults))
	start := time.Now()
	a := startApply(t, kubeconfig)
	go func() {
		for i, f := range faults {
			p.Add(f)
			// A fault no request matches (a watch reset while no watch starts) is
			// dropped after a while rather than stopping the schedule.
			unused := time.Now().Add(10 * time.Second)
			for p.Pending() > 0 {
				if time.Now().After(unused) {
					p.Set()
					break
				}
				select {
				case <-a.done:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
			select {
			case <-a.done:
				return
			case <-time.After(gaps[i]):
			}
		}
	}()
	code := a.wait(t, 5*time.Minute)
	st := p.Stats()
	t.Logf("FAULTS: %d of %d requests through the proxy faulted; run exit %d in %v", st.Faulted, st.Requests, code, time.Since(start).Round(time.Millisecond))
	if code != 0 {
		t.Fatalf("the run did not ride out transient faults (seed %d): exit %d\n%s", sd, code, a.output())
	}
	if st.Faulted == 0 {
		t.Fatal("no fault was injected: the test proved nothing")
	}
	p.Set()
	requireMigrated(ctx, t, c)
}

// TestPersistentFaultStopsResumable: once deletePodsInPool runs, every request
// through the proxy fails (503, then connection resets) for longer than the
// step's timeout. The run must stop on its own, leave a journal that loads
// (format and checksum verified, as a resume reads it) and, once the faults are
// gone, a second apply must finish the migration.
func TestPersistentFaultStopsResumable(t *testing.T) {
	requireCampaign(t)
	for _, tc := range []struct {
		name  string
		fault faultproxy.Fault
	}{
		{"503 for every request", faultproxy.Fault{Status: 503}},
		{"every connection reset", faultproxy.Fault{Reset: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := sandbox.StartForTest(t, sandbox.Options{Scenario: slowScenario(t, 2*time.Second)})
			ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
			defer cancel()
			p, kubeconfig := startProxy(t, c)
			start := time.Now()
			a := startApply(t, kubeconfig, "--set", "moveTimeout=20s")
			if _, ok := a.until(func(e event) bool { return e.Type == "pod.evicted" }); !ok {
				t.Fatalf("the run ended before moving pods\n%s", a.output())
			}
			p.Set(tc.fault)
			faultAt := time.Now()
			code := a.wait(t, 5*time.Minute)
			t.Logf("run stopped with exit %d, %v after the fault began", code, time.Since(faultAt).Round(time.Millisecond))
			if code == 0 {
				t.Fatalf("the run succeeded although the apiserver was unreachable\n%s", a.output())
			}
			p.Set()
			cs := kubernetes.NewForConfigOrDie(c.RESTConfig())
			j := loadJournal(ctx, t, cs)
			t.Logf("journal after the fault: run %s status %s, move-pods %+v", j.RunID, j.Status, j.Steps["move-pods"])
			if s := j.Steps["delete-old-pool"]; s != nil && s.Status == engine.StatusDone {
				t.Fatal("the old pool was deleted although moving pods failed")
			}
			// The stopped run may still hold the lock (its release failed with
			// the faults on): break it as an operator would, the holder being gone
			// (--force: its lease has not expired yet).
			if code, out := cli(t, c.KubeconfigPath(), "unlock", "--yes", "--force"); code != 0 {
				t.Fatalf("unlock: exit %d\n%s", code, out)
			}
			// Same params as the stopped run: a resume, not a new run.
			code, out := cli(t, c.KubeconfigPath(), "apply", exampleRB, "-f", values, "-n", journalNS, "--yes", "--set", "moveTimeout=20s")
			if code != 0 {
				t.Fatalf("resume without faults: exit %d\n%s", code, out)
			}
			t.Logf("resumed and finished; %v in all", time.Since(start).Round(time.Millisecond))
			requireMigrated(ctx, t, c)
			if !t.Failed() {
				t.Logf("FAULTS: persistent-fault scenario passed: %s", tc.name)
			}
		})
	}
}
