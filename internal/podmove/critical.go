package podmove

import (
	"context"
	"fmt"
	"sort"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// criticalService is a Service the API server itself calls: the backend of an
// admission webhook that fails closed, or of an aggregated API (calico-apiserver
// among them, which runbook's own projectcalico.org/v3 calls go through). Its pods
// move one at a time, before any other, each Ready again before the next: if the
// new pool is broken, that shows on one pod while nothing else is disturbed, and
// the API server never loses the backend while hundreds of pod creations (which the
// webhooks may have to admit) are in flight.
type criticalService struct {
	namespace string
	selector  labels.Selector
	what      string
}

func criticalFor(p *corev1.Pod, cs []criticalService) string {
	for _, c := range cs {
		if c.namespace == p.Namespace && c.selector.Matches(labels.Set(p.Labels)) {
			return c.what
		}
	}
	return ""
}

var apiServices = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

type serviceRef struct{ namespace, name, what string }

// discoverCritical lists webhook configurations and APIServices once, and the
// Services they name. Missing read permissions are warnings (the pods then move in
// the normal order), not failures.
func discoverCritical(ctx context.Context, kube kubernetes.Interface, dyn dynamic.Interface) ([]criticalService, []string, error) {
	var refs []serviceRef
	var warnings []string
	forbidden := func(what string, err error) bool {
		if apierrors.IsForbidden(err) || apierrors.IsNotFound(err) {
			warnings = append(warnings, fmt.Sprintf("cannot read %s (%v): pods backing them are not moved first", what, err))
			return true
		}
		return false
	}
	vw, err := kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	switch {
	case err == nil:
		for _, c := range vw.Items {
			for _, h := range c.Webhooks {
				refs = appendWebhook(refs, "ValidatingWebhookConfiguration "+c.Name, h.FailurePolicy, h.ClientConfig.Service)
			}
		}
	case !forbidden("validating webhook configurations", err):
		return nil, nil, fmt.Errorf("list validating webhook configurations: %w", err)
	}
	mw, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	switch {
	case err == nil:
		for _, c := range mw.Items {
			for _, h := range c.Webhooks {
				refs = appendWebhook(refs, "MutatingWebhookConfiguration "+c.Name, h.FailurePolicy, h.ClientConfig.Service)
			}
		}
	case !forbidden("mutating webhook configurations", err):
		return nil, nil, fmt.Errorf("list mutating webhook configurations: %w", err)
	}
	if dyn != nil {
		as, err := dyn.Resource(apiServices).List(ctx, metav1.ListOptions{})
		switch {
		case err == nil:
			for _, a := range as.Items {
				ns, _, _ := unstructured.NestedString(a.Object, "spec", "service", "namespace")
				name, _, _ := unstructured.NestedString(a.Object, "spec", "service", "name")
				if name != "" {
					refs = append(refs, serviceRef{namespace: ns, name: name, what: "APIService " + a.GetName()})
				}
			}
		case !forbidden("APIServices", err):
			return nil, nil, fmt.Errorf("list APIServices: %w", err)
		}
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].what < refs[j].what })
	var out []criticalService
	seen := map[string]bool{}
	for _, r := range refs {
		k := r.namespace + "/" + r.name
		if seen[k] {
			continue
		}
		seen[k] = true
		svc, err := kube.CoreV1().Services(r.namespace).Get(ctx, r.name, metav1.GetOptions{})
		if err != nil {
			if forbidden("Service "+k+" of "+r.what, err) {
				continue
			}
			return nil, nil, fmt.Errorf("get Service %s of %s: %w", k, r.what, err)
		}
		if len(svc.Spec.Selector) == 0 {
			warnings = append(warnings, fmt.Sprintf("Service %s of %s has no selector: its pods are not recognised and move in the normal order", k, r.what))
			continue
		}
		out = append(out, criticalService{namespace: r.namespace, selector: labels.SelectorFromSet(svc.Spec.Selector), what: r.what})
	}
	return out, warnings, nil
}

// appendWebhook keeps webhooks that fail closed (failurePolicy Fail, the v1
// default): an unavailable backend makes the API server reject what they admit.
func appendWebhook(refs []serviceRef, what string, policy *admissionv1.FailurePolicyType, svc *admissionv1.ServiceReference) []serviceRef {
	if svc == nil || (policy != nil && *policy == admissionv1.Ignore) {
		return refs
	}
	return append(refs, serviceRef{namespace: svc.Namespace, name: svc.Name, what: what})
}
