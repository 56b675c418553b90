package sandbox

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/runbookdev/runbook/test/sandbox/pki"
)

// The Calico API server as the sandbox runs it.
const (
	calicoAPIServerBinary = "calico-apiserver" // in the tools directory (hack/build-tools.sh)
	calicoAPINamespace    = "calico-apiserver"
	calicoAPIService      = "calico-api"
	calicoAPIServiceName  = "v3.projectcalico.org"
	calicoAPICA           = "calico-api-ca"
	calicoAPIServing      = "calico-api"
	// calicoAPIReadyTimeout bounds the wait for the aggregated API: the server
	// starts in a few seconds, then kube-apiserver's availability check runs.
	calicoAPIReadyTimeout = 2 * time.Minute
)

// calicoAPIServerUser is the Calico API server's identity. system:masters stands
// for the RBAC an operator install grants it (reading Calico's CRDs, delegated
// authentication and authorization).
var calicoAPIServerUser = identity{file: CalicoAPIServer, user: envtest.User{Name: "calico-apiserver", Groups: []string{"system:masters"}}}

var apiServices = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

// startCalicoAPIServer runs the real Calico API server
// (github.com/projectcalico/calico/apiserver/cmd/apiserver of the pinned release)
// on loopback with its own serving certificate, and registers it as the
// aggregated API v3.projectcalico.org. kube-apiserver rejects loopback endpoints
// for aggregated APIs, so the APIService points at a Service of type
// ExternalName "localhost" with the server's port. Returns once the APIService
// is Available.
func (c *Cluster) startCalicoAPIServer(ctx context.Context) error {
	kubeconfig, _, err := credentials(c.env, c.workDir, calicoAPIServerUser)
	if err != nil {
		return err
	}
	ca, err := calicoAPICerts(pkiDir(c.workDir))
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	p := newProcess(c.opts.ToolsDir, c.workDir, CalicoAPIServer,
		"--secure-port="+strconv.Itoa(port),
		"--bind-address=127.0.0.1",
		"--tls-cert-file="+filepath.Join(pkiDir(c.workDir), calicoAPIServing+".crt"),
		"--tls-private-key-file="+filepath.Join(pkiDir(c.workDir), calicoAPIServing+".key"),
		"--kubeconfig="+kubeconfig,
		"--authentication-kubeconfig="+kubeconfig,
		"--authorization-kubeconfig="+kubeconfig,
	)
	p.path = filepath.Join(c.opts.ToolsDir, calicoAPIServerBinary)
	p.env = []string{"DATASTORE_TYPE=kubernetes", "KUBECONFIG=" + kubeconfig}
	c.components = append(c.components, p)
	if err := p.Start(ctx); err != nil {
		return err
	}
	if err := registerCalicoAPI(ctx, c.admin, ca, int32(port)); err != nil {
		return err
	}
	return waitAPIServiceAvailable(ctx, c.admin, calicoAPIServiceName, calicoAPIReadyTimeout)
}

// calicoAPICerts creates the Calico API server's CA and serving certificate (for
// localhost, where the ExternalName Service sends kube-apiserver) and returns
// the CA, which goes into the APIService's caBundle.
func calicoAPICerts(dir string) ([]byte, error) {
	ca, err := pki.NewCA(calicoAPICA)
	if err != nil {
		return nil, fmt.Errorf("calico API server certificates: %w", err)
	}
	serving, err := ca.Issue(pki.Request{
		CommonName: calicoAPIService + "." + calicoAPINamespace + ".svc",
		DNSNames:   []string{"localhost", calicoAPIService + "." + calicoAPINamespace + ".svc"},
		IPs:        []net.IP{net.IPv4(127, 0, 0, 1)},
		Server:     true,
	})
	if err != nil {
		return nil, fmt.Errorf("calico API server certificates: %w", err)
	}
	if err := ca.Write(dir, calicoAPICA); err != nil {
		return nil, err
	}
	if err := serving.Write(dir, calicoAPIServing); err != nil {
		return nil, err
	}
	return ca.CertPEM, nil
}

// registerCalicoAPI creates the namespace, the ExternalName Service and the
// APIService, as the operator's manifests do (with the Service pointing at
// localhost instead of the server's pods).
func registerCalicoAPI(ctx context.Context, admin *rest.Config, caPEM []byte, port int32) error {
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: calicoAPINamespace}}
	if err := createOrKeep(ctx, cs.CoreV1().Namespaces().Create, ns, "namespace "+calicoAPINamespace); err != nil {
		return err
	}
	svc, apiService := calicoAPIObjects(caPEM, port)
	if err := createOrKeep(ctx, cs.CoreV1().Services(calicoAPINamespace).Create, svc, "Service "+calicoAPINamespace+"/"+calicoAPIService); err != nil {
		return err
	}
	a, err := newApplier(admin)
	if err != nil {
		return err
	}
	if err := a.apply(ctx, apiService); err != nil {
		return fmt.Errorf("registering the Calico API: %w", err)
	}
	return nil
}

// calicoAPIObjects are the ExternalName Service and the APIService through which
// kube-apiserver reaches the Calico API server on loopback.
func calicoAPIObjects(caPEM []byte, port int32) (*corev1.Service, *unstructured.Unstructured) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: calicoAPINamespace, Name: calicoAPIService},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost"},
	}
	apiService := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1",
		"kind":       "APIService",
		"metadata":   map[string]any{"name": calicoAPIServiceName},
		"spec": map[string]any{
			"group":                "projectcalico.org",
			"version":              "v3",
			"groupPriorityMinimum": int64(1500),
			"versionPriority":      int64(200),
			"caBundle":             base64.StdEncoding.EncodeToString(caPEM),
			"service":              map[string]any{"namespace": calicoAPINamespace, "name": calicoAPIService, "port": int64(port)},
		},
	}}
	return svc, apiService
}

// waitAPIServiceAvailable watches an APIService until kube-apiserver reports it
// Available.
func waitAPIServiceAvailable(ctx context.Context, admin *rest.Config, name string, timeout time.Duration) error {
	dyn, err := dynamic.NewForConfig(admin)
	if err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := dyn.Resource(apiServices)
	byName := fields.OneTermEqualSelector("metadata.name", name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = byName
			return client.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = byName
			return client.Watch(ctx, o)
		},
	}
	var last string
	available := func(obj runtime.Object) bool {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return false
		}
		conditions, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conditions {
			c, _ := c.(map[string]any)
			if c["type"] == "Available" {
				last = fmt.Sprintf("%v: %v", c["reason"], c["message"])
				return c["status"] == "True"
			}
		}
		return false
	}
	_, err = watchtools.UntilWithSync(ctx, lw, &unstructured.Unstructured{}, func(store cache.Store) (bool, error) {
		for _, obj := range store.List() {
			if available(obj.(runtime.Object)) {
				return true, nil
			}
		}
		return false, nil
	}, func(e watch.Event) (bool, error) { return available(e.Object), nil })
	if err != nil {
		return fmt.Errorf("APIService %s not Available after %v (last: %s): %w", name, timeout, last, err)
	}
	return nil
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
