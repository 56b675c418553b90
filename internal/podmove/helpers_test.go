package podmove

import (
	"net/netip"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var (
	t0      = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	oldPool = Pool{Name: "old", CIDR: netip.MustParsePrefix("192.168.0.0/16")}
	newPool = Pool{Name: "new", CIDR: netip.MustParsePrefix("10.0.0.0/16")}
)

// fakeStore is a Store over plain objects.
type fakeStore struct {
	pods []*corev1.Pod
	pdbs []*policyv1.PodDisruptionBudget
	rs   []*appsv1.ReplicaSet
	deps []*appsv1.Deployment
	sts  []*appsv1.StatefulSet
	dss  []*appsv1.DaemonSet
	nss  map[string]map[string]string // namespace annotations
}

func (f *fakeStore) NamespaceAnnotations(n string) map[string]string { return f.nss[n] }

func (f *fakeStore) Pods() []*corev1.Pod                   { return f.pods }
func (f *fakeStore) PDBs() []*policyv1.PodDisruptionBudget { return f.pdbs }
func (f *fakeStore) ReplicaSet(ns, n string) (*appsv1.ReplicaSet, bool) {
	return find(f.rs, func(o *appsv1.ReplicaSet) bool { return o.Namespace == ns && o.Name == n })
}
func (f *fakeStore) Deployment(ns, n string) (*appsv1.Deployment, bool) {
	return find(f.deps, func(o *appsv1.Deployment) bool { return o.Namespace == ns && o.Name == n })
}
func (f *fakeStore) StatefulSet(ns, n string) (*appsv1.StatefulSet, bool) {
	return find(f.sts, func(o *appsv1.StatefulSet) bool { return o.Namespace == ns && o.Name == n })
}
func (f *fakeStore) DaemonSet(ns, n string) (*appsv1.DaemonSet, bool) {
	return find(f.dss, func(o *appsv1.DaemonSet) bool { return o.Namespace == ns && o.Name == n })
}

func find[T any](xs []T, ok func(T) bool) (T, bool) {
	for _, x := range xs {
		if ok(x) {
			return x, true
		}
	}
	var zero T
	return zero, false
}

func ptr[T any](v T) *T { return &v }

type podOpt func(*corev1.Pod)

// mkPod is a Running, Ready pod in namespace ns at ip, created before t0.
func mkPod(ns, name, ip string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(ns + "-" + name + "-" + ip),
			Labels: map[string]string{}, CreationTimestamp: metav1.NewTime(t0.Add(-time.Hour))},
		Spec: corev1.PodSpec{NodeName: "n1"},
		Status: corev1.PodStatus{Phase: corev1.PodRunning,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
	if ip != "" {
		p.Status.PodIP = ip
		p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func notReady(p *corev1.Pod) {
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: metav1.NewTime(t0.Add(-time.Minute))}}
}

func crashLooping(p *corev1.Pod) {
	notReady(p)
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", RestartCount: 4,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}}
}

func pending(p *corev1.Pod) {
	p.Status.Phase = corev1.PodPending
	notReady(p)
}

func terminating(p *corev1.Pod) { p.DeletionTimestamp = ptr(metav1.NewTime(t0.Add(-time.Second))) }

func createdAfter(d time.Duration) podOpt {
	return func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(t0.Add(d)) }
}

func onNode(n string) podOpt { return func(p *corev1.Pod) { p.Spec.NodeName = n } }

func labelled(k, v string) podOpt { return func(p *corev1.Pod) { p.Labels[k] = v } }

func ownedBy(kind, name string, uid types.UID) podOpt {
	return func(p *corev1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{{Kind: kind, Name: name, UID: uid, Controller: ptr(true), APIVersion: "apps/v1"}}
	}
}

// deployment adds a Deployment with its ReplicaSet to the store and returns the
// pod option that makes a pod one of its pods.
func (f *fakeStore) deployment(ns, name string, replicas int32) podOpt {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("d-" + name)},
		Spec: appsv1.DeploymentSpec{Replicas: ptr(replicas)}}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-abc", UID: types.UID("rs-" + name),
		OwnerReferences: []metav1.OwnerReference{{Kind: KindDeployment, Name: name, UID: d.UID, Controller: ptr(true)}}},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr(replicas)}}
	f.deps, f.rs = append(f.deps, d), append(f.rs, rs)
	return func(p *corev1.Pod) { ownedBy(KindReplicaSet, rs.Name, rs.UID)(p); labelled("app", name)(p) }
}

func (f *fakeStore) statefulSet(ns, name string, replicas int32) podOpt {
	s := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("s-" + name)},
		Spec: appsv1.StatefulSetSpec{Replicas: ptr(replicas)}}
	f.sts = append(f.sts, s)
	return func(p *corev1.Pod) { ownedBy(KindStatefulSet, name, s.UID)(p); labelled("app", name)(p) }
}

func (f *fakeStore) daemonSet(ns, name string, desired int32) podOpt {
	d := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("ds-" + name)},
		Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: desired}}
	f.dss = append(f.dss, d)
	return func(p *corev1.Pod) { ownedBy(KindDaemonSet, name, d.UID)(p); labelled("app", name)(p) }
}

// pdb adds a PodDisruptionBudget over app=name with the given status.
func (f *fakeStore) pdb(ns, app string, allowed, current, desired, expected int32) *policyv1.PodDisruptionBudget {
	mu := intstr.FromInt32(1)
	b := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: app, Generation: 1},
		Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &mu, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}},
		Status: policyv1.PodDisruptionBudgetStatus{ObservedGeneration: 1, DisruptionsAllowed: allowed, CurrentHealthy: current,
			DesiredHealthy: desired, ExpectedPods: expected}}
	f.pdbs = append(f.pdbs, b)
	return b
}

func testSetup() *setup {
	return &setup{pool: oldPool, targets: []Pool{newPool}, strategy: ActEvict, since: t0,
		filters: Filters{Unmanaged: UnmanagedRefuse, Jobs: JobsWait}}
}

// noEvents is a budgetEvents that has seen nothing.
type noEvents struct{}

func (noEvents) disruptedSince(string, string, time.Time) bool { return false }
func (noEvents) changedSince(string, time.Time) bool           { return false }

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func mustSelector(s string) labels.Selector {
	sel, err := labels.Parse(s)
	if err != nil {
		panic(err)
	}
	return sel
}
