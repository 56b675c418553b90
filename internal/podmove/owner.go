package podmove

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Owner kinds the step knows how to wait for.
const (
	KindDeployment  = "Deployment"
	KindReplicaSet  = "ReplicaSet"
	KindStatefulSet = "StatefulSet"
	KindDaemonSet   = "DaemonSet"
	KindJob         = "Job"
)

// Owner is the workload that brings a pod back: for a ReplicaSet managed by a
// Deployment, the Deployment (a rollout in the middle of the step changes the
// ReplicaSet, not the Deployment). The zero Owner means a bare pod.
type Owner struct {
	Kind      string
	Namespace string
	Name      string
	UID       types.UID
}

// IsZero reports a bare pod's owner.
func (o Owner) IsZero() bool { return o.Kind == "" }

func (o Owner) String() string {
	if o.IsZero() {
		return "no owner"
	}
	return o.Kind + " " + o.Namespace + "/" + o.Name
}

// Workloads looks up the controllers pods belong to (the informer cache; a map in
// tests). ok is false when the object is not known.
type Workloads interface {
	ReplicaSet(namespace, name string) (*appsv1.ReplicaSet, bool)
	Deployment(namespace, name string) (*appsv1.Deployment, bool)
	StatefulSet(namespace, name string) (*appsv1.StatefulSet, bool)
	DaemonSet(namespace, name string) (*appsv1.DaemonSet, bool)
}

// ownerOf resolves the pod's owner. exists is false for a bare pod and for an orphan
// (its controller is gone, so nothing would recreate it): kubectl drain calls both
// "unmanaged".
func ownerOf(p *corev1.Pod, w Workloads) (o Owner, exists bool) {
	ref := controllerOf(p)
	if ref == nil {
		return Owner{}, false
	}
	o = Owner{Kind: ref.Kind, Namespace: p.Namespace, Name: ref.Name, UID: ref.UID}
	switch ref.Kind {
	case KindReplicaSet:
		rs, ok := w.ReplicaSet(p.Namespace, ref.Name)
		if !ok || rs.UID != ref.UID {
			return o, false
		}
		if dref := controllerRefOf(rs.OwnerReferences); dref != nil && dref.Kind == KindDeployment {
			if d, ok := w.Deployment(p.Namespace, dref.Name); ok && d.UID == dref.UID {
				return Owner{Kind: KindDeployment, Namespace: p.Namespace, Name: d.Name, UID: d.UID}, true
			}
		}
		return o, true
	case KindStatefulSet:
		s, ok := w.StatefulSet(p.Namespace, ref.Name)
		return o, ok && s.UID == ref.UID
	case KindDaemonSet:
		d, ok := w.DaemonSet(p.Namespace, ref.Name)
		return o, ok && d.UID == ref.UID
	default:
		// Jobs and controllers this step does not watch (ReplicationControllers,
		// operators' own kinds): trust the reference.
		return o, true
	}
}

func controllerRefOf(refs []metav1.OwnerReference) *metav1.OwnerReference {
	for i := range refs {
		if refs[i].Controller != nil && *refs[i].Controller {
			return &refs[i]
		}
	}
	return nil
}

// desired is how many pods the owner wants, or -1 when the step cannot know it (an
// owner kind it does not watch).
func desired(o Owner, w Workloads) int {
	switch o.Kind {
	case KindDeployment:
		if d, ok := w.Deployment(o.Namespace, o.Name); ok {
			return replicas(d.Spec.Replicas)
		}
	case KindReplicaSet:
		if rs, ok := w.ReplicaSet(o.Namespace, o.Name); ok {
			return replicas(rs.Spec.Replicas)
		}
	case KindStatefulSet:
		if s, ok := w.StatefulSet(o.Namespace, o.Name); ok {
			return replicas(s.Spec.Replicas)
		}
	case KindDaemonSet:
		if d, ok := w.DaemonSet(o.Namespace, o.Name); ok {
			return int(d.Status.DesiredNumberScheduled)
		}
	}
	return -1
}

// replicas applies the API's default of 1.
func replicas(r *int32) int {
	if r == nil {
		return 1
	}
	return int(*r)
}
