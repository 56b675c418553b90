package calico

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

// CreatePool creates a v1 IPPool holding exactly the given spec fields.
func (c *CRD) CreatePool(ctx context.Context, name string, spec map[string]any, annotations map[string]string) (*Pool, error) {
	specJSON, err := jsonValue(spec)
	if err != nil {
		return nil, fmt.Errorf("create IPPool %s: %w", name, err)
	}
	meta := map[string]any{"name": name}
	if len(annotations) > 0 {
		ann := map[string]any{}
		for k, v := range annotations {
			ann[k] = v
		}
		meta["annotations"] = ann
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": c.pools.apiVersion, "kind": poolKind, "metadata": meta, "spec": specJSON,
	}}
	created, err := c.dyn.Resource(c.pools.gvr).Create(ctx, obj, metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict, FieldManager: fieldManager})
	if err != nil {
		return nil, fmt.Errorf("create IPPool %s: %w", name, writeError(err))
	}
	p, err := poolFromObject(created)
	if err != nil {
		return nil, err
	}
	c.awaitPool(ctx, name, p.ResourceVersion)
	return &p, nil
}

// PatchPool merge-patches a v1 IPPool. A merge patch sends only the named fields,
// so whatever else the pool holds (including fields this build does not know) is
// left exactly as it is: never a read-modify-write of the whole object, which is how
// the Calico doc's own export/edit/apply example changes a CIDR by accident.
func (c *CRD) PatchPool(ctx context.Context, name string, p PoolPatch) (*Pool, error) {
	body := map[string]any{}
	meta := map[string]any{}
	if p.ResourceVersion != "" {
		// A resourceVersion in a merge patch is a precondition: 409 if it moved.
		meta["resourceVersion"] = p.ResourceVersion
	}
	if len(p.Annotations) > 0 {
		ann := map[string]any{}
		for k, v := range p.Annotations {
			if v == nil {
				ann[k] = nil
			} else {
				ann[k] = *v
			}
		}
		meta["annotations"] = ann
	}
	if len(meta) > 0 {
		body["metadata"] = meta
	}
	if len(p.Spec) > 0 {
		body["spec"] = p.Spec
	}
	data, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("patch IPPool %s: %w", name, err)
	}
	patched, err := c.dyn.Resource(c.pools.gvr).Patch(ctx, name, types.MergePatchType, data,
		metav1.PatchOptions{FieldValidation: metav1.FieldValidationStrict, FieldManager: fieldManager})
	if err != nil {
		return nil, fmt.Errorf("patch IPPool %s: %w", name, writeError(err))
	}
	out, err := poolFromObject(patched)
	if err != nil {
		return nil, err
	}
	c.awaitPool(ctx, name, out.ResourceVersion)
	return &out, nil
}

// writeError adds this package's sentinel to an API error, keeping the API error
// in the chain (apierrors.IsConflict, retry.RetryOnConflict still work).
func writeError(err error) error {
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case apierrors.IsAlreadyExists(err):
		return fmt.Errorf("%w: %w", ErrExists, err)
	case apierrors.IsConflict(err):
		return fmt.Errorf("%w: %w", ErrConflict, err)
	case apierrors.IsBadRequest(err) || apierrors.IsInvalid(err):
		return fmt.Errorf("the cluster's Calico API rejects it (this Calico version may not know a field; unknown fields are errors, never silently dropped): %w", err)
	}
	return err
}

// jsonValue turns a Go value into the JSON-compatible form unstructured objects
// hold (int64/float64 numbers, []any, map[string]any).
func jsonValue(v map[string]any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	return out, json.Unmarshal(b, &out)
}

// awaitPool waits, briefly, until the cache holds the pool at least at
// resourceVersion rv (read-your-writes for the guards evaluated next).
func (c *CRD) awaitPool(ctx context.Context, name, rv string) {
	ctx, cancel := context.WithTimeout(ctx, cacheCatchUp)
	defer cancel()
	_ = c.cache.waitFor(ctx, func() bool {
		p, ok := c.cache.pools.get(name)
		return ok && !olderRV(p.ResourceVersion, rv)
	})
}

// awaitGone waits, briefly, until the cache no longer holds the pool.
func (c *CRD) awaitGone(ctx context.Context, name string) {
	ctx, cancel := context.WithTimeout(ctx, cacheCatchUp)
	defer cancel()
	_ = c.cache.waitFor(ctx, func() bool {
		_, ok := c.cache.pools.get(name)
		return !ok
	})
}

// olderRV reports whether resourceVersion have is older than want. Resource
// versions are opaque by contract; every apiserver backed by etcd uses its revision,
// so a numeric comparison is used when both parse and equality otherwise.
func olderRV(have, want string) bool {
	h, err1 := strconv.ParseUint(have, 10, 64)
	w, err2 := strconv.ParseUint(want, 10, 64)
	if err1 != nil || err2 != nil {
		return have != want
	}
	return h < w
}
