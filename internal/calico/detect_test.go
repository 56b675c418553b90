package calico

import (
	"context"
	"errors"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynfake "k8s.io/client-go/dynamic/fake"
	kubetesting "k8s.io/client-go/testing"
)

// discovery serves the listed group versions; broken ones fail as an aggregated
// API whose server is down does.
type stubDiscovery struct {
	*fakediscovery.FakeDiscovery
	broken map[string]bool
	asked  map[string]int // group versions discovered, and how often
}

func (d stubDiscovery) ServerResourcesForGroupVersion(gv string) (*metav1.APIResourceList, error) {
	d.asked[gv]++
	if d.broken[gv] {
		return nil, errors.New("the server is currently unable to handle the request")
	}
	return d.FakeDiscovery.ServerResourcesForGroupVersion(gv)
}

func newDiscovery(broken []string, gvs map[string][]string) stubDiscovery {
	f := &fakediscovery.FakeDiscovery{Fake: &kubetesting.Fake{}}
	for gv, rs := range gvs {
		l := &metav1.APIResourceList{GroupVersion: gv}
		for _, r := range rs {
			l.APIResources = append(l.APIResources, metav1.APIResource{Name: r})
		}
		f.Resources = append(f.Resources, l)
	}
	d := stubDiscovery{FakeDiscovery: f, broken: map[string]bool{}, asked: map[string]int{}}
	for _, b := range broken {
		d.broken[b] = true
	}
	return d
}

func apiService(service bool, available bool) *unstructured.Unstructured {
	spec := map[string]any{"group": "projectcalico.org", "version": "v3"}
	if service {
		spec["service"] = map[string]any{"namespace": "calico-apiserver", "name": "calico-api"}
	}
	status := "False"
	if available {
		status = "True"
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
		"metadata": map[string]any{"name": v3APIServiceName},
		"spec":     spec,
		"status":   map[string]any{"conditions": []any{map[string]any{"type": "Available", "status": status, "reason": "FailedDiscoveryCheck", "message": "no response"}}},
	}}
}

func TestDetect(t *testing.T) {
	v1 := map[string][]string{"crd.projectcalico.org/v1": {"ippools", "ipamblocks", "blockaffinities"}}
	with := func(extra map[string][]string) map[string][]string {
		out := map[string][]string{}
		for k, v := range v1 {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	v3 := map[string][]string{"projectcalico.org/v3": {"ippools"}}
	op := map[string][]string{"projectcalico.org/v3": {"ippools"}, "operator.tigera.io/v1": {"installations"}}
	for _, tc := range []struct {
		name     string
		gvs      map[string][]string
		broken   []string
		svc      *unstructured.Unstructured
		choice   APIChoice
		flavour  Flavour
		source   V3Source
		operator bool
		err      string // substring; "" = no error
	}{
		{name: "manifest install, auto", gvs: v1, choice: APIAuto, flavour: FlavourCRD},
		{name: "manifest install, crd", gvs: v1, choice: APICRD, flavour: FlavourCRD},
		{name: "manifest install, v3 refused naming what was found", gvs: v1, choice: APIV3, err: "found crd.projectcalico.org/v1 (ippools, ipamblocks)"},
		{name: "Calico API server, auto", gvs: with(v3), svc: apiService(true, true), choice: APIAuto, flavour: FlavourV3, source: V3APIServer},
		{name: "Calico API server, crd forced", gvs: with(v3), svc: apiService(true, true), choice: APICRD, flavour: FlavourCRD, source: V3APIServer},
		{name: "native v3 CRDs (Local APIService)", gvs: with(v3), svc: apiService(false, true), choice: APIAuto, flavour: FlavourV3, source: V3CRDs},
		{name: "v3 served, APIService unreadable (RBAC)", gvs: with(v3), choice: APIV3, flavour: FlavourV3, source: V3Unknown},
		{name: "Calico API server down, auto falls back to v1", gvs: with(v3), broken: []string{"projectcalico.org/v3"}, svc: apiService(true, false), choice: APIAuto, flavour: FlavourCRD, source: V3APIServer},
		{name: "Calico API server down, v3 refused", gvs: with(v3), broken: []string{"projectcalico.org/v3"}, svc: apiService(true, false), choice: APIV3, err: "registered but unavailable"},
		{name: "operator install", gvs: with(op), svc: apiService(true, true), choice: APIAuto, flavour: FlavourV3, source: V3APIServer, operator: true},
		{name: "no Calico", gvs: map[string][]string{}, choice: APIAuto, err: "is Calico installed?"},
		{name: "no Calico, crd", gvs: map[string][]string{}, choice: APICRD, err: "found no Calico API"},
		{name: "v3 without v1 IPAM", gvs: v3, svc: apiService(false, true), choice: APIV3, err: "IPAM blocks are not served"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var objs []runtime.Object
			if tc.svc != nil {
				objs = append(objs, tc.svc)
			}
			dyn := dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
				map[schema.GroupVersionResource]string{gvrAPIServices: "APIServiceList"}, objs...)
			d, err := Detect(context.Background(), newDiscovery(tc.broken, tc.gvs), dyn, tc.choice)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrNotInstalled) {
					t.Fatalf("error = %v, want ErrNotInstalled containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Flavour != tc.flavour || d.V3 != tc.source || d.Operator != tc.operator {
				t.Errorf("got flavour %s, v3 %q, operator %t; want %s, %q, %t (%s)", d.Flavour, d.V3, d.Operator, tc.flavour, tc.source, tc.operator, d)
			}
			if d.String() == "" {
				t.Error("empty description")
			}
		})
	}
}

// TestDetectSkipsDiscoveryOfADownAPIServer: an APIService that reports its server
// unavailable is believed; its group's discovery, which would answer 503 after the
// client's retries (~12 s per command), is not asked.
func TestDetectSkipsDiscoveryOfADownAPIServer(t *testing.T) {
	disc := newDiscovery([]string{"projectcalico.org/v3"}, map[string][]string{
		"crd.projectcalico.org/v1": {"ippools", "ipamblocks", "blockaffinities"}, "projectcalico.org/v3": {"ippools"}})
	dyn := dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{gvrAPIServices: "APIServiceList"}, apiService(true, false))
	d, err := Detect(context.Background(), disc, dyn, APIAuto)
	if err != nil {
		t.Fatal(err)
	}
	if d.Flavour != FlavourCRD || !strings.Contains(d.V3Unavailable, "no response") {
		t.Errorf("got %s (v3 unavailable: %q), want the crd flavour and the APIService's reason", d, d.V3Unavailable)
	}
	if n := disc.asked["projectcalico.org/v3"]; n != 0 {
		t.Errorf("discovery of projectcalico.org/v3 asked %d time(s) though its APIService says it is down", n)
	}
}

func TestParseAPIChoice(t *testing.T) {
	for _, s := range []string{"auto", "crd", "v3"} {
		if _, err := ParseAPIChoice(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	if _, err := ParseAPIChoice("v1"); err == nil {
		t.Error("v1 accepted")
	}
}
