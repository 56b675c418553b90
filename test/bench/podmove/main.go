// Command podmove benchmarks moving every pod off a Calico pool, side by side:
//
//	(a) runbook   deletePodsInPool through the engine (as `runbook apply` runs it)
//	(b) manual    the documented way: delete each old-pool pod, one after another
//	(c) parallel  the same deletes all at once (100 workers): the control plane's floor
//	(d) drain     kubectl drain's eviction loop: every pod at once, 429s retried after
//	              a fixed delay, then polled until gone
//
// Each contender gets a fresh sandbox cluster (test/sandbox) with the same scenario:
// workers × kwok nodes, Deployments with a PDB maxUnavailable 25% each, a pod start
// delay, every pod in default-ipv4-ippool 192.168.0.0/16. The harness adds new-pool
// 10.0.0.0/16 and disables the old pool, then starts the contender in a child
// process (so its requests and peak RSS are its own) and watches, until every
// Deployment has all its replicas Ready in the new pool: wall time, Deployments that
// dropped below replicas − maxUnavailable Ready, requests made by the contender and
// served by the API server (apiserver_request_total), the contender's peak RSS.
//
//	RUNBOOK_TOOLS_DIR=$(bash hack/build-tools.sh --print-dir) go run ./test/bench/podmove -pods 500
//
// It prints numbers; it asserts nothing.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

type options struct {
	pods, replicas, workers int
	startDelay              time.Duration
	contenders              []string
	retryDelay              time.Duration // drain's fixed 429 retry delay
	parallel                int           // workers of (c) and the drain loop's concurrency cap
	timeout                 time.Duration // per migration
	keep                    bool          // keep cluster work directories
	contenderBin            string
	runbookWith             string // extra deletePodsInPool parameters for (a)
	rounds                  int    // runs per contender, interleaved
}

func main() {
	// envtest logs through controller-runtime's logger; the bench prints its own lines.
	ctrllog.SetLogger(logr.Discard())
	var o options
	var contenders string
	flag.IntVar(&o.pods, "pods", 500, "pods to move (a multiple of -replicas): 500 is the quick size, 2000 the full one")
	flag.IntVar(&o.replicas, "replicas", 20, "replicas per Deployment")
	flag.IntVar(&o.workers, "nodes", 20, "worker nodes")
	flag.DurationVar(&o.startDelay, "start-delay", 2*time.Second, "pod start delay (CNI ADD done to Ready)")
	flag.StringVar(&contenders, "contenders", "runbook,manual,parallel,drain", "which contenders to run, in order")
	flag.DurationVar(&o.retryDelay, "drain-retry", 500*time.Millisecond, "drain: fixed delay before retrying a 429")
	flag.IntVar(&o.parallel, "parallel", 100, "parallel: concurrent deletes")
	flag.DurationVar(&o.timeout, "timeout", 20*time.Minute, "give up on one migration after this long")
	flag.BoolVar(&o.keep, "keep", false, "keep each cluster's work directory (logs)")
	flag.IntVar(&o.rounds, "rounds", 1, "run every contender this many times, taking turns; the table shows medians")
	flag.StringVar(&o.runbookWith, "runbook-with", "", "extra deletePodsInPool parameters for (a), YAML flow style")
	flag.StringVar(&o.contenderBin, "contender", "", "prebuilt test/bench/podmove/contender binary (default: go build it)")
	flag.Parse()
	o.contenders = strings.Split(contenders, ",")
	if o.rounds < 1 {
		fmt.Fprintf(os.Stderr, "-rounds %d: want at least 1\n", o.rounds)
		os.Exit(2)
	}
	if o.pods%o.replicas != 0 {
		fmt.Fprintf(os.Stderr, "-pods %d is not a multiple of -replicas %d\n", o.pods, o.replicas)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	if o.contenderBin == "" {
		dir, err := os.MkdirTemp("", "podmove-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if o.contenderBin, err = buildContender(ctx, dir); err != nil {
			return err
		}
	}
	fmt.Printf("# %d pods: %d Deployments × %d replicas, PDB maxUnavailable 25%%, %d worker nodes, start delay %v, 192.168.0.0/16 → 10.0.0.0/16\n",
		o.pods, o.pods/o.replicas, o.replicas, o.workers, o.startDelay)
	// Contenders take turns round after round, so that a slow spell of the machine
	// (other work on the same cores) hits all of them alike; the table shows each
	// one's median run.
	runs := map[string][]*result{}
	for round := 1; round <= o.rounds; round++ {
		for _, name := range o.contenders {
			fmt.Fprintf(os.Stderr, "== %s (round %d/%d): fresh cluster\n", name, round, o.rounds)
			r, err := runContender(ctx, o, name)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			runs[name] = append(runs[name], r)
			fmt.Fprintf(os.Stderr, "== %s (round %d/%d): %s\n", name, round, o.rounds, r.line())
		}
	}
	var results []*result
	for _, name := range o.contenders {
		if rs := runs[name]; len(rs) > 0 {
			results = append(results, median(rs))
			runs[name] = nil // a contender listed twice is reported once
		}
	}
	printTable(os.Stdout, o, results)
	return nil
}
