package sandbox_test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"

	"github.com/runbookdev/runbook/test/sandbox"
)

var (
	v3Pools  = schema.GroupVersionResource{Group: "projectcalico.org", Version: "v3", Resource: "ippools"}
	crdPools = schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "ippools"}
)

// The apiserver flavour serves projectcalico.org/v3 through the real Calico API
// server: its validation applies (a pool's CIDR is immutable, pools must not
// overlap), pools are stored as crd.projectcalico.org objects, and a v3 delete
// disables the pool before deleting it.
func TestAPIServerFlavour(t *testing.T) {
	c := sandbox.StartForTest(t, sandbox.Options{Flavour: sandbox.FlavourAPIServer})
	for _, tm := range c.Timings() {
		t.Logf("%-28s %v", tm.Phase, tm.Duration.Round(time.Millisecond))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dyn := dynamic.NewForConfigOrDie(c.RESTConfig())
	pools := dyn.Resource(v3Pools)

	pool, err := pools.Get(ctx, "default-ipv4-ippool", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("v3 get: %v", err)
	}
	if err := unstructured.SetNestedField(pool.Object, "192.0.0.0/16", "spec", "cidr"); err != nil {
		t.Fatal(err)
	}
	_, err = pools.Update(ctx, pool, metav1.UpdateOptions{})
	if err == nil || !strings.Contains(err.Error(), "IPPool CIDR cannot be modified") {
		t.Errorf("v3 CIDR change: err = %v, want Calico's 'IPPool CIDR cannot be modified'", err)
	}

	overlapping := v3Pool("overlap", "192.168.64.0/18")
	if _, err := pools.Create(ctx, overlapping, metav1.CreateOptions{}); err == nil || !strings.Contains(err.Error(), "overlaps") {
		t.Errorf("v3 create of an overlapping pool: err = %v, want a refusal", err)
	}

	if _, err := pools.Create(ctx, v3Pool("new-pool", "10.0.0.0/16"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("v3 create: %v", err)
	}
	stored, err := dyn.Resource(crdPools).Get(ctx, "new-pool", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the v3 pool is not stored as a crd.projectcalico.org pool: %v", err)
	}
	if bs, _, _ := unstructured.NestedInt64(stored.Object, "spec", "blockSize"); bs != 26 {
		t.Errorf("stored pool blockSize %d, want the API server's default 26", bs)
	}

	w, err := dyn.Resource(crdPools).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=new-pool", ResourceVersion: stored.GetResourceVersion()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := pools.Delete(ctx, "new-pool", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("v3 delete: %v", err)
	}
	var events []string
	for done := false; !done; {
		select {
		case e := <-w.ResultChan():
			u, _ := e.Object.(*unstructured.Unstructured)
			disabled, _, _ := unstructured.NestedBool(u.Object, "spec", "disabled")
			events = append(events, string(e.Type)+map[bool]string{true: "(disabled)"}[disabled])
			done = e.Type == watch.Deleted
		case <-ctx.Done():
			t.Fatalf("no DELETED event; saw %v", events)
		}
	}
	if strings.Join(events, " ") != "MODIFIED(disabled) DELETED(disabled)" {
		t.Errorf("events of a v3 delete: %v, want the pool disabled first, then deleted", events)
	}
}

func v3Pool(name, cidr string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "projectcalico.org/v3",
		"kind":       "IPPool",
		"metadata":   map[string]any{"name": name},
		"spec":       map[string]any{"cidr": cidr, "ipipMode": "Always", "natOutgoing": true},
	}}
}
