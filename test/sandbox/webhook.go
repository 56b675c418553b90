package sandbox

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/runbookdev/runbook/test/scenarios"
)

// LabelWebhook is the namespace label a scenario webhook selects by default: a
// namespace labelled sandbox.runbook.dev/webhook=<namespace>.<name> has its pod
// creations and updates validated by the webhook of workload <namespace>/<name>.
const LabelWebhook = "sandbox.runbook.dev/webhook"

// webhookObjects are the Service in front of the workload's pods and the
// ValidatingWebhookConfiguration calling it. Nothing serves the webhook (the
// sandbox has no pod network): with failurePolicy Fail, every request it
// intercepts is refused, which is what a real cluster does once its backing pods
// are gone — the situation a pod migration must not create.
func webhookObjects(w scenarios.Workload) (*corev1.Service, *admissionregistrationv1.ValidatingWebhookConfiguration) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: w.Namespace, Name: w.Name + "-webhook", Labels: w.Labels},
		Spec: corev1.ServiceSpec{
			Selector: w.Labels,
			Ports:    []corev1.ServicePort{{Name: "https", Port: 443, TargetPort: intstr.FromInt32(8443)}},
		},
	}
	selector := w.Webhook.NamespaceSelector
	if len(selector) == 0 {
		selector = map[string]string{LabelWebhook: w.Namespace + "." + w.Name}
	}
	policy := admissionregistrationv1.FailurePolicyType(w.Webhook.FailurePolicy)
	sideEffects := admissionregistrationv1.SideEffectClassNone
	timeout := int32(2)
	path := "/validate"
	port := int32(443)
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: webhookConfigurationName(w)},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: w.Name + "." + w.Namespace + ".sandbox.runbook.dev",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				Service: &admissionregistrationv1.ServiceReference{Namespace: w.Namespace, Name: svc.Name, Path: &path, Port: &port},
			},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"},
				},
			}},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: selector},
			FailurePolicy:           &policy,
			SideEffects:             &sideEffects,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
	return svc, vwc
}

func webhookConfigurationName(w scenarios.Workload) string {
	return w.Namespace + "." + w.Name + ".sandbox.runbook.dev"
}
