package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// result is one contender's numbers.
type result struct {
	name       string
	pods       int
	wall       time.Duration // contender start to every Deployment Ready in the new pool
	below      int           // Deployments that dropped below replicas − maxUnavailable Ready
	worstReady int           // fewest Ready pods any Deployment had
	child      childReport
	served     float64            // requests the API server served during the migration
	servedTop  map[string]float64 // ... by verb and resource
	peakRSS    int64              // KiB, the contender process
	cpu        time.Duration      // user+system of the contender process
	bringUp    time.Duration
	ipamRate   float64
	stages     string
	cniSeries  []int64 // CNI operations (ADD + DEL) per 5 s of the migration
	deps       int
	walls      []time.Duration // every round's wall time, on the median result
}

func (r *result) line() string {
	return fmt.Sprintf("wall %v, %d/%d Deployments below budget, %d requests by the contender (%.2f/pod), %.0f served, peak RSS %d MiB",
		r.wall.Round(100*time.Millisecond), r.below, r.deps, r.child.Requests, float64(r.child.Requests)/float64(r.pods), r.served, r.peakRSS/1024)
}

// runContender builds a fresh cluster, switches the pools, runs the contender in a
// child process and measures.
func runContender(ctx context.Context, o options, name string) (*result, error) {
	c, err := startCluster(ctx, o)
	if c != nil {
		defer c.stop(o.keep)
	}
	if err != nil {
		return nil, err
	}
	r := &result{name: name, pods: o.pods, bringUp: c.bringUp, ipamRate: c.ipamRate, deps: o.pods / o.replicas}
	fmt.Fprintf(os.Stderr, "   %d pods Ready in the old pool after %v (IPAM %.1f addresses/s)\n", o.pods, c.bringUp.Round(time.Second), c.ipamRate)
	if err := c.switchPools(ctx); err != nil {
		return nil, err
	}
	before, err := apiRequests(ctx, c.kube)
	if err != nil {
		return nil, err
	}
	c.tracker.startTracking()
	start := time.Now()
	mctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	cmd := exec.CommandContext(mctx, o.contenderBin, "-mode", name, "-kubeconfig", c.sb.KubeconfigPath(),
		"-retry", o.retryDelay.String(), "-parallel", strconv.Itoa(o.parallel), "-with", o.runbookWith)
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	cniDone := make(chan []int64, 1)
	stopCNI := make(chan struct{})
	go func() { cniDone <- sampleCNI(c, stopCNI) }()
	allNew := make(chan error, 1)
	go func() { allNew <- c.tracker.waitAllNew(mctx) }()
	var childErr error
	var childDone, depsDone bool
	for !childDone || !depsDone {
		select {
		case childErr = <-exited:
			childDone = true
			if childErr != nil {
				cancel()
			}
		case err := <-allNew:
			depsDone = true
			if err != nil {
				return nil, fmt.Errorf("migration did not finish: %w (contender: %v)", err, childErr)
			}
		}
	}
	r.wall = time.Since(start)
	close(stopCNI)
	r.cniSeries = <-cniDone
	if childErr != nil {
		return nil, fmt.Errorf("contender failed: %w", childErr)
	}
	r.below, r.worstReady = c.tracker.below(maxUnavailable(o.replicas))
	r.stages = c.tracker.latencies()
	if err := json.Unmarshal(lastLine(stdout.Bytes()), &r.child); err != nil {
		return nil, fmt.Errorf("contender report %q: %w", stdout.String(), err)
	}
	r.peakRSS = r.child.PeakRSSKiB
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		// Not ru.Maxrss: with vfork, it includes this process's own peak RSS.
		r.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	after, err := apiRequests(ctx, c.kube)
	if err != nil {
		return nil, err
	}
	r.served = after["TOTAL"] - before["TOTAL"]
	r.servedTop = map[string]float64{}
	for k, v := range after {
		if d := v - before[k]; d > 0 && k != "TOTAL" {
			r.servedTop[k] = d
		}
	}
	return r, nil
}

// childReport is what the contender process prints on its last stdout line.
type childReport struct {
	Requests int64 `json:"requests"`
	Moved    int64 `json:"moved"`
	Retries  int64 `json:"retries"`
	// PeakRSSKiB is the contender's own VmHWM (see the contender's report).
	PeakRSSKiB int64 `json:"peakRSSKiB"`
}

// buildContender compiles the contender command: a process of its own, linked
// only with what it runs (not the sandbox), so its peak RSS is its own.
func buildContender(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "contender")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/runbookdev/runbook/test/bench/podmove/contender").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build the contender: %v\n%s", err, out)
	}
	return bin, nil
}

// maxUnavailable is what a PDB maxUnavailable 25% allows (rounded up).
func maxUnavailable(replicas int) int { return (replicas*25 + 99) / 100 }

func lastLine(b []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	return lines[len(lines)-1]
}

// topRequests renders the largest request counts.
func topRequests(m map[string]float64, n int) string {
	type kv struct {
		k string
		v float64
	}
	var l []kv
	for k, v := range m {
		l = append(l, kv{k, v})
	}
	sort.Slice(l, func(i, j int) bool { return l[i].v > l[j].v })
	var parts []string
	for i, x := range l {
		if i == n {
			break
		}
		parts = append(parts, fmt.Sprintf("%s %.0f", x.k, x.v))
	}
	return strings.Join(parts, ", ")
}

// sampleCNI counts the CNI stand-in's operations (addresses assigned and released)
// per 5 s until stop: where the migration leaves the nodes' network setup idle.
func sampleCNI(c *benchCluster, stop <-chan struct{}) []int64 {
	ops := func() int64 { st := c.sb.CNIStats(); return st.Assigned + st.Released }
	var out []int64
	last := ops()
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return append(out, ops()-last)
		case <-t.C:
			n := ops()
			out = append(out, n-last)
			last = n
		}
	}
}
