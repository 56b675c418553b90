package sandbox

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/projectcalico/calico/libcalico-go/lib/clientv3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/runbookdev/runbook/internal/calico"
	"github.com/runbookdev/runbook/test/sandbox/calinode"
)

// calicoNodeUser is calico-node's service account, bound by calico.yaml: the real
// allocator writes nodes and IPAM with exactly calico-node's permissions.
var calicoNodeUser = identity{file: CalicoNode, user: envtest.User{Name: "system:serviceaccount:kube-system:calico-node"}}

// tunnelAllocatorBinary is built by hack/build-tools.sh (hack/tools-calico):
// calico-node's allocateip package behind calico-node's two flags.
const tunnelAllocatorBinary = "calico-allocate-tunnel-addrs"

// The calico-node pods calico.yaml's DaemonSet makes (kwok runs them).
const (
	calicoNodeNamespace = "kube-system"
	calicoNodeSelector  = "k8s-app=calico-node"
	calicoNodeContainer = "calico-node"
)

// CalicoNodeStats counts what the calico-node runtime did since the sandbox
// started: run-once allocations (rc.local), daemon starts (runit) and pods whose
// processes were killed because the pod went away.
type CalicoNodeStats struct {
	RunOnce, RunOnceFailed, DaemonStarts, DaemonExits, PodsStopped int
	// Decisions counts, per node, the tunnel-address decisions its daemons have
	// logged (daemonDecisions): one per reconciliation and encapsulation in use.
	// A test that changes a pool waits for each node's count to rise before it
	// changes another, so no reconciliation is still reading the pools.
	Decisions map[string]int
}

// What the daemon's log says of its progress, node/pkg/allocateip v3.28.5 and
// libcalico-go's watchersyncer: the syncer in sync (watchersyncer.go:221), upon
// which the daemon runs its first reconciliation (allocateip.go:158-165), and the
// one Info line each reconciliation logs for every tunnel kind a pool gives the
// node (ensureHostTunnelAddress, allocateip.go:316-379). Kinds without a pool are
// removed at Debug level and leave no line.
const daemonInSync = "All watchers have sync'd data"

var daemonDecisions = []string{
	"Assign a new tunnel address",
	"Current address is not in a valid pool, release it and reassign",
	"Current address is still valid, do nothing",
	"Current address is occupied, assign a new one",
	"Current address is not assigned, assign a new one",
	"Updated tunnel address with allocation attributes",
}

// calicoNodeRuntime plays, for every node, the container runtime of that node's
// calico-node pod and the pod's rc.local + runit, for the one part of
// calico-node that runs for real: the tunnel-address allocator. When a pod with a
// new UID runs on a node it runs, like rc.local
// (node/filesystem/etc/rc.local:14-24), the start-up stand-in (the BGP address,
// package calinode), then `-allocate-tunnel-addrs -allocate-tunnel-addrs-run-once`
// (a failure ends the container: the pod goes NotReady with CrashLoopBackOff and
// it is retried with back-off, as the kubelet restarts the container), then the
// daemon `-allocate-tunnel-addrs` (service allocate-tunnel-addrs), restarted
// whenever it exits, as runsv does. When the pod is deleted (or replaced) its
// processes are stopped. So deleting a node's calico-node pod restarts
// calico-node on that node, as on a real cluster.
type calicoNodeRuntime struct {
	name       string
	binary     string
	kubeconfig string // calico-node's identity
	logDir     string
	kubelet    kubernetes.Interface // watches the pods, reports container failures
	calico     clientv3.Interface   // the start-up stand-in's writes, as calico-node
	// Back-off of a failed run-once (the kubelet's container restarts) and of the
	// daemon's restarts (runsv).
	crashBase, crashMax, restartBase, restartMax time.Duration

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
	nodes  map[string]*nodeAgent
	stats  CalicoNodeStats
}

// startCalicoNode starts the calico-node runtime once Calico is installed (its
// RBAC, the DaemonSet and the pools exist) and waits until every node's run-once
// allocation succeeded, so a started cluster has its tunnel addresses.
func (c *Cluster) startCalicoNode(ctx context.Context) error {
	kubeconfig, _, err := credentials(c.env, c.workDir, calicoNodeUser)
	if err != nil {
		return err
	}
	calico, err := newCalicoClient(kubeconfig)
	if err != nil {
		return err
	}
	_, kubeletCfg, err := credentials(c.env, c.workDir, kubeletUser)
	if err != nil {
		return err
	}
	kubelet, err := kubernetes.NewForConfig(kubeletCfg)
	if err != nil {
		return fmt.Errorf("calico-node runtime client: %w", err)
	}
	r := &calicoNodeRuntime{
		name:        CalicoNode,
		binary:      filepath.Join(c.opts.ToolsDir, tunnelAllocatorBinary),
		kubeconfig:  kubeconfig,
		logDir:      logDir(c.workDir),
		kubelet:     kubelet,
		calico:      calico,
		crashBase:   time.Second,
		crashMax:    10 * time.Second,
		restartBase: time.Second,
		restartMax:  10 * time.Second,
	}
	c.calicoNode = r
	c.components = append(c.components, r)
	return r.Start(ctx)
}

func (r *calicoNodeRuntime) Name() string { return r.name }

func (r *calicoNodeRuntime) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cancel != nil
}

// Start watches the calico-node pods and returns once every node has had a
// successful run-once allocation.
func (r *calicoNodeRuntime) Start(ctx context.Context) error {
	r.mu.Lock()
	if r.cancel != nil {
		r.mu.Unlock()
		return nil
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r.cancel, r.done, r.nodes = cancel, done, map[string]*nodeAgent{}
	r.mu.Unlock()

	nodes, err := r.kubelet.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return errors.Join(fmt.Errorf("calico-node runtime: listing nodes: %w", err), r.Stop(context.Background()))
	}
	factory := informers.NewSharedInformerFactoryWithOptions(r.kubelet, 0,
		informers.WithNamespace(calicoNodeNamespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = calicoNodeSelector }))
	pods := factory.Core().V1().Pods().Informer()
	if _, err := pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { r.observe(runCtx, obj, false) },
		UpdateFunc: func(_, obj any) { r.observe(runCtx, obj, false) },
		DeleteFunc: func(obj any) { r.observe(runCtx, obj, true) },
	}); err != nil {
		return errors.Join(fmt.Errorf("calico-node runtime: %w", err), r.Stop(context.Background()))
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pods.Run(runCtx.Done())
	}()
	go func() {
		<-runCtx.Done()
		wg.Wait()
		r.mu.Lock()
		agents := r.nodes
		r.mu.Unlock()
		for _, a := range agents {
			<-a.done
		}
		close(done)
	}()

	for _, n := range nodes.Items {
		a := r.agent(runCtx, n.Name)
		if err := a.awaitSettled(ctx); err != nil {
			return errors.Join(err, r.Stop(context.Background()))
		}
	}
	return nil
}

func (r *calicoNodeRuntime) Stop(ctx context.Context) error {
	return stopLoop(ctx, &r.mu, &r.cancel, &r.done, "the calico-node runtime")
}

// Stats returns the counters since the sandbox started.
func (r *calicoNodeRuntime) Stats() CalicoNodeStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.stats
	st.Decisions = maps.Clone(st.Decisions) // the runtime goes on counting
	return st
}

// PIDs lists the allocator processes running now, by node.
func (r *calicoNodeRuntime) PIDs() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for name, a := range r.nodes {
		if pid := a.currentPID(); pid != 0 {
			out[name] = pid
		}
	}
	return out
}

func (r *calicoNodeRuntime) count(f func(*CalicoNodeStats)) {
	r.mu.Lock()
	f(&r.stats)
	r.mu.Unlock()
}

// observe hands a pod's state to its node's agent.
func (r *calicoNodeRuntime) observe(ctx context.Context, obj any, deleted bool) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.Spec.NodeName == "" {
		return
	}
	r.agent(ctx, pod.Spec.NodeName).observe(pod, deleted)
}

// agent returns the node's agent, starting it on first use.
func (r *calicoNodeRuntime) agent(ctx context.Context, node string) *nodeAgent {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a, ok := r.nodes[node]; ok {
		return a
	}
	a := &nodeAgent{
		r:            r,
		node:         node,
		logPath:      filepath.Join(r.logDir, "calico-node-"+node+".log"),
		kick:         make(chan struct{}, 1),
		firstRunOnce: make(chan struct{}),
		firstSync:    make(chan struct{}),
		firstDecided: make(chan struct{}),
		done:         make(chan struct{}),
	}
	r.nodes[node] = a
	go a.loop(ctx)
	return a
}

// podState is what an agent needs of its node's calico-node pod.
type podState struct {
	uid, name string
	running   bool // Running and not terminating: its container runs
}

// nodeAgent is one node's calico-node container runtime.
type nodeAgent struct {
	r       *calicoNodeRuntime
	node    string
	logPath string

	mu      sync.Mutex
	want    podState // the node's current pod, from the informer
	pid     int
	kick    chan struct{}
	started bool // firstRunOnce closed

	firstRunOnce chan struct{} // closed after the first successful run-once
	// Closed when a daemon first logs daemonInSync, and then its first decision.
	firstSync, firstDecided chan struct{}
	syncOnce, decideOnce    sync.Once
	done                    chan struct{}
}

// observe takes the node's pod from an informer event. The pod the agent runs
// stays its pod until it is deleted; a pod with another UID that is not
// terminating is the DaemonSet's replacement and takes over; an older pod's
// late events change nothing.
func (a *nodeAgent) observe(pod *corev1.Pod, deleted bool) {
	uid := string(pod.UID)
	live := !deleted && pod.DeletionTimestamp == nil
	running := live && pod.Status.Phase == corev1.PodRunning
	a.mu.Lock()
	switch {
	case uid == a.want.uid && deleted:
		a.want = podState{}
	case uid == a.want.uid:
		a.want.running = running
	case live:
		a.want = podState{uid: uid, name: pod.Name, running: running}
	default:
		a.mu.Unlock()
		return
	}
	a.mu.Unlock()
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

func (a *nodeAgent) desired() podState {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.want
}

func (a *nodeAgent) currentPID() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pid
}

func (a *nodeAgent) setPID(pid int) {
	a.mu.Lock()
	a.pid = pid
	a.mu.Unlock()
}

// loop runs the node's current pod's processes, stopping them when the pod
// changes or goes, until ctx ends.
func (a *nodeAgent) loop(ctx context.Context) {
	defer close(a.done)
	for {
		pod := a.desired()
		if pod.running {
			podCtx, cancel := context.WithCancel(ctx)
			finished := make(chan struct{})
			go func() {
				defer close(finished)
				a.runPod(podCtx, pod)
			}()
			// Until the pod stops running or is replaced.
			for stay := true; stay; {
				select {
				case <-ctx.Done():
					stay = false
				case <-a.kick:
					now := a.desired()
					stay = now.running && now.uid == pod.uid
				}
			}
			cancel()
			<-finished
			if ctx.Err() != nil {
				return
			}
			a.r.count(func(s *CalicoNodeStats) { s.PodsStopped++ })
			appendLog(a.logPath, fmt.Sprintf("sandbox: pod %s (uid %s) stopped or deleted: calico-node stopped", pod.name, pod.uid))
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-a.kick:
		}
	}
}

// daemonLine follows the daemon's progress in its log.
func (a *nodeAgent) daemonLine(line string) {
	if strings.Contains(line, daemonInSync) {
		a.syncOnce.Do(func() { close(a.firstSync) })
		return
	}
	if !strings.Contains(line, "allocateip.go") {
		return
	}
	for _, d := range daemonDecisions {
		if strings.Contains(line, d) {
			a.r.count(func(s *CalicoNodeStats) {
				if s.Decisions == nil {
					s.Decisions = map[string]int{}
				}
				s.Decisions[a.node]++
			})
			// Only a decision after the sync counts: one logged during the
			// daemon's start-up may still be followed by the start-up's own.
			select {
			case <-a.firstSync:
				a.decideOnce.Do(func() { close(a.firstDecided) })
			default:
			}
			return
		}
	}
}

// awaitSettled waits until the node's calico-node is in the steady state a
// running cluster's is in: its run-once allocation done, its daemon in sync and,
// when a pool gives the node a tunnel address, done with its first
// reconciliation. Until then a pool change may still be read by the daemon's
// start-up, which reacts to what a running daemon ignores (a nodeSelector).
func (a *nodeAgent) awaitSettled(ctx context.Context) error {
	for _, w := range []struct {
		ch   chan struct{}
		what string
	}{{a.firstRunOnce, "a successful tunnel-address allocation"}, {a.firstSync, "its allocate-tunnel-addrs daemon in sync"}} {
		select {
		case <-w.ch:
		case <-ctx.Done():
			return fmt.Errorf("calico-node on %s: no %s (see %s): %w", a.node, w.what, a.logPath, ctx.Err())
		}
	}
	n, err := a.r.kubelet.CoreV1().Nodes().Get(ctx, a.node, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("calico-node on %s: %w", a.node, err)
	}
	if !hasTunnelAddress(n) {
		return nil // every kind is removed at Debug level: no line to wait for
	}
	select {
	case <-a.firstDecided:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("calico-node on %s: its daemon made no tunnel-address decision (see %s): %w", a.node, a.logPath, ctx.Err())
	}
}

// hasTunnelAddress: the node has an IPIP or VXLAN tunnel address (the kinds whose
// decisions the daemon logs; WireGuard needs a key the sandbox's nodes lack).
func hasTunnelAddress(n *corev1.Node) bool {
	for _, k := range []calico.TunnelKind{calico.TunnelIPIP, calico.TunnelVXLAN, calico.TunnelVXLANV6} {
		if n.Annotations[calico.TunnelAnnotation(k)] != "" {
			return true
		}
	}
	return false
}

// runPod is one life of a calico-node container: start-up, run-once, daemon.
func (a *nodeAgent) runPod(ctx context.Context, pod podState) {
	appendLog(a.logPath, fmt.Sprintf("sandbox: pod %s (uid %s) running: calico-node starting", pod.name, pod.uid))
	env := []string{"NODENAME=" + a.node, "DATASTORE_TYPE=kubernetes", "KUBECONFIG=" + a.r.kubeconfig}
	crash := backoff{base: a.r.crashBase, max: a.r.crashMax}
	restarts := 0
	for {
		started := time.Now()
		err := calinode.EnsureBGPAddress(ctx, a.r.calico, a.node)
		if err == nil {
			once := child{path: a.r.binary, args: []string{"-allocate-tunnel-addrs", "-allocate-tunnel-addrs-run-once"},
				env: env, logPath: a.logPath, stopTimeout: 2 * time.Second}
			err = once.run(ctx, a.setPID)
			a.setPID(0)
			if ctx.Err() != nil {
				return
			}
			a.r.count(func(s *CalicoNodeStats) {
				s.RunOnce++
				if err != nil {
					s.RunOnceFailed++
				}
			})
		}
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			break
		}
		// rc.local:24 `... || exit 1`: the container exits, the kubelet reports it
		// and restarts it after its back-off.
		restarts++
		delay := crash.after(time.Since(started))
		appendLog(a.logPath, fmt.Sprintf("sandbox: run-once allocation failed (%v): container exits, restart %d in %v", err, restarts, delay))
		a.reportContainer(ctx, pod, restarts, fmt.Sprintf("run-once tunnel-address allocation failed: %v", err))
		if !sleepCtx(ctx, delay) {
			return
		}
	}
	if restarts > 0 {
		a.reportContainer(ctx, pod, restarts, "")
	}
	a.mu.Lock()
	if !a.started {
		a.started = true
		close(a.firstRunOnce)
	}
	a.mu.Unlock()

	b := backoff{base: a.r.restartBase, max: a.r.restartMax}
	for {
		a.r.count(func(s *CalicoNodeStats) { s.DaemonStarts++ })
		started := time.Now()
		daemon := child{path: a.r.binary, args: []string{"-allocate-tunnel-addrs"},
			env: env, logPath: a.logPath, stopTimeout: 2 * time.Second, lines: a.daemonLine}
		err := daemon.run(ctx, a.setPID)
		a.setPID(0)
		if ctx.Err() != nil {
			return
		}
		a.r.count(func(s *CalicoNodeStats) { s.DaemonExits++ })
		delay := b.after(time.Since(started))
		appendLog(a.logPath, fmt.Sprintf("sandbox: allocate-tunnel-addrs exited (%s); runsv restarts it in %v", exitText(err), delay))
		if !sleepCtx(ctx, delay) {
			return
		}
	}
}

// reportContainer writes what the kubelet reports about a calico-node container
// that exited (message != "": not Ready, CrashLoopBackOff, restartCount) or runs
// again (message == ""). kwok's stages only make a Pending pod Running, so they
// leave this status alone.
func (a *nodeAgent) reportContainer(ctx context.Context, pod podState, restarts int, message string) {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := a.r.kubelet.CoreV1().Pods(calicoNodeNamespace).Get(ctx, pod.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.UID != types.UID(pod.uid) {
			return nil
		}
		now := metav1.Now()
		status := corev1.ConditionTrue
		if message != "" {
			status = corev1.ConditionFalse
		}
		for i := range p.Status.Conditions {
			cond := &p.Status.Conditions[i]
			if cond.Type == corev1.PodReady || cond.Type == corev1.ContainersReady {
				if cond.Status != status {
					cond.LastTransitionTime = now
				}
				cond.Status = status
				cond.Reason, cond.Message = "", ""
				if message != "" {
					cond.Reason = "ContainersNotReady"
					cond.Message = "containers with unready status: [" + calicoNodeContainer + "]"
				}
			}
		}
		for i := range p.Status.ContainerStatuses {
			cs := &p.Status.ContainerStatuses[i]
			if cs.Name != calicoNodeContainer {
				continue
			}
			cs.RestartCount = int32(restarts)
			cs.Ready = message == ""
			if message != "" {
				cs.LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					ExitCode: 1, Reason: "Error", Message: message, FinishedAt: now}}
				cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
					Message: "back-off restarting failed container " + calicoNodeContainer}}
			} else {
				cs.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}
			}
		}
		_, err = a.r.kubelet.CoreV1().Pods(calicoNodeNamespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		return err
	})
	if err != nil && ctx.Err() == nil {
		appendLog(a.logPath, fmt.Sprintf("sandbox: reporting the container state of pod %s: %v", pod.name, err))
	}
}

// CalicoNodeStats returns the calico-node runtime's counters.
func (c *Cluster) CalicoNodeStats() CalicoNodeStats {
	if c.calicoNode == nil {
		return CalicoNodeStats{}
	}
	return c.calicoNode.Stats()
}

// CalicoNodePIDs lists the running tunnel-allocator processes by node.
func (c *Cluster) CalicoNodePIDs() map[string]int {
	if c.calicoNode == nil {
		return nil
	}
	return c.calicoNode.PIDs()
}
