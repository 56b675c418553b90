package preflight

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/runbookdev/runbook/actions/decl"
)

// poolActions are the actions of a pool migration: checks about the migration run
// while one of them is still to run.
// The roles checks run for: every step of a migration (releasing leaked
// addresses is IPAM repair, not a migration); the steps that take pods or
// allocations away from a pool; those that start moving pods to a new pool.
var (
	poolRoles      = []decl.PoolRole{decl.PoolCreates, decl.PoolDisables, decl.PoolMovesPodsFrom, decl.PoolMovesPodsTo, decl.PoolMovesTunnelsFrom, decl.PoolVerifies, decl.PoolDeletes}
	leavingRoles   = []decl.PoolRole{decl.PoolDisables, decl.PoolMovesPodsFrom, decl.PoolDeletes}
	migrationRoles = []decl.PoolRole{decl.PoolCreates, decl.PoolDisables, decl.PoolMovesPodsFrom}
)

func init() {
	Register(Check{ID: "calico-ipam", Roles: poolRoles, Run: checkCalicoIPAM})
	Register(Check{ID: "openshift", Roles: poolRoles, Run: checkOpenShift})
}

// Where Calico's CNI configuration lives in a manifest install, and the operator's
// Installation in an operator install.
const (
	calicoConfigNamespace = "kube-system"
	calicoConfigName      = "calico-config"
	cniConfigKey          = "cni_network_config"
	calicoBackendKey      = "calico_backend"
)

var installationGVR = schema.GroupVersionResource{Group: "operator.tigera.io", Version: "v1", Resource: "installations"}

// cniIPAM is the calico plugin's ipam section of the CNI configuration.
type cniIPAM struct {
	Type      string   `json:"type"`
	IPv4Pools []string `json:"ipv4_pools"`
	IPv6Pools []string `json:"ipv6_pools"`
}

// placeholder matches install-cni's unquoted template values (e.g. __CNI_MTU__),
// which make the shipped cni_network_config invalid JSON until install-cni fills
// them in on the node.
var placeholder = regexp.MustCompile(`:\s*__[A-Z0-9_]+__`)

// parseCNIConfig returns the ipam section of the calico plugin in a CNI network
// configuration (a conflist with plugins, or a single plugin config).
func parseCNIConfig(raw string) (cniIPAM, bool, error) {
	type plugin struct {
		Type string  `json:"type"`
		IPAM cniIPAM `json:"ipam"`
	}
	var conf struct {
		plugin
		Plugins []plugin `json:"plugins"`
	}
	if err := json.Unmarshal([]byte(placeholder.ReplaceAllString(raw, ": 0")), &conf); err != nil {
		return cniIPAM{}, false, fmt.Errorf("parse %s: %w", cniConfigKey, err)
	}
	for _, p := range append([]plugin{conf.plugin}, conf.Plugins...) {
		if p.Type == "calico" {
			return p.IPAM, true, nil
		}
	}
	return cniIPAM{}, false, nil
}

// installation reads the operator's Installation default; nil when absent.
func (in *Input) installation(ctx context.Context) (*unstructured.Unstructured, error) {
	items, err := in.List(ctx, installationGVR)
	if err != nil {
		return nil, err
	}
	for i := range items {
		if items[i].GetName() == "default" {
			return &items[i], nil
		}
	}
	return nil, nil
}

// calicoCNI reads the calico plugin's ipam section from calico-config; ok is false
// when there is no such ConfigMap or plugin (an operator install).
func (in *Input) calicoCNI(ctx context.Context) (cniIPAM, bool, error) {
	cm, err := in.ConfigMap(ctx, calicoConfigNamespace, calicoConfigName)
	if err != nil || cm == nil {
		return cniIPAM{}, false, err
	}
	raw, ok := cm.Data[cniConfigKey]
	if !ok {
		return cniIPAM{}, false, nil
	}
	ipam, ok, err := parseCNIConfig(raw)
	if err != nil {
		return cniIPAM{}, false, fmt.Errorf("ConfigMap %s/%s: %w", calicoConfigNamespace, calicoConfigName, err)
	}
	return ipam, ok, nil
}

// checkCalicoIPAM: the migration moves addresses between Calico IP pools, which
// only means something when Calico IPAM hands out pod addresses. With host-local
// (or a cloud's IPAM) pools only steer tunnel addresses, and deleting pods moves
// nothing.
func checkCalicoIPAM(ctx context.Context, in *Input) ([]Finding, error) {
	inst, err := in.installation(ctx)
	if err != nil {
		return nil, err
	}
	if inst != nil {
		typ, found, _ := unstructured.NestedString(inst.Object, "spec", "cni", "ipam", "type")
		if found && typ != "" && typ != "Calico" {
			return []Finding{{Severity: Block, Subject: "Installation default spec.cni.ipam.type",
				Message: fmt.Sprintf("pod addresses come from %s IPAM, not Calico IPAM: Calico IP pools do not decide pod addresses, so this migration would move nothing", typ),
				Fix:     "migrate pod addresses the way your IPAM plugin does; this runbook applies to spec.cni.ipam.type Calico"}}, nil
		}
		return []Finding{{Severity: Info, Subject: "Installation default spec.cni.ipam.type", Message: "Calico IPAM is in use (operator install)"}}, nil
	}
	ipam, ok, err := in.calicoCNI(ctx)
	if err != nil {
		return nil, err
	}
	if !ok {
		return []Finding{{Severity: Warn, Subject: "ConfigMap kube-system/calico-config",
			Message: "cannot tell which IPAM hands out pod addresses: neither an Installation nor calico-config's " + cniConfigKey + " with a calico plugin was found",
			Fix:     "check the CNI configuration on a node (/etc/cni/net.d): the calico plugin's ipam type must be calico-ipam"}}, nil
	}
	subject := "ConfigMap kube-system/calico-config data." + cniConfigKey + " ipam.type"
	if ipam.Type != "calico-ipam" {
		return []Finding{{Severity: Block, Subject: subject,
			Message: fmt.Sprintf("pod addresses come from %q IPAM, not calico-ipam: Calico IP pools do not decide pod addresses, so this migration would move nothing", ipam.Type),
			Fix:     "change the pod CIDR the way your IPAM plugin does (for host-local, the nodes' podCIDRs); this runbook applies to calico-ipam"}}, nil
	}
	return []Finding{{Severity: Info, Subject: subject, Message: "Calico IPAM is in use"}}, nil
}

// checkOpenShift: on OpenShift the cluster network (and with it the pod CIDR
// Calico must stay within) is owned by the cluster Network operator, and Calico by
// its operator: a pool migration there follows the vendor's procedure.
func checkOpenShift(ctx context.Context, in *Input) ([]Finding, error) {
	ok, err := in.Serves("config.openshift.io")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, nil
	}
	return []Finding{{Severity: Block, Subject: "API group config.openshift.io",
		Message: "this is an OpenShift cluster: its cluster network (networks.config.openshift.io) is owned by the Network operator, which must agree with every pool, and Calico by the OpenShift operator integration; changing pools behind them is not supported",
		Fix:     "change the cluster network and Calico's pools with the OpenShift-supported procedure (Network operator + Installation), not with this runbook"}}, nil
}
