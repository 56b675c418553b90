package reliability

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/test/sandbox"
)

var (
	ippools         = schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "ippools"}
	ipamblocks      = schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "ipamblocks"}
	blockaffinities = schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "blockaffinities"}
	ipamhandles     = schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "ipamhandles"}

	// The example's pools on the sandbox (values/sandbox.yaml).
	oldCIDR = netip.MustParsePrefix("192.168.0.0/16")
	newCIDR = netip.MustParsePrefix("10.0.0.0/16")
)

const (
	oldPoolName = "default-ipv4-ippool"
	newPoolName = "new-pool"
	probeNS     = "ippool-test" // the example's verification namespace
	lockName    = "runbook-lock-calico-ipam"
	journalName = "runbook-migrate-ippool"
)

// clients of one sandbox cluster, with the admin identity.
type clients struct {
	c    *sandbox.Cluster
	kube kubernetes.Interface
	dyn  dynamic.Interface
}

func clientsFor(c *sandbox.Cluster) *clients {
	cfg := c.RESTConfig()
	return &clients{c: c, kube: kubernetes.NewForConfigOrDie(cfg), dyn: dynamic.NewForConfigOrDie(cfg)}
}

func (k *clients) store() *engine.ConfigMapStore {
	return &engine.ConfigMapStore{Client: k.kube, Namespace: journalNS, Name: journalName}
}

// eviction is one pod the eviction API disrupted, as the pod itself tells: the
// apiserver adds the DisruptionTarget condition (reason EvictionByEvictionAPI)
// before it deletes an evicted pod.
type eviction struct {
	pod string // namespace/name
	ip  string // its address when it was evicted ("" if none)
}

// observer watches the cluster through a migration (across every kill and resume)
// and counts what was done to it, so that "applied twice" and "evicted needlessly"
// are facts from the apiserver, not from runbook's own account.
type observer struct {
	mu         sync.Mutex
	synced     bool
	poolAdds   map[string]int
	poolDels   map[string]int
	disables   map[string]int // spec.disabled false -> true
	enables    map[string]int // spec.disabled true -> false
	nsAdds     map[string]int
	probePods  map[types.UID]string // pods ever created in the verification namespace
	evicted    map[types.UID]eviction
	oldAtStart map[types.UID]string // pods with an old-pool address when the observer started
	// An eviction the API admitted (the budget lists the pod in
	// status.disruptedPods) whose client vanished before the pod got its
	// DisruptionTarget condition and was deleted is finished by the next run with a
	// plain delete (deletePodsInPool). admitted: the latest disruptedPods entry
	// seen for each namespace/name (only whether one is no older than the pod
	// matters); deleted: pods deleted without the condition.
	admitted map[string]time.Time
	deleted  map[types.UID]deletion
	// ips: each pod's last IPv4 address; a terminating pod may lose it before its
	// final state.
	ips  map[types.UID]string
	stop context.CancelFunc
}

// deletion is a pod deleted without the eviction API's DisruptionTarget condition.
type deletion struct {
	key     string // namespace/name
	ip      string
	created time.Time
}

func observe(ctx context.Context, t *testing.T, k *clients) *observer {
	t.Helper()
	o := &observer{poolAdds: map[string]int{}, poolDels: map[string]int{}, disables: map[string]int{}, enables: map[string]int{},
		nsAdds: map[string]int{}, probePods: map[types.UID]string{}, evicted: map[types.UID]eviction{}, oldAtStart: map[types.UID]string{},
		admitted: map[string]time.Time{}, deleted: map[types.UID]deletion{}, ips: map[types.UID]string{}}
	ctx, o.stop = context.WithCancel(ctx)
	t.Cleanup(o.stop)

	kf := informers.NewSharedInformerFactory(k.kube, 0)
	pods := kf.Core().V1().Pods().Informer()
	nss := kf.Core().V1().Namespaces().Informer()
	pdbs := kf.Policy().V1().PodDisruptionBudgets().Informer()
	df := dynamicinformer.NewDynamicSharedInformerFactory(k.dyn, 0)
	pools := df.ForResource(ippools).Informer()

	_, _ = pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { o.pod(obj) },
		UpdateFunc: func(_, obj any) { o.pod(obj) },
		DeleteFunc: func(obj any) { o.pod(obj); o.podGone(obj) },
	})
	_, _ = pdbs.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { o.pdb(obj) },
		UpdateFunc: func(_, obj any) { o.pdb(obj) },
	})
	_, _ = nss.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		if ns, ok := obj.(*corev1.Namespace); ok {
			o.count(o.nsAdds, ns.Name)
		}
	}})
	_, _ = pools.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if u, ok := obj.(*unstructured.Unstructured); ok {
				o.count(o.poolAdds, u.GetName())
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			a, _ := oldObj.(*unstructured.Unstructured)
			b, _ := newObj.(*unstructured.Unstructured)
			if a == nil || b == nil {
				return
			}
			was, _, _ := unstructured.NestedBool(a.Object, "spec", "disabled")
			is, _, _ := unstructured.NestedBool(b.Object, "spec", "disabled")
			switch {
			case !was && is:
				o.count(o.disables, b.GetName())
			case was && !is:
				o.count(o.enables, b.GetName())
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if u, ok := obj.(*unstructured.Unstructured); ok {
				o.count(o.poolDels, u.GetName())
			}
		},
	})
	kf.Start(ctx.Done())
	df.Start(ctx.Done())
	for typ, ok := range kf.WaitForCacheSync(ctx.Done()) {
		if !ok {
			t.Fatalf("observer: %v cache not synced", typ)
		}
	}
	for gvr, ok := range df.WaitForCacheSync(ctx.Done()) {
		if !ok {
			t.Fatalf("observer: %v cache not synced", gvr)
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	// What existed before the migration is not "added" by it.
	for k := range o.poolAdds {
		delete(o.poolAdds, k)
	}
	for k := range o.nsAdds {
		delete(o.nsAdds, k)
	}
	for _, obj := range pods.GetStore().List() {
		p := obj.(*corev1.Pod)
		if ip := podIP(p); ip.IsValid() && oldCIDR.Contains(ip) && p.DeletionTimestamp == nil {
			o.oldAtStart[p.UID] = p.Namespace + "/" + p.Name
		}
	}
	o.synced = true
	return o
}

func (o *observer) count(m map[string]int, key string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	m[key]++
}

// podOf is the pod of an informer event, a deletion's tombstone included.
func podOf(obj any) (*corev1.Pod, bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	p, ok := obj.(*corev1.Pod)
	return p, ok
}

func (o *observer) pod(obj any) {
	p, ok := podOf(obj)
	if !ok {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if p.Namespace == probeNS {
		o.probePods[p.UID] = p.Name
	}
	if a := podIP(p); a.IsValid() {
		o.ips[p.UID] = a.String()
	}
	if _, done := o.evicted[p.UID]; done {
		return
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue && c.Reason == "EvictionByEvictionAPI" {
			ip := ""
			if a := podIP(p); a.IsValid() {
				ip = a.String()
			}
			o.evicted[p.UID] = eviction{pod: p.Namespace + "/" + p.Name, ip: ip}
		}
	}
}

// podGone records a pod deleted without having been evicted.
func (o *observer) podGone(obj any) {
	p, ok := podOf(obj)
	if !ok {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, done := o.evicted[p.UID]; done {
		return
	}
	o.deleted[p.UID] = deletion{key: p.Namespace + "/" + p.Name, ip: o.ips[p.UID], created: p.CreationTimestamp.Time}
}

func (o *observer) pdb(obj any) {
	b, ok := obj.(*policyv1.PodDisruptionBudget)
	if !ok {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for name, at := range b.Status.DisruptedPods {
		if key := b.Namespace + "/" + name; at.After(o.admitted[key]) {
			o.admitted[key] = at.Time
		}
	}
}

// admittedEviction: the pod was deleted without the condition, after a budget
// listed it in status.disruptedPods (an entry no older than the pod: a
// StatefulSet pod recreated under the same name is another pod).
func (o *observer) admittedEviction(d deletion) bool {
	at, ok := o.admitted[d.key]
	return ok && !at.Before(d.created)
}

func podIP(p *corev1.Pod) netip.Addr {
	if p.Spec.HostNetwork {
		return netip.Addr{}
	}
	for _, pip := range p.Status.PodIPs {
		if a, err := netip.ParseAddr(pip.IP); err == nil && a.Is4() {
			return a
		}
	}
	return netip.Addr{}
}

// counts is what the observer saw, for the report and the assertions.
type counts struct {
	newPoolAdds, oldPoolDisables, oldPoolEnables, oldPoolDeletes, newPoolDeletes int
	probeNSAdds, probePods                                                       int
	oldPods, evicted                                                             int
	// finished: of evicted, admitted evictions finished by a plain delete.
	finished int
	// otherDeletes: pods deleted without an eviction that were not old-pool pods
	// (replacements deleted by their controllers, or by someone else).
	otherDeletes []string
	// needless: evictions of pods that were not in the old pool when evicted, or
	// were not among the old pool's pods at the start.
	needless []string
	// missed: old-pool pods never evicted.
	missed []string
}

func (o *observer) counts() counts {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := counts{newPoolAdds: o.poolAdds[newPoolName], oldPoolDisables: o.disables[oldPoolName], oldPoolEnables: o.enables[oldPoolName],
		oldPoolDeletes: o.poolDels[oldPoolName], newPoolDeletes: o.poolDels[newPoolName], probeNSAdds: o.nsAdds[probeNS],
		probePods: len(o.probePods), oldPods: len(o.oldAtStart)}
	evicted := maps.Clone(o.evicted)
	for uid, d := range o.deleted {
		if _, ok := evicted[uid]; ok {
			continue
		}
		// Only an old-pool pod's delete is taken for a finished eviction: the
		// budget's entry and the pod's creation have whole-second times, so a
		// replacement created in the second its predecessor's eviction was
		// admitted would match too. Other deletes are reported, not judged.
		if _, old := o.oldAtStart[uid]; old && o.admittedEviction(d) {
			evicted[uid] = eviction{pod: d.key, ip: d.ip}
			c.finished++
		} else if _, probe := o.probePods[uid]; !probe {
			c.otherDeletes = append(c.otherDeletes, d.key)
		}
	}
	sort.Strings(c.otherDeletes)
	c.evicted = len(evicted)
	for uid, e := range evicted {
		ip, _ := netip.ParseAddr(e.ip)
		_, wasOld := o.oldAtStart[uid]
		if !wasOld || !ip.IsValid() || !oldCIDR.Contains(ip) {
			c.needless = append(c.needless, fmt.Sprintf("%s (ip %q)", e.pod, e.ip))
		}
	}
	for uid, name := range o.oldAtStart {
		if _, ok := evicted[uid]; !ok {
			c.missed = append(c.missed, name)
		}
	}
	sort.Strings(c.needless)
	sort.Strings(c.missed)
	return c
}

// requireOnce asserts the migration's mutations happened exactly once each.
// verifications is how many runs verified (each creates the namespace and one
// pod per tested node): 1, or 2 when a finished run was applied again.
func (c counts) requireOnce(t *testing.T, what string, nodes, verifications int) {
	t.Helper()
	check := func(name string, got, want int) {
		if got != want {
			t.Errorf("%s: %s happened %d times, want %d", what, name, got, want)
		}
	}
	check("creating new-pool", c.newPoolAdds, 1)
	check("disabling the old pool", c.oldPoolDisables, 1)
	check("re-enabling the old pool", c.oldPoolEnables, 0)
	check("deleting the old pool", c.oldPoolDeletes, 1)
	check("deleting new-pool", c.newPoolDeletes, 0)
	check("creating the verification namespace", c.probeNSAdds, verifications)
	check("creating a verification pod", c.probePods, nodes*verifications)
	check("evicting an old-pool pod", c.evicted, c.oldPods)
	if len(c.needless) > 0 {
		t.Errorf("%s: evicted needlessly: %s", what, strings.Join(c.needless, ", "))
	}
	if len(c.missed) > 0 {
		t.Errorf("%s: old-pool pods never evicted: %s", what, strings.Join(c.missed, ", "))
	}
}

func (c counts) String() string {
	return fmt.Sprintf("new-pool created %d, old pool disabled %d / re-enabled %d / deleted %d, verification namespace created %d with %d pods, %d of %d old-pool pods evicted (%d of them admitted evictions finished by a delete), %d needless",
		c.newPoolAdds, c.oldPoolDisables, c.oldPoolEnables, c.oldPoolDeletes, c.probeNSAdds, c.probePods, c.evicted, c.oldPods, c.finished, len(c.needless)) +
		fmt.Sprintf(", other pods deleted without an eviction: %v", c.otherDeletes)
}

// evictionResponses reads apiserver_request_total for POST pods/eviction by
// response code: a pod evicted twice shows up here even when its condition does not.
func evictionResponses(ctx context.Context, k *clients) (map[string]float64, error) {
	raw, err := k.kube.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("read apiserver metrics: %w", err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "apiserver_request_total{") || !strings.Contains(line, `resource="pods"`) ||
			!strings.Contains(line, `subresource="eviction"`) || !strings.Contains(line, `verb="POST"`) {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err != nil {
			continue
		}
		code := between(line, `code="`, `"`)
		out[code] += v
	}
	return out, nil
}

func between(s, a, b string) string {
	i := strings.Index(s, a)
	if i < 0 {
		return ""
	}
	s = s[i+len(a):]
	if j := strings.Index(s, b); j >= 0 {
		return s[:j]
	}
	return s
}

// endState renders what a finished migration must leave, independent of names
// and addresses that differ between runs: pools, IPAM blocks per pool, pods per
// owner (how many, Ready, in which pool), namespaces, node tunnel addresses per
// pool, the lock and the journal's verdict.
func endState(ctx context.Context, t *testing.T, k *clients) string {
	t.Helper()
	var lines []string
	add := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	pools, err := k.dyn.Resource(ippools).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list pools: %v", err)
	}
	var prefixes []struct {
		name string
		cidr netip.Prefix
	}
	for _, p := range pools.Items {
		spec, _, _ := unstructured.NestedMap(p.Object, "spec")
		add("pool %s cidr=%v disabled=%v ipip=%v vxlan=%v nat=%v blockSize=%v nodeSelector=%v", p.GetName(), spec["cidr"], spec["disabled"] == true,
			spec["ipipMode"], spec["vxlanMode"], spec["natOutgoing"], spec["blockSize"], spec["nodeSelector"])
		if c, err := netip.ParsePrefix(fmt.Sprint(spec["cidr"])); err == nil {
			prefixes = append(prefixes, struct {
				name string
				cidr netip.Prefix
			}{p.GetName(), c})
		}
	}
	poolOf := func(a netip.Addr) string {
		if !a.IsValid() {
			return "none"
		}
		for _, p := range prefixes {
			if p.cidr.Contains(a) {
				return p.name
			}
		}
		switch {
		case oldCIDR.Contains(a):
			return "old CIDR (no pool)"
		case newCIDR.Contains(a):
			return "new CIDR (no pool)"
		}
		return "no pool"
	}
	blocks, err := k.dyn.Resource(ipamblocks).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list blocks: %v", err)
	}
	perPool := map[string]int{}
	for _, b := range blocks.Items {
		cidr, _, _ := unstructured.NestedString(b.Object, "spec", "cidr")
		pfx, err := netip.ParsePrefix(cidr)
		if err != nil {
			t.Fatalf("block %s: cidr %q: %v", b.GetName(), cidr, err)
		}
		perPool[poolOf(pfx.Addr())]++
	}
	for pool, n := range perPool {
		add("blocks in %s: %d", pool, n)
	}
	pods, err := k.kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list pods: %v", err)
	}
	type group struct{ n, ready, terminating int }
	groups := map[string]*group{}
	for i := range pods.Items {
		p := &pods.Items[i]
		key := fmt.Sprintf("%s/%s in %s", p.Namespace, ownerOf(p), poolOf(podIP(p)))
		if p.Spec.HostNetwork {
			key = fmt.Sprintf("%s/%s host network", p.Namespace, ownerOf(p))
		}
		g := groups[key]
		if g == nil {
			g = &group{}
			groups[key] = g
		}
		g.n++
		if p.DeletionTimestamp != nil {
			g.terminating++
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				g.ready++
			}
		}
	}
	for key, g := range groups {
		add("pods %s: %d, ready %d, terminating %d", key, g.n, g.ready, g.terminating)
	}
	nss, err := k.kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list namespaces: %v", err)
	}
	for _, ns := range nss.Items {
		add("namespace %s %s", ns.Name, ns.Status.Phase)
	}
	nodes, err := k.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list nodes: %v", err)
	}
	for _, n := range nodes.Items {
		a, _ := netip.ParseAddr(n.Annotations["projectcalico.org/IPv4IPIPTunnelAddr"])
		add("node %s tunnel in %s", n.Name, poolOf(a))
	}
	add("lock: %s", lockState(ctx, t, k))
	j, _, err := k.store().Load(ctx)
	switch {
	case err != nil:
		add("journal: unreadable: %v", err)
	case j == nil:
		add("journal: none")
	default:
		add("journal: %s", j.Status)
		for id, st := range j.Steps {
			add("journal step %s: %s", id, st.Status)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// ownerOf names a pod's workload: the Deployment for ReplicaSet pods (the name
// without the pod-template hash), else the controller, else the pod.
func ownerOf(p *corev1.Pod) string {
	for _, o := range p.OwnerReferences {
		if o.Controller == nil || !*o.Controller {
			continue
		}
		if o.Kind == "ReplicaSet" {
			if h := p.Labels["pod-template-hash"]; h != "" {
				return "Deployment " + strings.TrimSuffix(o.Name, "-"+h)
			}
		}
		return o.Kind + " " + o.Name
	}
	return "Pod " + p.Name
}

// lockState says whether the run lock is held: "free" when the Lease is gone,
// released (no holder) or expired.
func lockState(ctx context.Context, t *testing.T, k *clients) string {
	t.Helper()
	l, err := k.kube.CoordinationV1().Leases(journalNS).Get(ctx, lockName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "free"
	}
	if err != nil {
		t.Fatalf("read lock: %v", err)
	}
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
		return "free"
	}
	if l.Spec.RenewTime != nil && l.Spec.LeaseDurationSeconds != nil &&
		time.Since(l.Spec.RenewTime.Time) > time.Duration(*l.Spec.LeaseDurationSeconds)*time.Second {
		return "free"
	}
	return "held by " + *l.Spec.HolderIdentity
}

// diffLines reports lines only in a or only in b.
func diffLines(a, b string) string {
	as, bs := map[string]bool{}, map[string]bool{}
	for _, l := range strings.Split(a, "\n") {
		as[l] = true
	}
	for _, l := range strings.Split(b, "\n") {
		bs[l] = true
	}
	var out []string
	for l := range as {
		if !bs[l] {
			out = append(out, "- "+l)
		}
	}
	for l := range bs {
		if !as[l] {
			out = append(out, "+ "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}
