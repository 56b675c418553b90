package deploy

import (
	"sort"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// ruleKey is one verb on one resource granted in one scope ("" for cluster-wide),
// on every object or (Name) on one (RBAC resourceNames).
type ruleKey struct {
	Scope, Group, Resource, Verb, Name string
}

func (k ruleKey) String() string {
	scope := "cluster"
	if k.Scope != "" {
		scope = "namespace " + k.Scope
	}
	s := scope + ": " + k.Verb + " " + k.Group + "/" + k.Resource
	if k.Name != "" {
		s += " named " + k.Name
	}
	return s
}

type ruleSet map[ruleKey]bool

// loadRules collects what the manifests grant the ServiceAccount ns/name, through
// its bindings.
func loadRules(t *testing.T, path, ns, name string) ruleSet {
	t.Helper()
	clusterRoles, roles := map[string][]rbacv1.PolicyRule{}, map[string][]rbacv1.PolicyRule{}
	var bindings []rbacv1.RoleBinding
	var clusterBindings []rbacv1.ClusterRoleBinding
	for _, u := range readObjects(t, path) {
		var err error
		switch u.GetKind() {
		case "ClusterRole":
			var r rbacv1.ClusterRole
			err = runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &r)
			clusterRoles[r.Name] = r.Rules
		case "Role":
			var r rbacv1.Role
			err = runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &r)
			roles[r.Namespace+"/"+r.Name] = r.Rules
		case "RoleBinding":
			var b rbacv1.RoleBinding
			err = runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &b)
			bindings = append(bindings, b)
		case "ClusterRoleBinding":
			var b rbacv1.ClusterRoleBinding
			err = runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &b)
			clusterBindings = append(clusterBindings, b)
		}
		if err != nil {
			t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
	isUs := func(subjects []rbacv1.Subject) bool {
		for _, s := range subjects {
			if s.Kind == "ServiceAccount" && s.Namespace == ns && s.Name == name {
				return true
			}
		}
		return false
	}
	set := ruleSet{}
	add := func(scope string, rules []rbacv1.PolicyRule) {
		for _, r := range rules {
			names := r.ResourceNames
			if len(names) == 0 {
				names = []string{""}
			}
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					for _, v := range r.Verbs {
						for _, n := range names {
							set[ruleKey{Scope: scope, Group: g, Resource: res, Verb: v, Name: n}] = true
						}
					}
				}
			}
		}
	}
	for _, b := range clusterBindings {
		if isUs(b.Subjects) {
			add("", clusterRoles[b.RoleRef.Name])
		}
	}
	for _, b := range bindings {
		if !isUs(b.Subjects) {
			continue
		}
		if b.RoleRef.Kind == "ClusterRole" {
			add(b.Namespace, clusterRoles[b.RoleRef.Name])
		} else {
			add(b.Namespace, roles[b.Namespace+"/"+b.RoleRef.Name])
		}
	}
	return set
}

// allowing lists the rules that allow a call: cluster-wide or in its namespace,
// on every object or on the one it names.
func (s ruleSet) allowing(c apiCall) []ruleKey {
	scopes, names := []string{""}, []string{""}
	if c.Namespace != "" {
		scopes = append(scopes, c.Namespace)
	}
	if c.Name != "" {
		names = append(names, c.Name)
	}
	var out []ruleKey
	for _, scope := range scopes {
		for _, name := range names {
			k := ruleKey{Scope: scope, Group: c.Group, Resource: c.Resource, Verb: c.Verb, Name: name}
			if s[k] {
				out = append(out, k)
			}
		}
	}
	return out
}

// grants reports whether the set allows what k asks for (k as a need: its scope
// and name, or wider).
func (s ruleSet) grants(k ruleKey) bool {
	return len(s.allowing(apiCall{Verb: k.Verb, Group: k.Group, Resource: k.Resource, Namespace: k.Scope, Name: k.Name})) > 0
}

func (s ruleSet) keys() []ruleKey {
	out := make([]ruleKey, 0, len(s))
	for k := range s {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// notOnTheHappyPath are rules a clean migration of the sandbox does not use, with
// the code path that does: the test cannot prove them by use, so each names why.
var notOnTheHappyPath = map[string]string{
	// Informers stream their initial list with a watch (WatchList, on by default in
	// this apiserver); against apiservers without streaming lists they list first.
	"cluster: list /namespaces":                 "by the namespace informer's initial list where streaming lists are off (internal/podmove/cache.go)",
	"cluster: list apps/daemonsets":             "by the owner informers' initial list where streaming lists are off (internal/podmove/cache.go)",
	"cluster: list apps/deployments":            "by the owner informers' initial list where streaming lists are off (internal/podmove/cache.go)",
	"cluster: list apps/replicasets":            "by the owner informers' initial list where streaming lists are off (internal/podmove/cache.go)",
	"cluster: list apps/statefulsets":           "by the owner informers' initial list where streaming lists are off (internal/podmove/cache.go)",
	"cluster: list policy/poddisruptionbudgets": "by the PDB informer's initial list where streaming lists are off (internal/podmove/cache.go)",
	"namespace kube-system: list /configmaps":   "by the cluster-config informer's initial list where streaming lists are off (internal/calico/crd_cache.go)",
	"cluster: delete /pods":                     "by deletePodsInPool for bare pods and strategy: delete (internal/podmove/api.go); the sandbox's pods all have owners",
	"cluster: get /pods":                        "by assertNewAllocations to explain a test pod that did not start (actions/probe_wait.go)",
	"cluster: list /events":                     "to name why a pod did not come back or start: its latest Warning event (internal/podmove/api.go, actions/probe_wait.go)",
	"cluster: get /services":                    "by deletePodsInPool to find the pods behind admission webhooks and APIServices, moved first (internal/podmove/critical.go); the default scenario has none",
	"cluster: patch apps/daemonsets":            "by deletePodsInPool's singleReplica: rolloutRestart (internal/podmove)",
	"cluster: patch apps/deployments":           "by deletePodsInPool's singleReplica: rolloutRestart (internal/podmove)",
	"cluster: patch apps/statefulsets":          "by deletePodsInPool's singleReplica: rolloutRestart (internal/podmove)",
	"namespace runbook-system: delete coordination.k8s.io/leases named runbook-lock-calico-ipam": "by runbook unlock (engine/lock.go Unlock)",
	"cluster: list crd.projectcalico.org/bgppeers":                                               "by the preflight's bgp-export check, only when a new pool sets disableBGPExport and calico-config does not name bird (internal/preflight/checks_pools.go)",
	"cluster: get crd.projectcalico.org/ipamhandles":                                             "by releaseLeakedAddresses to decrement a released address's handle (actions/release_leaked.go); the example has no such step",
	"cluster: patch crd.projectcalico.org/ipamhandles":                                           "by releaseLeakedAddresses to decrement a released address's handle (actions/release_leaked.go)",
	"cluster: delete crd.projectcalico.org/ipamhandles":                                          "by releaseLeakedAddresses to delete a released address's last handle entry (actions/release_leaked.go)",
}
