// Package tunnelmove moves node tunnel addresses (IPIP, VXLAN, WireGuard) out of
// a Calico IP pool by restarting calico-node on one node at a time.
//
// Why a restart: calico-node v3.28's tunnel allocator (node/pkg/allocateip,
// allocateip.go OnUpdates) re-evaluates a node's tunnel address only when a field
// of the v1 pool model changes (CIDR, encapsulation, natOutgoing, disabled,
// disableBGPExport: libcalico-go/lib/backend/model/ippool.go) or when it starts.
// A pool "disabled" by nodeSelector: "!all()" — all tigera-operator v1.34 offers —
// therefore keeps every node's tunnel address until calico-node restarts. At
// start, rc.local runs the allocation once before felix starts
// (node/filesystem/etc/rc.local:24), and the Node keeps its old address until the
// new one is written (allocateip.go updateNodeWithAddress), so a restart moves the
// address without leaving the node without one.
//
// One node at a time, each waited for (its new calico-node pod Ready, its tunnel
// addresses out of the pool), so a calico-node that fails to come back breaks one
// node, never the cluster.
package tunnelmove

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/runbookdev/runbook/internal/calico"
	"github.com/runbookdev/runbook/internal/kubeclient"
)

// PodLabel selects calico-node's pods in both install flavours: calico.yaml's
// DaemonSet in kube-system and the operator's in calico-system carry it.
const PodLabel = "k8s-app=calico-node"

// podNamespaces are where calico-node runs: a pod elsewhere that merely carries
// the label is not calico-node.
var podNamespaces = map[string]bool{"kube-system": true, "calico-system": true}

// CalicoNodePods returns calico-node's pod on each node: pods labelled
// k8s-app=calico-node, owned by the DaemonSet calico-node in kube-system or
// calico-system, not terminating. One list call for the whole cluster.
func CalicoNodePods(ctx context.Context, kube kubernetes.Interface) (map[string]*corev1.Pod, error) {
	list, err := kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: PodLabel})
	if err != nil {
		return nil, fmt.Errorf("list calico-node pods (%s): %w", PodLabel, err)
	}
	out := map[string]*corev1.Pod{}
	for i := range list.Items {
		p := &list.Items[i]
		if !isCalicoNode(p) || p.DeletionTimestamp != nil || p.Spec.NodeName == "" {
			continue
		}
		out[p.Spec.NodeName] = p
	}
	return out, nil
}

func isCalicoNode(p *corev1.Pod) bool {
	if !podNamespaces[p.Namespace] {
		return false
	}
	for _, o := range p.OwnerReferences {
		if o.Kind == "DaemonSet" && o.Name == "calico-node" && o.Controller != nil && *o.Controller {
			return true
		}
	}
	return false
}

// Target is one node whose tunnel addresses must leave a pool.
type Target struct {
	Node string
	// Pool is the CIDR the addresses must leave.
	Pool netip.Prefix
	// Kinds are the tunnel kinds whose address is in Pool now; each must have an
	// address outside it afterwards.
	Kinds []calico.TunnelKind
	// Remove are kinds whose address is in Pool now and that no other pool
	// serves: done once the node publishes none in Pool (calico-node removes it).
	Remove []calico.TunnelKind
}

// Result is what restarting calico-node on one node did.
type Result struct {
	Node           string
	OldPod, NewPod string // namespace/name (uid)
	Before, After  map[calico.TunnelKind]netip.Addr
	Took           time.Duration // from the delete to done
	// Skipped: the addresses had left the pool before the restart (calico-node
	// moved them on its own), so nothing was deleted.
	Skipped bool
	// MaxGap is the longest time the node published no address of a moved kind,
	// measured on the watch: 0 when calico-node replaced it in one write.
	MaxGap time.Duration
}

func (r Result) String() string {
	var moves []string
	for _, k := range sortedKinds(r.Before) {
		after := "removed"
		if r.After[k].IsValid() {
			after = r.After[k].String()
		}
		moves = append(moves, fmt.Sprintf("%s %s -> %s", k, r.Before[k], after))
	}
	return fmt.Sprintf("node %s: %s in %s (no address for %s)", r.Node, strings.Join(moves, ", "), r.Took.Round(time.Millisecond), r.MaxGap.Round(time.Millisecond))
}

func sortedKinds(m map[calico.TunnelKind]netip.Addr) []calico.TunnelKind {
	ks := make([]calico.TunnelKind, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
	return ks
}

// Restart deletes pod (calico-node on t.Node; nil when it was already deleted by
// an earlier attempt of this step) and waits, up to timeout, until a calico-node
// pod with another UID is Ready on the node and every kind in t.Kinds has an
// address outside t.Pool. beforeDelete runs just before the delete (the journal
// records it, so a resumed step knows the pod was deleted). Watches, not polls:
// one list and one watch each of the node and of its calico-node pods.
func Restart(ctx context.Context, kube kubernetes.Interface, t Target, pod *corev1.Pod, oldUID types.UID, timeout time.Duration, beforeDelete func() error) (Result, error) {
	res := Result{Node: t.Node, Before: map[calico.TunnelKind]netip.Addr{}, After: map[calico.TunnelKind]netip.Addr{}}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	w, err := startWatch(ctx, kube, t)
	if err != nil {
		return res, err
	}
	defer w.stop()
	if n := w.node(); n != nil {
		for _, k := range append(slices.Clone(t.Kinds), t.Remove...) {
			res.Before[k] = n.Tunnels[k]
		}
	}
	res.OldPod = string(oldUID)
	if pod != nil && len(w.missing(w.node())) == 0 {
		res.Skipped = true
		return res, nil
	}
	if pod != nil {
		res.OldPod = fmt.Sprintf("%s/%s (%s)", pod.Namespace, pod.Name, pod.UID)
		if err := beforeDelete(); err != nil {
			return res, err
		}
		uid := pod.UID
		err := kube.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return res, fmt.Errorf("delete calico-node pod %s/%s on node %s: %w", pod.Namespace, pod.Name, t.Node, err)
		}
	}
	began := time.Now()
	w.resetGap(began)
	for {
		newPod, podOK := w.replacement(oldUID)
		node := w.node()
		missing := w.missing(node)
		if podOK && len(missing) == 0 {
			res.Took = time.Since(began)
			res.NewPod = fmt.Sprintf("%s/%s (%s)", newPod.Namespace, newPod.Name, newPod.UID)
			for _, k := range append(slices.Clone(t.Kinds), t.Remove...) {
				res.After[k] = node.Tunnels[k]
			}
			res.MaxGap = w.maxGap()
			return res, nil
		}
		select {
		case <-w.changed:
		case <-ctx.Done():
			why := strings.Join(missing, "; ")
			if !podOK {
				why = strings.Join(append([]string{"no new calico-node pod is Ready on it"}, missing...), "; ")
			}
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return res, fmt.Errorf("calico-node on node %s did not come back with its tunnel addresses out of %s within %s: %s (look at its logs: kubectl -n <ns> logs -l %s --field-selector spec.nodeName=%s)",
					t.Node, t.Pool, timeout, why, PodLabel, t.Node)
			}
			return res, fmt.Errorf("waiting for calico-node on node %s: %w", t.Node, ctx.Err())
		}
	}
}

// nodeWatch follows one node and its calico-node pods through informers and
// measures how long the node publishes no address of a kind being moved.
type nodeWatch struct {
	t       Target
	nodes   cache.SharedIndexInformer
	pods    cache.SharedIndexInformer
	changed chan struct{}
	cancel  context.CancelFunc

	mu       sync.Mutex
	gapFrom  map[calico.TunnelKind]time.Time // kinds without an address since
	gapMax   time.Duration
	counting bool
}

func startWatch(ctx context.Context, kube kubernetes.Interface, t Target) (*nodeWatch, error) {
	ctx, cancel := context.WithCancel(ctx)
	w := &nodeWatch{t: t, changed: make(chan struct{}, 1), cancel: cancel, gapFrom: map[calico.TunnelKind]time.Time{}}
	nf := informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", t.Node).String()
	}))
	pf := informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", t.Node).String()
		o.LabelSelector = PodLabel
	}))
	w.nodes, w.pods = nf.Core().V1().Nodes().Informer(), pf.Core().V1().Pods().Informer()
	poke := func() {
		select {
		case w.changed <- struct{}{}:
		default:
		}
	}
	onNode := func(obj any) {
		if n, ok := obj.(*corev1.Node); ok {
			w.observe(calico.NodeFromObject(n))
		}
		poke()
	}
	if _, err := w.nodes.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onNode, UpdateFunc: func(_, o any) { onNode(o) }, DeleteFunc: func(any) { poke() }}); err != nil {
		cancel()
		return nil, fmt.Errorf("watch node %s: %w", t.Node, err)
	}
	if _, err := w.pods.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(any) { poke() }, UpdateFunc: func(_, _ any) { poke() }, DeleteFunc: func(any) { poke() }}); err != nil {
		cancel()
		return nil, fmt.Errorf("watch calico-node pods on %s: %w", t.Node, err)
	}
	nf.Start(ctx.Done())
	pf.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), w.nodes.HasSynced, w.pods.HasSynced) {
		cancel()
		return nil, fmt.Errorf("watch node %s and its calico-node pods: %w", t.Node, ctx.Err())
	}
	return w, nil
}

func (w *nodeWatch) stop() { w.cancel() }

// resetGap starts measuring at the delete: earlier gaps are not this restart's.
func (w *nodeWatch) resetGap(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.counting, w.gapMax = true, 0
	clear(w.gapFrom)
	if n := w.nodeLocked(); n != nil {
		for _, k := range w.t.Kinds {
			if !n.Tunnels[k].IsValid() {
				w.gapFrom[k] = now
			}
		}
	}
}

func (w *nodeWatch) observe(n calico.Node) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.counting {
		return
	}
	now := time.Now()
	for _, k := range w.t.Kinds {
		from, open := w.gapFrom[k]
		switch has := n.Tunnels[k].IsValid(); {
		case !has && !open:
			w.gapFrom[k] = now
		case has && open:
			w.gapMax = max(w.gapMax, now.Sub(from))
			delete(w.gapFrom, k)
		}
	}
}

func (w *nodeWatch) maxGap() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.gapMax
	for _, from := range w.gapFrom {
		m = max(m, time.Since(from))
	}
	return m
}

func (w *nodeWatch) node() *calico.Node {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.nodeLocked()
}

func (w *nodeWatch) nodeLocked() *calico.Node {
	for _, obj := range w.nodes.GetStore().List() {
		if n, ok := obj.(*corev1.Node); ok && n.Name == w.t.Node {
			cn := calico.NodeFromObject(n)
			return &cn
		}
	}
	return nil
}

// replacement is a calico-node pod on the node other than the one deleted, Ready.
func (w *nodeWatch) replacement(old types.UID) (*corev1.Pod, bool) {
	for _, obj := range w.pods.GetStore().List() {
		p, ok := obj.(*corev1.Pod)
		if ok && p.UID != old && p.Spec.NodeName == w.t.Node && isCalicoNode(p) && p.DeletionTimestamp == nil && kubeclient.PodReady(p) {
			return p, true
		}
	}
	return nil, false
}

// missing says which kinds still lack an address outside the pool.
func (w *nodeWatch) missing(n *calico.Node) []string {
	if n == nil {
		return []string{"the node is gone"}
	}
	var out []string
	for _, k := range w.t.Kinds {
		switch ip := n.Tunnels[k]; {
		case !ip.IsValid():
			out = append(out, fmt.Sprintf("it publishes no %s tunnel address", k))
		case w.t.Pool.Contains(ip):
			out = append(out, fmt.Sprintf("its %s tunnel address %s is still in %s", k, ip, w.t.Pool))
		}
	}
	for _, k := range w.t.Remove {
		if ip := n.Tunnels[k]; ip.IsValid() && w.t.Pool.Contains(ip) {
			out = append(out, fmt.Sprintf("its %s tunnel address %s is still in %s (no other pool serves it: calico-node should remove it)", k, ip, w.t.Pool))
		}
	}
	return out
}
