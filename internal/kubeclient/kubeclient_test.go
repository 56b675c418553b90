package kubeclient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
)

// TestWireFormats checks what each client asks the API server for: protobuf for
// built-in types (with JSON as the fallback a server without protobuf answers),
// JSON for custom resources, which have no protobuf form.
func TestWireFormats(t *testing.T) {
	var mu sync.Mutex
	accept := map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		accept[r.URL.Path] = r.Header.Get("Accept")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"apiVersion":"v1","kind":"List","items":[]}`))
	}))
	defer srv.Close()
	cfg := &rest.Config{Host: srv.URL}
	kube, dyn, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("typed list (JSON fallback): %v", err)
	}
	pools := schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "ippools"}
	if _, err := dyn.Resource(pools).List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("dynamic list: %v", err)
	}
	for _, tc := range []struct {
		path, want, notWant string
	}{
		{"/api/v1/pods", "application/vnd.kubernetes.protobuf", ""},
		{"/apis/crd.projectcalico.org/v1/ippools", "application/json", "protobuf"},
	} {
		got := accept[tc.path]
		if !strings.Contains(got, tc.want) || (tc.notWant != "" && strings.Contains(got, tc.notWant)) {
			t.Errorf("%s: Accept %q, want %q without %q", tc.path, got, tc.want, tc.notWant)
		}
	}
	if cfg.ContentType != "" {
		t.Errorf("the caller's config was changed: ContentType %q", cfg.ContentType)
	}
}
