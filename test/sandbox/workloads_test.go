package sandbox

import (
	"maps"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/runbookdev/runbook/test/sandbox/cni"
	"github.com/runbookdev/runbook/test/scenarios"
)

func TestPodAnnotations(t *testing.T) {
	d := func(s string) *metav1.Duration {
		v, _ := time.ParseDuration(s)
		return &metav1.Duration{Duration: v}
	}
	for _, tc := range []struct {
		name string
		w    scenarios.Workload
		want map[string]string
	}{
		{"none", scenarios.Workload{}, nil},
		{"own annotations kept", scenarios.Workload{Annotations: map[string]string{"a": "b"}}, map[string]string{"a": "b"}},
		{"pool pins", scenarios.Workload{IPv4Pools: []string{"p1", "10.0.0.0/16"}, IPv6Pools: []string{"p6"}},
			map[string]string{cni.AnnotationIPv4Pools: `["p1","10.0.0.0/16"]`, cni.AnnotationIPv6Pools: `["p6"]`}},
		{"knobs", scenarios.Workload{StartDelay: d("3s"), RunFor: d("1h"), Fault: scenarios.FaultCrashLoop, ShutdownDelay: d("12s")},
			map[string]string{AnnotationStartDelay: "3s", AnnotationRunFor: "1h0m0s", AnnotationFault: "CrashLoop", AnnotationShutdownDelay: "12s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := podAnnotations(tc.w); !maps.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	// The scenario's map is not modified.
	w := scenarios.Workload{Annotations: map[string]string{"a": "b"}, Fault: scenarios.FaultNeverReady}
	podAnnotations(w)
	if len(w.Annotations) != 1 {
		t.Errorf("scenario annotations changed: %v", w.Annotations)
	}
}

func TestBarePodNames(t *testing.T) {
	for _, tc := range []struct {
		replicas int32
		want     []string
	}{
		{1, []string{"debug"}},
		{3, []string{"debug-1", "debug-2", "debug-3"}},
	} {
		var got []string
		for _, p := range barePods(scenarios.Workload{Kind: scenarios.KindPod, Namespace: "ns", Name: "debug", Replicas: tc.replicas, Labels: map[string]string{"app": "debug"}}) {
			got = append(got, p.Name)
			if len(p.OwnerReferences) != 0 || p.Labels["app"] != "debug" {
				t.Errorf("pod %+v", p.ObjectMeta)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("replicas %d: %v, want %v", tc.replicas, got, tc.want)
		}
	}
}

func TestPDBs(t *testing.T) {
	one := intstr.FromInt32(1)
	w := scenarios.Workload{Namespace: "shop", Name: "web", Labels: map[string]string{"app": "web"},
		PDB:  &scenarios.PDB{MaxUnavailable: &one, UnhealthyPodEvictionPolicy: "AlwaysAllow"},
		PDBs: []scenarios.PDB{{Name: "web-zone", MinAvailable: &one, MatchLabels: map[string]string{"zone": "a"}}},
	}
	got := pdbs(w)
	if len(got) != 2 {
		t.Fatalf("%d budgets", len(got))
	}
	if got[0].Name != "web" || got[0].Spec.Selector.MatchLabels["app"] != "web" || string(*got[0].Spec.UnhealthyPodEvictionPolicy) != "AlwaysAllow" {
		t.Errorf("pdb: %+v", got[0])
	}
	if got[1].Name != "web-zone" || got[1].Spec.Selector.MatchLabels["zone"] != "a" || got[1].Spec.UnhealthyPodEvictionPolicy != nil {
		t.Errorf("pdbs[0]: %+v", got[1])
	}
}

func TestWebhookObjects(t *testing.T) {
	w := scenarios.Workload{Namespace: "policy-system", Name: "policy", Labels: map[string]string{"app": "policy"}, Webhook: &scenarios.Webhook{FailurePolicy: "Fail"}}
	svc, vwc := webhookObjects(w)
	if svc.Name != "policy-webhook" || svc.Spec.Selector["app"] != "policy" {
		t.Errorf("service %+v", svc)
	}
	h := vwc.Webhooks[0]
	if vwc.Name != "policy-system.policy.sandbox.runbook.dev" || string(*h.FailurePolicy) != "Fail" ||
		h.ClientConfig.Service.Name != svc.Name || h.NamespaceSelector.MatchLabels[LabelWebhook] != "policy-system.policy" {
		t.Errorf("webhook %s: %+v", vwc.Name, h)
	}
}

// readinessDelay and terminationGracePeriodSeconds reach the pod spec, where the
// kwok stages and the API server read them.
func TestPodTemplateLifecycleFields(t *testing.T) {
	grace := int64(7)
	tmpl := podTemplate(scenarios.Workload{Name: "web", ReadinessDelay: &metav1.Duration{Duration: 3 * time.Second}, TerminationGracePeriodSeconds: &grace})
	probe := tmpl.Spec.Containers[0].ReadinessProbe
	if probe == nil || probe.InitialDelaySeconds != 3 || probe.Exec == nil {
		t.Errorf("readiness probe %+v, want exec with initialDelaySeconds 3", probe)
	}
	if g := tmpl.Spec.TerminationGracePeriodSeconds; g == nil || *g != 7 {
		t.Errorf("terminationGracePeriodSeconds %v, want 7", g)
	}
	plain := podTemplate(scenarios.Workload{Name: "web"})
	if plain.Spec.Containers[0].ReadinessProbe != nil || plain.Spec.TerminationGracePeriodSeconds != nil {
		t.Errorf("defaults changed: %+v", plain.Spec)
	}
}
