package operator

import (
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The resources the stand-in reads and writes. The operator's own Go API module
// is not served by the module proxy, so the operator.tigera.io/v1 types below are
// the subset it needs, with the CRD's field names.
var (
	Installations  = schema.GroupVersionResource{Group: "operator.tigera.io", Version: "v1", Resource: "installations"}
	APIServers     = schema.GroupVersionResource{Group: "operator.tigera.io", Version: "v1", Resource: "apiservers"}
	TigeraStatuses = schema.GroupVersionResource{Group: "operator.tigera.io", Version: "v1", Resource: "tigerastatuses"}
	CRDPools       = schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "ippools"}
	V3Pools        = schema.GroupVersionResource{Group: "projectcalico.org", Version: "v3", Resource: "ippools"}
	Deployments    = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
)

const (
	// DefaultName is the name of the Installation and APIServer the operator reads.
	DefaultName = "default"
	// ManagedByLabel marks the pools the operator owns (pool_controller.go).
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedByValue = "tigera-operator"
	// CompleteFinalizer is what the operator's core Installation controller adds
	// once it has defaulted the Installation; the pool controller waits for it.
	CompleteFinalizer = "tigera.io/operator-cleanup"
	// StatusName is the pool controller's TigeraStatus.
	StatusName = "ippools"
	// StateReady is APIServer status.state when the Calico API server is up.
	StateReady = "Ready"
	// APIServerNamespace and APIServerDeployment name the Calico API server's
	// Deployment as the operator renders it (v1.34.13 pkg/render/apiserver.go:925-
	// 990, Calico variant), whose availability makes APIServer "default" Ready.
	APIServerNamespace  = "calico-apiserver"
	APIServerDeployment = "calico-apiserver"
	// v3MetadataAnnotation holds the projectcalico.org/v3 metadata (labels
	// included) of a pool written through the v3 API (libcalico-go's KDD backend).
	v3MetadataAnnotation = "projectcalico.org/metadata"
)

// Installation is the part of operator.tigera.io/v1 Installation the pool
// controller reads.
type Installation struct {
	metav1.ObjectMeta `json:"metadata"`
	Spec              InstallationSpec `json:"spec"`
}

type InstallationSpec struct {
	CNI           *CNISpec           `json:"cni,omitempty"`
	CalicoNetwork *CalicoNetworkSpec `json:"calicoNetwork,omitempty"`
}

type CNISpec struct {
	Type string    `json:"type,omitempty"`
	IPAM *IPAMSpec `json:"ipam,omitempty"`
}

type IPAMSpec struct {
	Type string `json:"type,omitempty"`
}

// CalicoNetworkSpec.IPPools: nil means "default a pool", empty means "manage no
// pools" (the operator's semantics), so it is a pointer-free slice whose nil-ness
// matters and is kept by decoding from JSON.
type CalicoNetworkSpec struct {
	IPPools []IPPool `json:"ipPools"`
}

// IPPool is one entry of spec.calicoNetwork.ipPools (v1.34.13
// api/v1/installation_types.go:630-670, plus disableNewAllocations from v1.36 on:
// Version.DisableNewAllocations says whether a release has it). assignmentMode
// (v1.39+) is left out: the pinned Calico (3.28) pool API has no such field.
type IPPool struct {
	Name                  string   `json:"name,omitempty"`
	CIDR                  string   `json:"cidr"`
	Encapsulation         string   `json:"encapsulation,omitempty"`
	NATOutgoing           string   `json:"natOutgoing,omitempty"`
	NodeSelector          string   `json:"nodeSelector,omitempty"`
	BlockSize             *int32   `json:"blockSize,omitempty"`
	DisableBGPExport      *bool    `json:"disableBGPExport,omitempty"`
	DisableNewAllocations *bool    `json:"disableNewAllocations,omitempty"`
	AllowedUses           []string `json:"allowedUses,omitempty"`
}

// Encapsulation and NAT values of an Installation pool.
const (
	EncapsulationIPIP             = "IPIP"
	EncapsulationIPIPCrossSubnet  = "IPIPCrossSubnet"
	EncapsulationVXLAN            = "VXLAN"
	EncapsulationVXLANCrossSubnet = "VXLANCrossSubnet"
	EncapsulationNone             = "None"
	NATOutgoingEnabled            = "Enabled"
	NATOutgoingDisabled           = "Disabled"
)

// PoolSpec is the crd.projectcalico.org/v1 (and projectcalico.org/v3) IPPool
// spec as the operator's crdv1 types see it.
type PoolSpec struct {
	CIDR             string   `json:"cidr"`
	VXLANMode        string   `json:"vxlanMode,omitempty"`
	IPIPMode         string   `json:"ipipMode,omitempty"`
	NATOutgoing      bool     `json:"natOutgoing,omitempty"`
	Disabled         bool     `json:"disabled,omitempty"`
	DisableBGPExport bool     `json:"disableBGPExport,omitempty"`
	BlockSize        int      `json:"blockSize,omitempty"`
	NodeSelector     string   `json:"nodeSelector,omitempty"`
	AllowedUses      []string `json:"allowedUses,omitempty"`
}

// Pool is a pool in the cluster: name, v3 labels and spec.
type Pool struct {
	Name   string
	Labels map[string]string
	Spec   PoolSpec
}

// decode converts an unstructured object into one of the types above through
// JSON, which ignores the (many) fields they leave out.
func decode(u *unstructured.Unstructured, into any) error {
	data, err := u.MarshalJSON()
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, into); err != nil {
		return fmt.Errorf("decoding %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return nil
}

// poolFromCRD reads a crd.projectcalico.org pool, restoring the v3 labels that
// libcalico-go keeps in an annotation when the pool was written through the v3
// API (the operator's restoreV3Metadata).
func poolFromCRD(u *unstructured.Unstructured) (Pool, error) {
	var obj struct {
		Spec PoolSpec `json:"spec"`
	}
	if err := decode(u, &obj); err != nil {
		return Pool{}, err
	}
	p := Pool{Name: u.GetName(), Labels: u.GetLabels(), Spec: obj.Spec}
	if raw, ok := u.GetAnnotations()[v3MetadataAnnotation]; ok {
		var meta metav1.ObjectMeta
		if err := json.Unmarshal([]byte(raw), &meta); err != nil {
			return Pool{}, fmt.Errorf("pool %s: v3 metadata: %w", p.Name, err)
		}
		p.Labels = meta.Labels
	}
	return p, nil
}

func (p Pool) managed() bool { return p.Labels[ManagedByLabel] == ManagedByValue }

// Managed reports whether a crd.projectcalico.org pool carries the operator's
// managed-by label — on the object, or, once written through the v3 API, in the
// v3 metadata annotation, where libcalico-go keeps v3 labels.
func Managed(u *unstructured.Unstructured) bool {
	p, err := poolFromCRD(u)
	return err == nil && p.managed()
}
