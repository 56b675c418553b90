package preflight

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/runbookdev/runbook/internal/calico"
)

func init() {
	Register(Check{ID: "references", Roles: leavingRoles, Run: checkReferences})
}

// referenceKinds are the objects that can name pod CIDRs, and the fields that do:
// a string at one of these keys, or a list of strings under one. What a stale
// reference does differs by kind, and so does its fix.
var referenceKinds = []struct {
	kind   string
	gvr    schema.GroupVersionResource
	fields []string
	effect string // what the reference does once the pods have moved
	fix    string
}{
	{"NetworkPolicy", schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "networkpolicies"}, []string{"cidr", "except"},
		policyEffect, policyFix},
	{"NetworkPolicy.crd.projectcalico.org", crdGVR("networkpolicies"), []string{"nets", "notNets"}, policyEffect, policyFix},
	{"GlobalNetworkPolicy", crdGVR("globalnetworkpolicies"), []string{"nets", "notNets"}, policyEffect, policyFix},
	{"NetworkSet", crdGVR("networksets"), []string{"nets"}, setEffect, setFix},
	{"GlobalNetworkSet", crdGVR("globalnetworksets"), []string{"nets"}, setEffect, setFix},
	{"BGPFilter", crdGVR("bgpfilters"), []string{"cidr"},
		"the filter's rule no longer applies to the moved pods' routes: the rules after it (or the default) decide whether peers get them",
		"add a rule for the new pool's CIDR with the same action before the pods move"},
	{"IPReservation", crdGVR("ipreservations"), []string{"reservedCIDRs"},
		"it reserves addresses of the old pool only: whatever they were kept out of pod use for, no range of the new pool is",
		"reserve the corresponding range of the new pool too, or delete the reservation along with the old pool if nothing needs it"},
}

const (
	policyEffect = "pods moved to the new pool no longer match it"
	policyFix    = "add the new pool's CIDR (or replace the old one) before the pods move; prefer label selectors over pod CIDRs"
	setEffect    = "policies selecting this set no longer match the moved pods"
	setFix       = "add the new pool's CIDR to the set before the pods move"
)

func crdGVR(resource string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: resource}
}

// checkReferences: policies, sets, BGP filters and reservations naming the old
// CIDR keep naming it after the pods have moved, and silently stop matching them
// (a policy that allowed them now denies, a filter that exported them no longer
// does). A reference that also covers the new pool (0.0.0.0/0, the whole cluster
// CIDR) still matches and is not reported.
func checkReferences(ctx context.Context, in *Input) ([]Finding, error) {
	m, err := in.Migration(ctx)
	if err != nil {
		return nil, err
	}
	if len(m.Old) == 0 {
		return nil, nil
	}
	var out []Finding
	var errs []string
	for _, k := range referenceKinds {
		items, err := in.List(ctx, k.gvr)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		for i := range items {
			obj := &items[i]
			name := obj.GetName()
			if ns := obj.GetNamespace(); ns != "" {
				name = ns + "/" + name
			}
			walkCIDRs(obj.Object["spec"], "spec", k.fields, func(path, value string) {
				ref, ok := parseRef(value)
				if !ok {
					return
				}
				for _, old := range m.Old {
					if !old.CIDR.IsValid() || !ref.Overlaps(old.CIDR) || coversNew(ref, m, old.Family()) {
						continue
					}
					out = append(out, Finding{Severity: Warn, Subject: fmt.Sprintf("%s %s %s", k.kind, name, path),
						Message: fmt.Sprintf("%s names %s inside the old pool %s (%s): %s", k.kind, value, old.Name, old.CIDR, k.effect),
						Fix:     k.fix})
				}
			})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Subject < out[j].Subject })
	if len(errs) > 0 {
		return out, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return out, nil
}

// parseRef reads a CIDR or a single address as written in a policy.
func parseRef(s string) (netip.Prefix, bool) {
	if p, err := calico.ParseCIDR(s); err == nil {
		return p, true
	}
	if a, err := netip.ParseAddr(strings.TrimSpace(s)); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}

// coversNew reports whether ref contains every new pool of the family (so the
// moved pods still match it).
func coversNew(ref netip.Prefix, m *Migration, fam calico.Family) bool {
	news := m.NewOfFamily(fam)
	if len(news) == 0 {
		return false
	}
	for _, n := range news {
		if !calico.Contains(ref, n.CIDR) {
			return false
		}
	}
	return true
}

// walkCIDRs calls fn with the path and value of every string at a key in fields
// (or in a list under one), anywhere below v.
func walkCIDRs(v any, path string, fields []string, fn func(path, value string)) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := path + "." + k
			isField := false
			for _, f := range fields {
				isField = isField || f == k
			}
			switch val := x[k].(type) {
			case string:
				if isField {
					fn(p, val)
				}
			case []any:
				for i, e := range val {
					ep := p + "[" + strconv.Itoa(i) + "]"
					if s, ok := e.(string); ok && isField {
						fn(ep, s)
					} else {
						walkCIDRs(e, ep, fields, fn)
					}
				}
			default:
				walkCIDRs(val, p, fields, fn)
			}
		}
	case []any:
		for i, e := range x {
			walkCIDRs(e, path+"["+strconv.Itoa(i)+"]", fields, fn)
		}
	}
}
