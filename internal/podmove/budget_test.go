package podmove

import (
	"strings"
	"testing"

	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestBudgetAdmit(t *testing.T) {
	healthy := func(mod func(*Budget)) *Budget {
		// 20 replicas, maxUnavailable 25%: 5 allowed, needs 15.
		b := &Budget{Namespace: "ns", Name: "web", Allowed: 5, CurrentHealthy: 20, DesiredHealthy: 15, ExpectedPods: 20, Synced: true, Healthy: 20}
		if mod != nil {
			mod(b)
		}
		return b
	}
	for _, tc := range []struct {
		name          string
		b             *Budget
		ready, ignore bool
		ok, consumes  bool
		why           string
	}{
		{name: "ready pod, room", b: healthy(nil), ready: true, ok: true, consumes: true},
		{name: "pending pod ignores even an exhausted budget", b: healthy(func(b *Budget) { b.Allowed = 0 }), ignore: true, ok: true},
		{name: "own unreflected evictions use the room up", b: healthy(func(b *Budget) { b.Unreflected = 5 }), ready: true, why: "allows no disruption now"},
		{name: "one slot left after four of ours", b: healthy(func(b *Budget) { b.Unreflected, b.Draining = 4, 4 }), ready: true, ok: true, consumes: true},
		{name: "status not observed yet", b: healthy(func(b *Budget) { b.Synced = false }), ready: true, why: "status not yet updated"},
		{name: "status lags: own view sees fewer healthy", b: healthy(func(b *Budget) { b.Healthy = 15 }), ready: true, why: "15 healthy pod(s) seen, 15 needed"},
		{name: "own drains count against own view", b: healthy(func(b *Budget) { b.Healthy, b.Draining = 17, 2 }), ready: true, why: "15 healthy pod(s) seen"},
		{name: "unready pod, IfHealthyBudget, healthy budget, 0 allowed: free", b: healthy(func(b *Budget) { b.Allowed, b.CurrentHealthy = 0, 15 }), ok: true},
		{name: "unready pod, IfHealthyBudget, unhealthy budget: needs an allowed disruption", b: healthy(func(b *Budget) { b.Allowed, b.CurrentHealthy = 0, 14 }), why: "allows no disruption now"},
		{name: "unready pod, unhealthy budget, but room: consumes", b: healthy(func(b *Budget) { b.Allowed, b.CurrentHealthy, b.DesiredHealthy = 1, 3, 5 }), ok: true, consumes: true},
		{name: "unready pod, AlwaysAllow, unhealthy budget: free", b: healthy(func(b *Budget) { b.Allowed, b.CurrentHealthy, b.AlwaysAllow = 0, 3, true }), ok: true},
		{name: "unready pod, IfHealthyBudget, desiredHealthy 0: not the healthy-budget rule", b: healthy(func(b *Budget) { b.Allowed, b.DesiredHealthy, b.CurrentHealthy = 0, 0, 0 }), why: "allows no disruption now"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.b.admit(tc.ready, tc.ignore)
			if v.OK != tc.ok || v.Consumes != tc.consumes {
				t.Fatalf("admit = %+v, want ok=%v consumes=%v", v, tc.ok, tc.consumes)
			}
			if !tc.ok && !strings.Contains(v.Why, tc.why) {
				t.Fatalf("why = %q, want it to mention %q", v.Why, tc.why)
			}
			if !tc.ok && !strings.Contains(v.Why, "PodDisruptionBudget ns/web") {
				t.Fatalf("why = %q does not name the budget", v.Why)
			}
		})
	}
}

func TestBudgetNeverAllows(t *testing.T) {
	for _, tc := range []struct {
		name              string
		desired, expected int32
		synced, want      bool
	}{
		{"minAvailable = replicas", 3, 3, true, true},
		{"maxUnavailable 0", 20, 20, true, true},
		{"room", 15, 20, true, false},
		{"not synced: cannot tell", 3, 3, false, false},
		{"no pods expected", 0, 0, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &Budget{DesiredHealthy: tc.desired, ExpectedPods: tc.expected, Synced: tc.synced}
			if got := b.NeverAllows(); got != tc.want {
				t.Fatalf("NeverAllows = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNewBudget(t *testing.T) {
	always := policyv1.AlwaysAllow
	for _, tc := range []struct {
		name        string
		pdb         policyv1.PodDisruptionBudget
		matches     bool
		synced      bool
		alwaysAllow bool
	}{
		{name: "empty selector matches the namespace (policy/v1)", pdb: policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Generation: 2}, Spec: policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{}},
			Status: policyv1.PodDisruptionBudgetStatus{ObservedGeneration: 2}}, matches: true, synced: true},
		{name: "nil selector matches nothing", pdb: policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Generation: 1}}},
		{name: "other namespace", pdb: policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Generation: 1},
			Spec: policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{}}}},
		{name: "stale status, AlwaysAllow", pdb: policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Generation: 3},
			Spec:   policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, UnhealthyPodEvictionPolicy: &always},
			Status: policyv1.PodDisruptionBudgetStatus{ObservedGeneration: 2}}, matches: true, alwaysAllow: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBudget(&tc.pdb)
			p := mkPod("ns", "p", "192.168.0.1", labelled("app", "web"))
			if got := b.Matches(p); got != tc.matches {
				t.Errorf("Matches = %v, want %v", got, tc.matches)
			}
			if b.Synced != tc.synced || b.AlwaysAllow != tc.alwaysAllow {
				t.Errorf("Synced=%v AlwaysAllow=%v, want %v %v", b.Synced, b.AlwaysAllow, tc.synced, tc.alwaysAllow)
			}
		})
	}
}

func TestOwnerAdmit(t *testing.T) {
	o := Owner{Kind: KindDeployment, Namespace: "ns", Name: "web"}
	for _, tc := range []struct {
		name                              string
		goal, readyNow, draining, maxUnav int
		ready, ok                         bool
	}{
		{"all up: one may go", 3, 3, 0, 1, true, true},
		{"one draining: wait", 3, 3, 1, 1, true, false},
		{"one down (evicted, replacement starting): wait", 3, 2, 0, 1, true, false},
		{"maxUnavailable 2, one down: one more", 3, 2, 0, 2, true, true},
		{"not-Ready pods cost nothing", 3, 2, 0, 1, false, true},
		{"surge above goal counts as room", 3, 4, 1, 1, true, true},
		{"crashlooping pod not in the goal: healthy ones still move", 2, 2, 0, 1, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := ownerAdmit(o, tc.goal, tc.readyNow, tc.draining, tc.maxUnav, tc.ready)
			if v.OK != tc.ok {
				t.Fatalf("ownerAdmit = %+v, want ok=%v", v, tc.ok)
			}
			if !v.OK && !strings.Contains(v.Why, "Deployment ns/web") {
				t.Fatalf("why %q does not name the owner", v.Why)
			}
		})
	}
}
