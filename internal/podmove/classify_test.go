package podmove

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestClassify(t *testing.T) {
	dep := Owner{Kind: KindDeployment, Namespace: "ns", Name: "web"}
	job := Owner{Kind: KindJob, Namespace: "ns", Name: "backup"}
	rs := Owner{Kind: KindReplicaSet, Namespace: "ns", Name: "gone"}
	mirror := func(p *corev1.Pod) { p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "x"} }
	emptyDir := func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	}
	def := Filters{Unmanaged: UnmanagedRefuse, Jobs: JobsWait}
	for _, tc := range []struct {
		name    string
		opts    []podOpt
		owner   Owner
		managed bool
		f       Filters
		want    Disposition
		why     string
	}{
		{name: "managed pod moves", owner: dep, managed: true, f: def, want: Move},
		{name: "terminating is waited for, whatever it is", opts: []podOpt{terminating, mirror}, f: def, want: WaitGone},
		{name: "static pod refused", opts: []podOpt{mirror}, f: def, want: Refuse, why: "static pods"},
		{name: "static pod refused even with unmanagedPods delete (deleting the mirror restarts nothing)", opts: []podOpt{mirror}, f: Filters{Unmanaged: UnmanagedDelete}, want: Refuse, why: "static pods"},
		{name: "static pod skipped", opts: []podOpt{mirror}, f: Filters{Unmanaged: UnmanagedSkip}, want: Skip},
		{name: "job pod waited for, never evicted", owner: job, managed: true, f: def, want: WaitJob},
		{name: "job pod skipped", owner: job, managed: true, f: Filters{Jobs: JobsSkip}, want: Skip},
		{name: "bare pod refused", f: def, want: Refuse, why: "bare pods"},
		{name: "orphan refused", owner: rs, f: def, want: Refuse, why: "orphaned pods (their controller ReplicaSet"},
		{name: "bare pod deleted on request", f: Filters{Unmanaged: UnmanagedDelete}, want: Move},
		{name: "bare pod skipped on request", f: Filters{Unmanaged: UnmanagedSkip}, want: Skip},
		{name: "emptyDir refused", opts: []podOpt{emptyDir}, owner: dep, managed: true, f: def, want: Refuse, why: "allowLocalData"},
		{name: "emptyDir allowed", opts: []podOpt{emptyDir}, owner: dep, managed: true, f: Filters{AllowLocalData: true}, want: Move},
		{name: "bare pod with emptyDir and delete: data still needs consent", opts: []podOpt{emptyDir}, f: Filters{Unmanaged: UnmanagedDelete}, want: Refuse, why: "emptyDir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mkPod("ns", "p", "192.168.0.1", tc.opts...)
			d, why := classify(p, tc.owner, tc.managed, tc.f)
			if d != tc.want {
				t.Fatalf("classify = %v (%s), want %v", d, why, tc.want)
			}
			if !strings.Contains(why, tc.why) {
				t.Fatalf("why = %q, want %q", why, tc.why)
			}
		})
	}
}

func TestPlacement(t *testing.T) {
	v6old := Pool{Name: "old6", CIDR: mustPrefix("fd00:1::/48")}
	v6new := Pool{Name: "new6", CIDR: mustPrefix("fd00:2::/48")}
	dual := func(v4, v6 string) podOpt {
		return func(p *corev1.Pod) { p.Status.PodIPs = []corev1.PodIP{{IP: v4}, {IP: v6}}; p.Status.PodIP = v4 }
	}
	for _, tc := range []struct {
		name    string
		opts    []podOpt
		ip      string
		old     Pool
		targets []Pool
		want    Placement
	}{
		{name: "v4 in old", ip: "192.168.3.4", old: oldPool, targets: []Pool{newPool}, want: InOld},
		{name: "v4 in target", ip: "10.0.3.4", old: oldPool, targets: []Pool{newPool}, want: InTarget},
		{name: "v4 in another pool", ip: "172.16.0.1", old: oldPool, targets: []Pool{newPool}, want: Elsewhere},
		{name: "no address yet", old: oldPool, targets: []Pool{newPool}, want: NoAddress},
		{name: "host network", ip: "172.18.0.2", opts: []podOpt{func(p *corev1.Pod) { p.Spec.HostNetwork = true }}, old: oldPool, targets: []Pool{newPool}, want: NoAddress},
		{name: "finished pods hold no address", ip: "192.168.3.4", opts: []podOpt{func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }}, old: oldPool, targets: []Pool{newPool}, want: NoAddress},
		{name: "dual stack: v6 in the old v6 pool", opts: []podOpt{dual("10.0.0.1", "fd00:1::5")}, old: v6old, targets: []Pool{v6new}, want: InOld},
		{name: "dual stack: v4 migration ignores the v6 address", opts: []podOpt{dual("10.0.0.1", "fd00:9::5")}, old: oldPool, targets: []Pool{newPool}, want: InTarget},
		{name: "dual stack: both families moving, v6 elsewhere", opts: []podOpt{dual("10.0.0.1", "fd00:9::5")}, old: oldPool, targets: []Pool{newPool, v6new}, want: Elsewhere},
		{name: "dual stack: both in targets", opts: []podOpt{dual("10.0.0.1", "fd00:2::5")}, old: oldPool, targets: []Pool{newPool, v6new}, want: InTarget},
		{name: "unparsable address skipped", ip: "not-an-ip", old: oldPool, targets: []Pool{newPool}, want: NoAddress},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mkPod("ns", "p", tc.ip, tc.opts...)
			if got := placementOf(p, tc.old, tc.targets); got != tc.want {
				t.Fatalf("placement = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestIsFailing(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []podOpt
		want bool
	}{
		{name: "ready", want: false},
		{name: "crashlooping", opts: []podOpt{crashLooping}, want: true},
		{name: "pending, starting", opts: []podOpt{pending}, want: false},
		{name: "image pull back-off", opts: []podOpt{pending, func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}}}}
		}}, want: true},
		{name: "unschedulable", opts: []podOpt{pending, func(p *corev1.Pod) {
			p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable})
		}}, want: true},
		{name: "running, not ready for a minute: still starting", opts: []podOpt{notReady}, want: false},
		{name: "running, not ready for an hour: failing", opts: []podOpt{func(p *corev1.Pod) {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: metav1.NewTime(t0.Add(-time.Hour))}}
		}}, want: true},
		{name: "terminating is not failing", opts: []podOpt{crashLooping, terminating}, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := isFailing(mkPod("ns", "p", "192.168.0.1", tc.opts...), t0); got != tc.want {
				t.Fatalf("isFailing = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRefusalsProblems(t *testing.T) {
	r := Refusals{}
	for i := 0; i < 12; i++ {
		r.add("bare pods", "ns/p"+string(rune('a'+i)))
	}
	r.add("static pods", "kube-system/etcd")
	got := r.Problems(3)
	want := []string{"bare pods: ns/pa, ns/pb, ns/pc and 9 more", "static pods: kube-system/etcd"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("Problems = %q, want %q", got, want)
	}
}
