// Command contender is one side of the podmove benchmark, run by it in a process
// of its own so that its requests and peak RSS are its alone: (a) runbook's
// deletePodsInPool through the engine, as `runbook apply` runs it, or one of the
// baselines (manual, parallel, drain).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/runbookdev/runbook/actions"
	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/internal/kubeclient"
	"github.com/runbookdev/runbook/runbooks"
)

// report is what a contender process prints on its last stdout line.
type report struct {
	Requests int64 `json:"requests"` // every request this process sent
	Moved    int64 `json:"moved"`    // pods evicted or deleted
	Retries  int64 `json:"retries"`  // 429s answered
	// PeakRSSKiB is this process's own high-water RSS (VmHWM). The parent's
	// wait4 Maxrss cannot be used: Go starts children with vfork, and Linux
	// folds the parent's peak RSS into the child's at exec, so every
	// contender would report at least the benchmark process's own peak.
	PeakRSSKiB int64 `json:"peakRSSKiB"`
}

func main() { os.Exit(run(os.Args[1:])) }

// run runs one contender against the cluster of -kubeconfig and prints its report
// as the last line of stdout.
func run(args []string) int {
	fs := flag.NewFlagSet("contender", flag.ExitOnError)
	mode := fs.String("mode", "", "runbook | manual | parallel | drain")
	kubeconfig := fs.String("kubeconfig", "", "cluster")
	retry := fs.Duration("retry", 500*time.Millisecond, "drain: 429 retry delay")
	parallel := fs.Int("parallel", 100, "parallel: concurrent deletes")
	with := fs.String("with", "", "runbook: more deletePodsInPool parameters, YAML flow style (e.g. \"perNodeConcurrency: 5\")")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile here (default: $PODMOVE_CPUPROFILE.<mode> when that is set)")
	_ = fs.Parse(args)
	if *cpuProfile == "" && os.Getenv("PODMOVE_CPUPROFILE") != "" {
		*cpuProfile = os.Getenv("PODMOVE_CPUPROFILE") + "." + *mode
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	if p := os.Getenv("PODMOVE_HEAPPROFILE"); p != "" {
		// The heap at the end of the run: what the caches keep, and (alloc_space)
		// everything the run allocated on the way.
		defer func() {
			if f, err := os.Create(p + "." + *mode); err == nil {
				_ = pprof.Lookup("heap").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var n atomic.Int64
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return countingTransport{next: rt, n: &n} }
	ctx := context.Background()
	var rep report
	switch *mode {
	case "runbook":
		// What `runbook apply` uses by default (--kube-qps/--kube-burst).
		cfg.QPS, cfg.Burst = 100, 200
		err = runRunbook(ctx, cfg, *with, &rep)
	case "manual", "parallel", "drain":
		cfg.QPS, cfg.Burst = 2000, 4000
		err = runBaseline(ctx, kubernetes.NewForConfigOrDie(cfg), *mode, *retry, *parallel, &rep)
	default:
		err = fmt.Errorf("unknown mode %q", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, *mode+":", err)
		return 1
	}
	rep.Requests = n.Load()
	if rep.PeakRSSKiB, err = peakRSSKiB(); err != nil {
		fmt.Fprintln(os.Stderr, *mode+":", err)
		return 1
	}
	b, _ := json.Marshal(rep)
	fmt.Println(string(b))
	return 0
}

// peakRSSKiB reads this process's VmHWM from /proc/self/status.
func peakRSSKiB() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("peak RSS: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kib int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kib); err != nil {
				return 0, fmt.Errorf("peak RSS: %q: %w", line, err)
			}
			return kib, nil
		}
	}
	return 0, fmt.Errorf("peak RSS: no VmHWM in /proc/self/status")
}

const benchRunbook = `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: bench-move}
steps:
  - id: move-pods
    action: deletePodsInPool
    with: {pool: default-ipv4-ippool, targetPool: new-pool, timeout: 30m}
`

// runRunbook runs deletePodsInPool through the engine, bound to the cluster as the
// CLI binds it.
func runRunbook(ctx context.Context, cfg *rest.Config, with string, rep *report) error {
	kube, dyn, err := kubeclient.New(cfg)
	if err != nil {
		return err
	}
	b, err := actions.Bind(ctx, &actions.Cluster{Config: cfg, Kube: kube, Dynamic: dyn})
	if err != nil {
		return err
	}
	defer b.Close()
	src := benchRunbook
	if with != "" {
		src = strings.Replace(src, "timeout: 30m}", "timeout: 30m, "+with+"}", 1)
	}
	rb, err := runbooks.Parse("bench.yaml", []byte(src), actions.Default)
	if err != nil {
		return err
	}
	params, err := runbooks.ResolveParams(rb, runbooks.ValueInputs{})
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "bench-journal-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx = actions.WithPodMoveEvents(ctx, func(_ string, e actions.PodMoveEvent) {
		switch e.Type {
		case "pod.evicted", "pod.deleted":
			rep.Moved++
		case "pod.refused":
			rep.Retries++
		case "progress":
			fmt.Fprintf(os.Stderr, "   runbook: moved %d/%d, back %d, in flight %d, waiting on PDB %d, ETA %v %s\n",
				e.Moved, e.Total, e.Replaced, e.InFlight, e.WaitingOnPDB, e.ETA, e.Message)
		case "warning":
			fmt.Fprintf(os.Stderr, "   runbook: warning: %s\n", e.Message)
		}
	})
	r, err := engine.Run(ctx, engine.Options{Runbook: rb, Params: params, Impls: b.Impls, Funcs: b.Funcs, Changes: b.Changes,
		Store: &engine.FileStore{Path: filepath.Join(dir, "journal.json")}, Holder: "bench"})
	if err != nil {
		return fmt.Errorf("%w (%+v)", err, r)
	}
	return nil
}

// oldPods lists the pods in the old pool, interleaved across Deployments (pod k of
// every Deployment before pod k+1 of any), as the reference harness did: kinder to
// the baselines than `kubectl get pods` order, which takes a Deployment at a time.
func oldPods(ctx context.Context, kube kubernetes.Interface) ([]corev1.Pod, error) {
	list, err := kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var todo []corev1.Pod
	for _, p := range list.Items {
		if p.Spec.HostNetwork {
			continue
		}
		for _, ip := range p.Status.PodIPs {
			if a, err := parseAddr(ip.IP); err == nil && oldPool.Contains(a) {
				todo = append(todo, p)
				break
			}
		}
	}
	rank, seen := map[string]int{}, map[string]int{}
	for _, p := range todo {
		k := p.Namespace + "/" + p.Labels["app"]
		rank[p.Namespace+"/"+p.Name] = seen[k]
		seen[k]++
	}
	sort.SliceStable(todo, func(i, j int) bool {
		return rank[todo[i].Namespace+"/"+todo[i].Name] < rank[todo[j].Namespace+"/"+todo[j].Name]
	})
	return todo, nil
}

func runBaseline(ctx context.Context, kube kubernetes.Interface, mode string, retry time.Duration, parallel int, rep *report) error {
	todo, err := oldPods(ctx, kube)
	if err != nil {
		return err
	}
	var moved, retries atomic.Int64
	switch mode {
	case "manual":
		for _, p := range todo {
			if err := kube.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{}); err == nil {
				moved.Add(1)
			} else if !apierrors.IsNotFound(err) {
				return err
			}
		}
	case "parallel":
		ch := make(chan corev1.Pod)
		var wg sync.WaitGroup
		var firstErr atomic.Value
		for w := 0; w < parallel; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for p := range ch {
					if err := kube.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{}); err == nil {
						moved.Add(1)
					} else if !apierrors.IsNotFound(err) {
						firstErr.CompareAndSwap(nil, err)
					}
				}
			}()
		}
		for _, p := range todo {
			ch <- p
		}
		close(ch)
		wg.Wait()
		if err, _ := firstErr.Load().(error); err != nil {
			return err
		}
	case "drain":
		// kubectl drain's evictPods: a goroutine per pod; a 429 is retried after a
		// fixed delay with a fresh GET of the pod; then the pod is polled every second
		// until it is gone.
		var wg sync.WaitGroup
		errs := make(chan error, len(todo))
		for _, p := range todo {
			wg.Add(1)
			go func(p corev1.Pod) {
				defer wg.Done()
				for {
					err := kube.PolicyV1().Evictions(p.Namespace).Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace}})
					if err == nil {
						moved.Add(1)
						break
					}
					if apierrors.IsNotFound(err) {
						return
					}
					if !apierrors.IsTooManyRequests(err) {
						errs <- fmt.Errorf("evict %s/%s: %w", p.Namespace, p.Name, err)
						return
					}
					retries.Add(1)
					time.Sleep(retry)
					if fresh, err := kube.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{}); err == nil {
						p = *fresh
					}
				}
				for {
					cur, err := kube.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
					if apierrors.IsNotFound(err) || (err == nil && cur.UID != p.UID) {
						return
					}
					time.Sleep(time.Second)
				}
			}(p)
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return err
		}
	}
	rep.Moved, rep.Retries = moved.Load(), retries.Load()
	return nil
}

var (
	oldPool = netip.MustParsePrefix("192.168.0.0/16")
)

func parseAddr(s string) (netip.Addr, error) { return netip.ParseAddr(s) }

// countingTransport counts the requests a client sends.
type countingTransport struct {
	next http.RoundTripper
	n    *atomic.Int64
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}
