package kubecontrollers

import (
	"net/netip"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPodAddresses(t *testing.T) {
	for _, tc := range []struct {
		name string
		pod  corev1.Pod
		want []string
	}{
		{"annotation first", corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{annotationPodIPs: "192.168.0.5/32,fd00::5/128"}},
			Status:     corev1.PodStatus{PodIPs: []corev1.PodIP{{IP: "10.0.0.1"}}},
		}, []string{"192.168.0.5", "fd00::5"}},
		{"status without annotation", corev1.Pod{Status: corev1.PodStatus{PodIPs: []corev1.PodIP{{IP: "10.0.0.1"}}}}, []string{"10.0.0.1"}},
		{"none", corev1.Pod{}, nil},
	} {
		var got []string
		for _, a := range podAddresses(&tc.pod) {
			got = append(got, a.String())
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A handle is released only when every address under it is a confirmed leak.
func TestReleasable(t *testing.T) {
	a := func(ip, handle string) allocation { return allocation{ip: netip.MustParseAddr(ip), handle: handle} }
	v4, v6, other := a("192.168.0.1", "h1"), a("fd00::1", "h1"), a("192.168.0.2", "h2")
	byNode := map[string][]allocation{"n1": {v4, v6, other}}
	for _, tc := range []struct {
		name      string
		confirmed []allocation
		want      int
	}{
		{"both addresses of a handle", []allocation{v4, v6}, 2},
		{"one of two addresses", []allocation{v4}, 0},
		{"single-address handle", []allocation{other}, 1},
	} {
		confirmed := map[string]allocation{}
		for _, x := range tc.confirmed {
			confirmed[x.id()] = x
		}
		if got := releasable(byNode, confirmed); len(got) != tc.want {
			t.Errorf("%s: %d releasable, want %d", tc.name, len(got), tc.want)
		}
	}
}
