package podmove

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestRestartRefusal(t *testing.T) {
	f := &fakeStore{}
	f.deployment("ns", "web", 2)
	f.deployment("ns", "paused", 2)
	f.deps[1].Spec.Paused = true
	f.deployment("ns", "nosurge", 1)
	f.deps[2].Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: ptr(intstr.FromInt32(0))}}
	f.deployment("ns", "recreate", 1)
	f.deps[3].Spec.Strategy.Type = appsv1.RecreateDeploymentStrategyType
	f.statefulSet("ns", "db", 3)
	f.statefulSet("ns", "ondelete", 3)
	f.sts[1].Spec.UpdateStrategy.Type = appsv1.OnDeleteStatefulSetStrategyType
	f.statefulSet("ns", "part", 3)
	f.sts[2].Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr(int32(2))}
	f.daemonSet("ns", "agent", 3)
	f.daemonSet("ns", "agent-od", 3)
	f.dss[1].Spec.UpdateStrategy.Type = appsv1.OnDeleteDaemonSetStrategyType
	for _, tc := range []struct {
		owner Owner
		why   string // "" = restartable
		surge bool
	}{
		{Owner{Kind: KindDeployment, Namespace: "ns", Name: "web"}, "", true},
		{Owner{Kind: KindDeployment, Namespace: "ns", Name: "paused"}, "paused Deployments", true},
		{Owner{Kind: KindDeployment, Namespace: "ns", Name: "nosurge"}, "", false},
		{Owner{Kind: KindDeployment, Namespace: "ns", Name: "recreate"}, "", false},
		{Owner{Kind: KindStatefulSet, Namespace: "ns", Name: "db"}, "", false},
		{Owner{Kind: KindStatefulSet, Namespace: "ns", Name: "ondelete"}, "OnDelete", false},
		{Owner{Kind: KindStatefulSet, Namespace: "ns", Name: "part"}, "partition", false},
		{Owner{Kind: KindDaemonSet, Namespace: "ns", Name: "agent"}, "", false},
		{Owner{Kind: KindDaemonSet, Namespace: "ns", Name: "agent-od"}, "OnDelete", false},
		{Owner{Kind: KindReplicaSet, Namespace: "ns", Name: "rs"}, "ReplicaSets without a Deployment", false},
		{Owner{Kind: "Rollout", Namespace: "ns", Name: "r"}, "Rollout owners", false},
	} {
		t.Run(tc.owner.String(), func(t *testing.T) {
			why := restartRefusal(tc.owner, f)
			if (why == "") != (tc.why == "") || !strings.Contains(why, tc.why) {
				t.Errorf("restartRefusal = %q, want %q", why, tc.why)
			}
			if got := canSurge(tc.owner, f); got != tc.surge {
				t.Errorf("canSurge = %v, want %v", got, tc.surge)
			}
		})
	}
}

func TestRestartsDue(t *testing.T) {
	f, s := &fakeStore{}, testSetup()
	s.strategy = ActRestart
	a, b, c := f.deployment("ns", "a", 3), f.deployment("ns", "b", 3), f.deployment("ns", "c", 3)
	f.pods = append(f.pods, mkPod("ns", "a-0", "192.168.0.1", a), mkPod("ns", "b-0", "192.168.0.2", b), mkPod("ns", "c-0", "192.168.0.3", c))
	w := observe(f, s, newMemory(), t0)
	done := map[string]bool{"a": true}
	due, later := restartsDue(w, func(o Owner) bool { return done[o.Name] }, 6)
	if len(due) != 1 || due[0].Name != "b" || len(later) != 1 || later[0].Name != "c" {
		t.Fatalf("due %v later %v", due, later)
	}
}
