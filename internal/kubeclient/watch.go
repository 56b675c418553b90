package kubeclient

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// ListWatch adapts a typed (or dynamic) client's List and Watch to client-go's
// cache.ListWatch; tweak, when set, edits every request's options (the label or
// field selector), so the list and the watch always select the same objects.
func ListWatch[L runtime.Object](list func(context.Context, metav1.ListOptions) (L, error),
	watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error), tweak func(*metav1.ListOptions)) *cache.ListWatch {
	if tweak == nil {
		tweak = func(*metav1.ListOptions) {}
	}
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			tweak(&o)
			return list(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			tweak(&o)
			return watchFn(ctx, o)
		},
	}
}

// Informer is a shared informer over a client's List and Watch, without resync.
func Informer[L runtime.Object](example runtime.Object, list func(context.Context, metav1.ListOptions) (L, error),
	watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error), indexers cache.Indexers) cache.SharedIndexInformer {
	return cache.NewSharedIndexInformer(ListWatch(list, watchFn, nil), example, 0, indexers)
}

// Selecting returns a tweak that sets the label and field selectors ("" leaves
// one unset).
func Selecting(labelSelector, fieldSelector string) func(*metav1.ListOptions) {
	return func(o *metav1.ListOptions) {
		if labelSelector != "" {
			o.LabelSelector = labelSelector
		}
		if fieldSelector != "" {
			o.FieldSelector = fieldSelector
		}
	}
}
