package sandbox

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/test/sandbox/operator"
)

// On an operator install the Calico API server is the Deployment
// calico-apiserver/calico-apiserver the operator renders, and the operator's
// APIServer "default" becomes Ready once that Deployment is available. In the
// sandbox the real server is a host process (startCalicoAPIServer), so a
// Deployment whose one host-network pod kwok runs stands for it, and
// apiServerReadiness plays the kubelet's readiness probe of that pod.
const (
	// apiServerProbePeriod is how often the sandbox probes the server. The
	// operator's probe runs every 60 s (pkg/render/apiserver.go:1066-1077 at
	// v1.34.13), but a kubelet sees a container exit within about a second (its
	// pod lifecycle event relist), which is what stopping the process is.
	apiServerProbePeriod = time.Second
	// apiServerContainer is the container name the operator renders
	// (render.APIServerContainerName).
	apiServerContainer = "calico-apiserver"
)

// apiServerPodLabels select the Deployment's pods ("for legacy reasons",
// pkg/render/apiserver.go:969-970).
var apiServerPodLabels = map[string]string{"apiserver": "true"}

// operatorWithAPIServer runs once the Calico API server is up: it publishes the
// calico-apiserver Deployment, starts probing the server for its pod, and waits
// until the operator has reconciled with the API server Ready.
func (c *Cluster) operatorWithAPIServer(ctx context.Context) error {
	cs, err := kubernetes.NewForConfig(c.admin)
	if err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(c.admin)
	if err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}
	if err := createCalicoAPIServerDeployment(ctx, cs); err != nil {
		return err
	}
	probe, err := newAPIServerProbe(ctx, dyn)
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		runAPIServerReadiness(runCtx, cs, probe)
	}()
	c.closers = append(c.closers, func() error { cancel(); <-done; return nil })
	return waitOperatorAvailable(ctx, dyn, c.opts.Scenario)
}

// createCalicoAPIServerDeployment publishes the Deployment as the operator
// renders it for the Calico variant (pkg/render/apiserver.go:925-1000), but on
// the host network: the real server it stands for runs on the host. Its image is
// the pinned Calico's (the server the sandbox runs), whichever operator flavour.
func createCalicoAPIServerDeployment(ctx context.Context, cs kubernetes.Interface) error {
	ns := operator.APIServerNamespace
	if err := createOrKeep(ctx, cs.CoreV1().Namespaces().Create, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, "namespace "+ns); err != nil {
		return err
	}
	replicas := int32(1)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: operator.APIServerDeployment, Labels: apiServerPodLabels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: apiServerPodLabels},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}, // host network (l.936-940)
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: apiServerPodLabels},
				Spec: corev1.PodSpec{
					HostNetwork: true,
					DNSPolicy:   corev1.DNSClusterFirstWithHostNet,
					Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					Containers: []corev1.Container{{
						Name: apiServerContainer, Image: "docker.io/calico/apiserver:" + operator.V1_34_13.Calico,
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromInt32(5443), Scheme: corev1.URISchemeHTTPS}},
							PeriodSeconds: 60,
						},
					}},
				},
			},
		},
	}
	return createOrKeep(ctx, cs.AppsV1().Deployments(ns).Create, d, "Deployment "+ns+"/"+operator.APIServerDeployment)
}

// apiServerProbe is the readiness probe: GET /readyz on the server, reached as
// kube-apiserver reaches it (the APIService's port on localhost, its CA).
type apiServerProbe struct {
	url    string
	client *http.Client
}

func newAPIServerProbe(ctx context.Context, dyn dynamic.Interface) (*apiServerProbe, error) {
	svc, err := dyn.Resource(apiServices).Get(ctx, calicoAPIServiceName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("APIService %s: %w", calicoAPIServiceName, err)
	}
	caB64, _, _ := unstructured.NestedString(svc.Object, "spec", "caBundle")
	port, _, _ := unstructured.NestedInt64(svc.Object, "spec", "service", "port")
	ca, err := base64.StdEncoding.DecodeString(caB64)
	if err != nil {
		return nil, fmt.Errorf("APIService %s caBundle: %w", calicoAPIServiceName, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("APIService %s caBundle holds no certificate", calicoAPIServiceName)
	}
	return &apiServerProbe{
		url: "https://localhost:" + strconv.FormatInt(port, 10) + "/readyz",
		client: &http.Client{Timeout: apiServerProbePeriod, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, Proxy: nil}},
	}, nil
}

// ready is what the kubelet's HTTP probe decides: a 2xx or 3xx answer.
func (p *apiServerProbe) ready(ctx context.Context) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return false
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 400
}

// runAPIServerReadiness probes every period and sets the Ready condition of the
// Deployment's running pods to the answer, as a kubelet does; the controller
// manager then counts the Deployment's available replicas from it.
func runAPIServerReadiness(ctx context.Context, cs kubernetes.Interface, probe *apiServerProbe) {
	t := time.NewTicker(apiServerProbePeriod)
	defer t.Stop()
	for {
		ready := probe.ready(ctx)
		pods, err := cs.CoreV1().Pods(operator.APIServerNamespace).List(ctx, metav1.ListOptions{
			LabelSelector: metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: apiServerPodLabels})})
		if err == nil {
			for i := range pods.Items {
				p := &pods.Items[i]
				if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning || podReady(p) == ready {
					continue
				}
				// An error is retried at the next probe, like the kubelet's status sync.
				_ = setPodReady(ctx, cs, p, ready)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// setPodReady writes the pod's Ready and ContainersReady conditions and its
// container's ready flag (a strategic merge patch of the status: conditions
// merge by type, container statuses by name).
func setPodReady(ctx context.Context, cs kubernetes.Interface, p *corev1.Pod, ready bool) error {
	status, reason := corev1.ConditionFalse, "ContainersNotReady"
	if ready {
		status, reason = corev1.ConditionTrue, ""
	}
	now := metav1.Now()
	cond := func(t corev1.PodConditionType) map[string]any {
		c := map[string]any{"type": t, "status": status, "lastTransitionTime": now}
		if reason != "" {
			c["reason"] = reason
			c["message"] = "containers with unready status: [" + apiServerContainer + "]"
		}
		return c
	}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{
		"conditions":        []any{cond(corev1.PodReady), cond(corev1.ContainersReady)},
		"containerStatuses": []any{map[string]any{"name": apiServerContainer, "ready": ready}},
	}})
	if err != nil {
		return err
	}
	if _, err := cs.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		return fmt.Errorf("setting pod %s/%s ready=%v: %w", p.Namespace, p.Name, ready, err)
	}
	return nil
}
