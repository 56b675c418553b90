package sandbox

import (
	"context"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/runbookdev/runbook/test/scenarios"
)

// sandboxObjects are the objects Start creates for a scenario and flavour that can
// make kube-apiserver dial: the Calico manifest (and the operator's CRDs), the
// workloads' webhook and governing Services, the Calico API registration, the
// nodes. Built with the functions Start uses.
func sandboxObjects(s *scenarios.Scenario, flavour string, m *calicoManifest, operatorCRDs []*apiextensionsv1.CustomResourceDefinition) []runtime.Object {
	var objs []runtime.Object
	for _, o := range m.objects {
		objs = append(objs, o)
	}
	for _, crd := range m.crds {
		objs = append(objs, crd)
	}
	if IsOperatorFlavour(flavour) {
		for _, crd := range operatorCRDs {
			objs = append(objs, crd)
		}
	}
	for _, w := range s.Workloads {
		if w.Webhook != nil {
			svc, vwc := webhookObjects(w)
			objs = append(objs, svc, vwc)
		}
		if w.Kind == scenarios.KindStatefulSet {
			objs = append(objs, headlessService(w))
		}
	}
	if flavour != FlavourCRD {
		svc, apiService := calicoAPIObjects([]byte("ca"), 6443)
		objs = append(objs, svc, apiService)
	}
	for _, n := range nodeObjects(s) {
		objs = append(objs, n)
	}
	return objs
}

// Every address the objects of every shipped scenario and flavour make the
// apiserver dial is guarded: inside a guarded CIDR in routes mode, through the
// loopback-only egress proxy otherwise.
func TestSandboxObjectsDialOnlyGuardedAddresses(t *testing.T) {
	ctx := context.Background()
	dir, err := calicoModuleDir(ctx)
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := loadCalicoManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	crdsOf := map[string][]*apiextensionsv1.CustomResourceDefinition{}
	for _, flavour := range OperatorFlavours() {
		if crdsOf[flavour], err = operatorCRDs(ctx, flavour, dir, ""); err != nil {
			t.Fatal(err)
		}
	}
	proxied := egressContextsOfGuard(t)

	sawWebhook, sawAPIService := false, false
	for _, name := range scenarios.Names() {
		s, err := scenarios.Load(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, flavour := range Flavours() {
			cidrs, err := guardedCIDRs(s, flavour)
			if err != nil {
				t.Fatal(err)
			}
			targets, err := objectDialTargets(sandboxObjects(s, flavour, manifest, crdsOf[flavour]), netip.MustParsePrefix(s.Cluster.ServiceSubnet))
			if err != nil {
				t.Fatal(err)
			}
			for _, tg := range targets {
				sawWebhook = sawWebhook || strings.Contains(tg.What, "ValidatingWebhookConfiguration")
				sawAPIService = sawAPIService || strings.Contains(tg.What, "APIService")
			}
			for _, mode := range []struct {
				guard   NetworkGuard
				proxied map[string]bool
			}{
				{NetworkGuard{Mode: GuardRoutes, CIDRs: cidrs}, map[string]bool{}},
				{NetworkGuard{Mode: GuardEgressProxy, CIDRs: cidrs}, proxied},
			} {
				for _, err := range checkDialTargets(dialInventory{targets: targets, proxied: mode.proxied}, mode.guard) {
					t.Errorf("scenario %s, flavour %s: %v", name, flavour, err)
				}
			}
		}
	}
	if !sawWebhook || !sawAPIService {
		t.Errorf("the inventory missed the workloads scenario's webhook (%v) or the Calico APIService (%v)", sawWebhook, sawAPIService)
	}
}

// egressContextsOfGuard reads back the egress configuration the guard writes for
// kube-apiserver: which network contexts go through its proxy.
func egressContextsOfGuard(t *testing.T) map[string]bool {
	t.Helper()
	g, err := startEgressGuard()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	path := filepath.Join(t.TempDir(), egressSelectorFile)
	if err := g.writeConfig(path); err != nil {
		t.Fatal(err)
	}
	proxied := map[string]bool{}
	targets, err := egressDialTargets(path, proxied, g.socket)
	if err != nil {
		t.Fatal(err)
	}
	if len(targets) != 0 || !proxied[egressCluster] || !proxied[egressControlPlane] {
		t.Fatalf("egress configuration: proxied %v, other proxies %v; want cluster and controlplane through the guard", proxied, targets)
	}
	return proxied
}

// The check fails for what would leave the machine, so the inventory test above
// catches a new non-local dial.
func TestCheckDialTargetsRefusesNonLocal(t *testing.T) {
	url := "https://203.0.113.7/validate"
	objs := []runtime.Object{
		&admissionregistrationv1.ValidatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: "external"},
			Webhooks:   []admissionregistrationv1.ValidatingWebhook{{Name: "x", ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url}}},
		},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "db"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "p"}, Status: corev1.PodStatus{PodIPs: []corev1.PodIP{{IP: "192.168.1.5"}}}},
	}
	targets, err := objectDialTargets(objs, netip.Prefix{})
	if err != nil {
		t.Fatal(err)
	}
	targets = append(targets,
		dialTarget{From: Kwok, What: "kubeconfig", Host: "192.0.2.10"},
		dialTarget{From: ControllerManager, What: "kubeconfig", Host: "localhost"},
	)
	g := NetworkGuard{Mode: GuardRoutes, CIDRs: []netip.Prefix{netip.MustParsePrefix("192.168.0.0/16")}}
	errs := checkDialTargets(dialInventory{targets: targets}, g)
	var got []string
	for _, err := range errs {
		got = append(got, err.Error())
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{"203.0.113.7", "db.example.com", "192.0.2.10"} {
		if !strings.Contains(all, want) {
			t.Errorf("no error for %s; errors:\n%s", want, all)
		}
	}
	if len(errs) != 3 {
		t.Errorf("%d errors, want 3 (the pod in the guarded pool and localhost are fine):\n%s", len(errs), all)
	}
	// Through the egress proxy the apiserver's dials are fine, the kwok one is not.
	errs = checkDialTargets(dialInventory{targets: targets, proxied: map[string]bool{egressCluster: true, egressControlPlane: true}}, NetworkGuard{Mode: GuardEgressProxy})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "192.0.2.10") {
		t.Errorf("egress-proxy mode: %v; want only kwok's 192.0.2.10", errs)
	}
}
