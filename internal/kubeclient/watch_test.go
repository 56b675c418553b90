package kubeclient

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// The tweak reaches both the list and the watch: they select the same objects.
func TestListWatchAppliesTheTweakToBoth(t *testing.T) {
	var seen []metav1.ListOptions
	list := func(_ context.Context, o metav1.ListOptions) (*corev1.PodList, error) {
		seen = append(seen, o)
		return &corev1.PodList{}, nil
	}
	watchFn := func(_ context.Context, o metav1.ListOptions) (watch.Interface, error) {
		seen = append(seen, o)
		return watch.NewEmptyWatch(), nil
	}
	lw := ListWatch(list, watchFn, Selecting("app=web", "metadata.name=a"))
	if _, err := lw.ListWithContext(context.Background(), metav1.ListOptions{ResourceVersion: "0"}); err != nil {
		t.Fatal(err)
	}
	if _, err := lw.WatchWithContext(context.Background(), metav1.ListOptions{ResourceVersion: "7"}); err != nil {
		t.Fatal(err)
	}
	for i, o := range seen {
		if o.LabelSelector != "app=web" || o.FieldSelector != "metadata.name=a" {
			t.Errorf("request %d: options %+v, want both selectors", i, o)
		}
	}
	if len(seen) != 2 || seen[0].ResourceVersion != "0" || seen[1].ResourceVersion != "7" {
		t.Errorf("requests %+v: the caller's options must pass through", seen)
	}
	if plain := ListWatch(list, watchFn, nil); plain == nil {
		t.Fatal("nil tweak")
	}
}
