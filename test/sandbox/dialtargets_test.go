package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

// The dial-target inventory: every address a component of a sandbox is configured
// to dial, read off the configuration the code produces (objects, command lines,
// kubeconfigs), so that a new non-local dial anywhere fails the tests that check
// it (checkDialTargets).

// kube-apiserver's egress network contexts.
const (
	egressCluster      = "cluster"      // Services (webhooks, APIServices, conversion), kubelets, pod/Service proxy
	egressControlPlane = "controlplane" // webhooks by URL
	egressEtcd         = "etcd"
)

// dialTarget is one address a component dials.
type dialTarget struct {
	From    string       // the component
	What    string       // why it dials there
	Host    string       // an IP, a name, or unix:<path>; "" when only Range is known
	Range   netip.Prefix // for an address not allocated yet (a Service's ClusterIP): one of these
	Context string       // kube-apiserver's egress network context
}

func (t dialTarget) String() string {
	to := t.Host
	if to == "" {
		to = "an address of " + t.Range.String()
	}
	if t.Context != "" {
		return fmt.Sprintf("%s (%s traffic): %s -> %s", t.From, t.Context, t.What, to)
	}
	return fmt.Sprintf("%s: %s -> %s", t.From, t.What, to)
}

// dialInventory is the dial targets of one cluster (or of its objects) and the
// kube-apiserver egress contexts that go through the guard's proxy.
type dialInventory struct {
	targets []dialTarget
	proxied map[string]bool
}

// checkDialTargets returns one error per target that would leave the machine
// under the guard: a target must be loopback (or a unix socket), go through the
// guard's egress proxy (which connects to loopback only), or — in routes mode —
// lie in a guarded CIDR. A name other than localhost fails: resolving it asks the
// host's nameserver.
func checkDialTargets(inv dialInventory, g NetworkGuard) []error {
	var errs []error
	for _, t := range inv.targets {
		if localHost(t.Host) {
			continue
		}
		if t.From == APIServer && inv.proxied[t.Context] {
			continue
		}
		if g.Mode == GuardRoutes {
			if a, err := netip.ParseAddr(t.Host); err == nil && inPrefixes(g.CIDRs, a) {
				continue
			}
			if t.Host == "" && t.Range.IsValid() && coveredBy(g.CIDRs, t.Range) {
				continue
			}
		}
		errs = append(errs, fmt.Errorf("%s: not on this machine under network guard %s (guarded: %s)", t, g.Mode, joinPrefixes(g.CIDRs)))
	}
	return errs
}

func localHost(h string) bool {
	if strings.HasPrefix(h, "unix:") {
		return true
	}
	name := strings.ToLower(strings.TrimSuffix(h, "."))
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && (a.IsLoopback() || ownAddress(a))
}

// ownAddress reports whether a is an address of one of this machine's
// interfaces (the kubernetes Service's endpoint is the apiserver's advertise
// address, eth0's): a dial of it goes through the local table, to loopback.
func ownAddress(a netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, ia := range addrs {
		if n, ok := ia.(*net.IPNet); ok {
			if own, ok := netip.AddrFromSlice(n.IP); ok && own.Unmap() == a.Unmap() {
				return true
			}
		}
	}
	return false
}

func inPrefixes(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

func coveredBy(ps []netip.Prefix, r netip.Prefix) bool {
	for _, p := range ps {
		if p.Bits() <= r.Bits() && p.Contains(r.Addr()) {
			return true
		}
	}
	return false
}

// objectDialTargets lists what kube-apiserver dials because of objects: webhooks
// (by URL or Service), APIServices and CRD conversion webhooks (by Service),
// ExternalName Services (the services/proxy subresource), nodes' kubelets (by
// InternalIP: the guard sets --kubelet-preferred-address-types), pods and
// endpoints (the proxy subresources). A Service without a ClusterIP yet stands for
// an address of serviceRange.
func objectDialTargets(objs []runtime.Object, serviceRange netip.Prefix) ([]dialTarget, error) {
	services := map[string]*corev1.Service{}
	objs = slices.Clone(objs)
	for i, o := range objs {
		if u, ok := o.(*unstructured.Unstructured); ok {
			typed, err := typedObject(u)
			if err != nil {
				return nil, err
			}
			objs[i] = typed
		}
		if s, ok := objs[i].(*corev1.Service); ok {
			services[s.Namespace+"/"+s.Name] = s
		}
	}
	var out []dialTarget
	viaService := func(what, ns, name string) {
		s, ok := services[ns+"/"+name]
		t := dialTarget{From: APIServer, What: what + ": Service " + ns + "/" + name, Context: egressCluster}
		switch {
		case !ok:
			t.What += " (missing: the call fails without a dial)"
			return
		case s.Spec.Type == corev1.ServiceTypeExternalName:
			t.Host = s.Spec.ExternalName
		case s.Spec.ClusterIP == corev1.ClusterIPNone:
			return // refused by the resolver without a dial
		case s.Spec.ClusterIP != "":
			t.Host = s.Spec.ClusterIP
		default:
			t.Range = serviceRange
		}
		out = append(out, t)
	}
	viaURL := func(what, raw string) error {
		u, err := url.Parse(raw)
		if err != nil {
			return fmt.Errorf("%s: URL %q: %w", what, raw, err)
		}
		out = append(out, dialTarget{From: APIServer, What: what + ": URL", Host: u.Hostname(), Context: egressControlPlane})
		return nil
	}
	webhook := func(what string, cc admissionregistrationv1.WebhookClientConfig) error {
		if cc.URL != nil {
			return viaURL(what, *cc.URL)
		}
		if cc.Service != nil {
			viaService(what, cc.Service.Namespace, cc.Service.Name)
		}
		return nil
	}
	for _, o := range objs {
		switch o := o.(type) {
		case *admissionregistrationv1.ValidatingWebhookConfiguration:
			for _, h := range o.Webhooks {
				if err := webhook("ValidatingWebhookConfiguration "+o.Name+" webhook "+h.Name, h.ClientConfig); err != nil {
					return nil, err
				}
			}
		case *admissionregistrationv1.MutatingWebhookConfiguration:
			for _, h := range o.Webhooks {
				if err := webhook("MutatingWebhookConfiguration "+o.Name+" webhook "+h.Name, h.ClientConfig); err != nil {
					return nil, err
				}
			}
		case *apiextensionsv1.CustomResourceDefinition:
			c := o.Spec.Conversion
			if c == nil || c.Webhook == nil || c.Webhook.ClientConfig == nil {
				continue
			}
			what := "CustomResourceDefinition " + o.Name + " conversion"
			if cc := c.Webhook.ClientConfig; cc.URL != nil {
				if err := viaURL(what, *cc.URL); err != nil {
					return nil, err
				}
			} else if cc.Service != nil {
				viaService(what, cc.Service.Namespace, cc.Service.Name)
			}
		case *unstructured.Unstructured:
			switch o.GetKind() {
			case "APIService":
				ns, _, _ := unstructured.NestedString(o.Object, "spec", "service", "namespace")
				name, _, _ := unstructured.NestedString(o.Object, "spec", "service", "name")
				if name != "" {
					viaService("APIService "+o.GetName(), ns, name)
				}
			}
		case *corev1.Service:
			if o.Spec.Type == corev1.ServiceTypeExternalName {
				out = append(out, dialTarget{From: APIServer, What: "ExternalName Service " + o.Namespace + "/" + o.Name + " (services/proxy)", Host: o.Spec.ExternalName, Context: egressCluster})
			}
		case *corev1.Node:
			for _, a := range o.Status.Addresses {
				if a.Type == corev1.NodeInternalIP {
					out = append(out, dialTarget{From: APIServer, What: "node " + o.Name + " kubelet (logs, exec, port-forward)", Host: a.Address, Context: egressCluster})
				}
			}
		case *corev1.Pod:
			for _, ip := range o.Status.PodIPs {
				out = append(out, dialTarget{From: APIServer, What: "pod " + o.Namespace + "/" + o.Name + " (pods/proxy)", Host: ip.IP, Context: egressCluster})
			}
		case *discoveryv1.EndpointSlice:
			for _, e := range o.Endpoints {
				for _, a := range e.Addresses {
					out = append(out, dialTarget{From: APIServer, What: "EndpointSlice " + o.Namespace + "/" + o.Name + " (services/proxy)", Host: a, Context: egressCluster})
				}
			}
		}
	}
	return out, nil
}

// typedObject converts an unstructured object of a kind that makes the
// apiserver dial (a manifest's, or one listed through the dynamic client); other
// kinds stay as they are.
func typedObject(u *unstructured.Unstructured) (runtime.Object, error) {
	var obj runtime.Object
	switch u.GetKind() {
	case "CustomResourceDefinition":
		obj = &apiextensionsv1.CustomResourceDefinition{}
	case "ValidatingWebhookConfiguration":
		obj = &admissionregistrationv1.ValidatingWebhookConfiguration{}
	case "MutatingWebhookConfiguration":
		obj = &admissionregistrationv1.MutatingWebhookConfiguration{}
	case "Service":
		obj = &corev1.Service{}
	default:
		return u, nil
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
		return nil, fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return obj, nil
}

// kubeconfigDialTargets lists the servers of a kubeconfig file.
func kubeconfigDialTargets(from, path string) ([]dialTarget, error) {
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: kubeconfig %s: %w", from, path, err)
	}
	var out []dialTarget
	for name, c := range cfg.Clusters {
		u, err := url.Parse(c.Server)
		if err != nil {
			return nil, fmt.Errorf("%s: kubeconfig %s cluster %s: %w", from, path, name, err)
		}
		out = append(out, dialTarget{From: from, What: "kubeconfig " + filepath.Base(path) + " server", Host: u.Hostname()})
	}
	return out, nil
}

// processDialTargets lists what one process's command line and environment
// configure it to dial: the servers of every kubeconfig flag (and $KUBECONFIG),
// every URL-valued flag (etcd's and the apiserver's etcd URLs among them), and
// the apiserver's egress selector configuration, whose proxied contexts it adds to
// proxied.
func processDialTargets(name string, args, env []string, proxied map[string]bool, socket string) ([]dialTarget, error) {
	var out []dialTarget
	for _, e := range env {
		if path, ok := strings.CutPrefix(e, "KUBECONFIG="); ok {
			t, err := kubeconfigDialTargets(name, path)
			if err != nil {
				return nil, err
			}
			out = append(out, t...)
		}
	}
	for _, a := range args {
		flag, value, ok := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !ok || value == "" {
			continue
		}
		switch {
		case strings.HasSuffix(flag, "kubeconfig"):
			t, err := kubeconfigDialTargets(name, value)
			if err != nil {
				return nil, err
			}
			out = append(out, t...)
		case flag == "egress-selector-config-file":
			t, err := egressDialTargets(value, proxied, socket)
			if err != nil {
				return nil, err
			}
			out = append(out, t...)
		default:
			for _, v := range strings.Split(value, ",") {
				u, err := url.Parse(v)
				if err != nil || u.Host == "" || !strings.Contains(v, "://") {
					continue
				}
				out = append(out, dialTarget{From: name, What: "--" + flag, Host: u.Hostname(), Context: contextOfFlag(name, flag)})
			}
		}
	}
	return out, nil
}

func contextOfFlag(name, flag string) string {
	if name == APIServer && flag == "etcd-servers" {
		return egressEtcd
	}
	return ""
}

// egressDialTargets reads kube-apiserver's EgressSelectorConfiguration: a context
// whose HTTPConnect proxy is the guard's socket is proxied; any other proxy is a
// dial target of its own.
func egressDialTargets(path string, proxied map[string]bool, socket string) ([]dialTarget, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("egress selector configuration: %w", err)
	}
	var cfg struct {
		APIVersion       string `json:"apiVersion"`
		Kind             string `json:"kind"`
		EgressSelections []struct {
			Name       string `json:"name"`
			Connection struct {
				ProxyProtocol string `json:"proxyProtocol"`
				Transport     *struct {
					TCP *struct {
						URL string `json:"url"`
					} `json:"tcp"`
					UDS *struct {
						UDSName string `json:"udsName"`
					} `json:"uds"`
				} `json:"transport"`
			} `json:"connection"`
		} `json:"egressSelections"`
	}
	if err := yaml.UnmarshalStrict(data, &cfg, yaml.DisallowUnknownFields); err != nil {
		return nil, fmt.Errorf("egress selector configuration %s: %w", path, err)
	}
	var out []dialTarget
	for _, s := range cfg.EgressSelections {
		tr := s.Connection.Transport
		switch {
		case s.Connection.ProxyProtocol == "HTTPConnect" && tr != nil && tr.UDS != nil && tr.UDS.UDSName == socket && socket != "":
			proxied[s.Name] = true
		case tr != nil && tr.UDS != nil:
			out = append(out, dialTarget{From: APIServer, What: "egress proxy of " + s.Name, Host: "unix:" + tr.UDS.UDSName})
		case tr != nil && tr.TCP != nil:
			u, err := url.Parse(tr.TCP.URL)
			if err != nil {
				return nil, fmt.Errorf("egress selector configuration %s: %w", path, err)
			}
			out = append(out, dialTarget{From: APIServer, What: "egress proxy of " + s.Name, Host: u.Hostname()})
		}
	}
	return out, nil
}

// clusterDialTargets is the inventory of a running cluster: the command lines
// of its processes (read from /proc, what really runs), every kubeconfig it wrote
// (the in-process stand-ins' and the tests' clients use those), the admin
// configuration (also the fault proxy's upstream), and the objects the apiserver
// holds that make it dial.
func clusterDialTargets(ctx context.Context, c *Cluster) (dialInventory, error) {
	inv := dialInventory{proxied: map[string]bool{}}
	socket := ""
	if c.guard != nil && c.guard.egress != nil {
		socket = c.guard.egress.socket
	}
	procs, err := childProcesses(c.workDir)
	if err != nil {
		return inv, err
	}
	names := map[string]bool{}
	for _, p := range procs {
		names[p.name] = true
		t, err := processDialTargets(p.name, p.args, p.env, inv.proxied, socket)
		if err != nil {
			return inv, err
		}
		inv.targets = append(inv.targets, t...)
	}
	pids := map[int]bool{}
	for _, p := range procs {
		pids[p.pid] = true
	}
	for _, comp := range c.components {
		switch comp := comp.(type) {
		case *process, *envtestComponent:
			if comp.Running() && !names[comp.Name()] {
				return inv, fmt.Errorf("component %s runs, but no child process of it mentions %s", comp.Name(), c.workDir)
			}
		case *supervised:
			if pid := comp.PID(); pid != 0 && !pids[pid] {
				return inv, fmt.Errorf("component %s runs as pid %d, which mentions no %s", comp.Name(), pid, c.workDir)
			}
		case *calicoNodeRuntime:
			for node, pid := range comp.PIDs() {
				if !pids[pid] {
					return inv, fmt.Errorf("calico-node on %s runs as pid %d, which mentions no %s", node, pid, c.workDir)
				}
			}
		}
	}
	kubeconfigs, _ := filepath.Glob(filepath.Join(c.workDir, "kubeconfigs", "*.kubeconfig"))
	for _, path := range append(kubeconfigs, c.kubeconfig) {
		t, err := kubeconfigDialTargets("in-process stand-ins and tests", path)
		if err != nil {
			return inv, err
		}
		inv.targets = append(inv.targets, t...)
	}
	u, err := url.Parse(c.RESTConfig().Host)
	if err != nil {
		return inv, err
	}
	inv.targets = append(inv.targets, dialTarget{From: "fault proxy, tests", What: "RESTConfig (StartFaultProxy's upstream)", Host: u.Hostname()})

	objs, err := listDialObjects(ctx, c)
	if err != nil {
		return inv, err
	}
	t, err := objectDialTargets(objs, netip.Prefix{})
	if err != nil {
		return inv, err
	}
	inv.targets = append(inv.targets, t...)
	return inv, nil
}

// listDialObjects lists the objects that make the apiserver dial.
func listDialObjects(ctx context.Context, c *Cluster) ([]runtime.Object, error) {
	cs, err := kubernetes.NewForConfig(c.admin)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(c.admin)
	if err != nil {
		return nil, err
	}
	var objs []runtime.Object
	vw, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for i := range vw.Items {
		objs = append(objs, &vw.Items[i])
	}
	mw, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for i := range mw.Items {
		objs = append(objs, &mw.Items[i])
	}
	svcs, err := cs.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for i := range svcs.Items {
		objs = append(objs, &svcs.Items[i])
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for i := range nodes.Items {
		objs = append(objs, &nodes.Items[i])
	}
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for i := range pods.Items {
		objs = append(objs, &pods.Items[i])
	}
	eps, err := cs.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for i := range eps.Items {
		objs = append(objs, &eps.Items[i])
	}
	for _, gvr := range []schema.GroupVersionResource{
		apiServices,
		{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"},
	} {
		l, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		for i := range l.Items {
			objs = append(objs, &l.Items[i])
		}
	}
	return objs, nil
}

// childProcess is a process this one started for a cluster.
type childProcess struct {
	pid       int
	name      string
	args, env []string
}

// childProcesses returns this process's children whose command line or
// environment mentions workDir: the cluster's etcd, apiserver, controllers, kwok,
// Calico API server, kube-controllers and calico-node allocators.
func childProcesses(workDir string) ([]childProcess, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	var out []childProcess
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, ok := parentPID(pid); !ok || ppid != self {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		// calico-node's allocator takes its kubeconfig from $KUBECONFIG only.
		environ, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		mark := []byte(workDir + string(filepath.Separator))
		if !bytes.Contains(cmdline, mark) && !bytes.Contains(environ, mark) {
			continue
		}
		args := splitNUL(cmdline)
		out = append(out, childProcess{pid: pid, name: filepath.Base(args[0]), args: args[1:], env: splitNUL(environ)})
	}
	return out, nil
}

func parentPID(pid int) (int, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(f[1])
	return ppid, err == nil
}

func splitNUL(b []byte) []string {
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil
	}
	parts := bytes.Split(b, []byte{0})
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = string(p)
	}
	return out
}
