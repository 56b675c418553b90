package calico

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	cerrors "github.com/projectcalico/calico/libcalico-go/lib/errors"
	validator "github.com/projectcalico/calico/libcalico-go/lib/validator/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WithDefaults returns spec with the defaults Calico applies when it reads a pool
// (clientv3 convertIpPoolFromStorage): a v1 CRD written by hand may omit them, and
// comparing against the raw object would see differences Calico does not.
func WithDefaults(spec v3.IPPoolSpec) v3.IPPoolSpec {
	if spec.BlockSize == 0 {
		if p, err := ParseCIDR(spec.CIDR); err == nil {
			spec.BlockSize = DefaultBlockSize(FamilyOf(p))
		}
	}
	if len(spec.AllowedUses) == 0 {
		spec.AllowedUses = []v3.IPPoolAllowedUse{v3.IPPoolAllowedUseWorkload, v3.IPPoolAllowedUseTunnel}
	}
	if spec.NodeSelector == "" {
		spec.NodeSelector = "all()"
	}
	if spec.IPIPMode == "" {
		spec.IPIPMode = v3.IPIPModeNever
	}
	if spec.VXLANMode == "" {
		spec.VXLANMode = v3.VXLANModeNever
	}
	return spec
}

// ValidateSpec checks a pool spec against Calico's own rules, the ones clientv3 and
// the Calico API server enforce and a raw v1 CRD write does not: libcalico-go's
// validator (modes, selector syntax, IPIP on IPv6, IPIP and VXLAN together,
// strictly masked CIDR, link-local ranges, allowed uses) plus what clientv3 adds
// (block size range). A pool smaller than one block is refused even when created
// disabled (Calico only checks enabled pools): it could never be enabled.
// It returns one line per problem.
func ValidateSpec(name string, spec v3.IPPoolSpec) []string {
	var problems []string
	cidr, err := ParseCIDR(spec.CIDR)
	if err != nil {
		return []string{err.Error()}
	}
	fam := FamilyOf(cidr)
	if lo, hi := BlockSizeRange(fam); spec.BlockSize < lo || spec.BlockSize > hi {
		problems = append(problems, fmt.Sprintf("blockSize %d is outside the IPv%d range %d-%d", spec.BlockSize, fam, lo, hi))
	}
	if cidr.Bits() > spec.BlockSize {
		problems = append(problems, fmt.Sprintf("pool %s is smaller than one block (/%d): Calico IPAM cannot allocate from it", cidr, spec.BlockSize))
	}
	if err := validator.Validate(&v3.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}); err != nil {
		var verr cerrors.ErrorValidation
		if !errors.As(err, &verr) {
			return append(problems, err.Error())
		}
		for _, f := range verr.ErroredFields {
			if strings.Contains(f.Reason, "too small for use with Calico IPAM") {
				continue // reported above, with the numbers
			}
			problems = append(problems, f.String())
		}
	}
	return problems
}

// CheckNewPool checks what only matters when a pool is created: its CIDR must not
// overlap another pool (Calico checks this on create only), and no existing IPAM
// block inside it may have another block size (clientv3 Create refuses that too:
// leftover blocks of a deleted pool would be handed out with the wrong size).
func CheckNewPool(name string, cidr netip.Prefix, blockSize int, pools []Pool, blocks []Block) []string {
	var problems []string
	for i := range pools {
		p := &pools[i]
		if p.Name == name || !p.CIDR.IsValid() {
			continue
		}
		if p.CIDR.Overlaps(cidr) {
			problems = append(problems, fmt.Sprintf("CIDR %s overlaps pool %s (%s)", cidr, p.Name, p.CIDR))
		}
	}
	for i := range blocks {
		b := &blocks[i]
		if b.CIDR.Overlaps(cidr) && b.CIDR.Bits() != blockSize {
			problems = append(problems, fmt.Sprintf("IPAM block %s inside %s has block size /%d, not /%d (left over from an earlier pool?)", b.CIDR, cidr, b.CIDR.Bits(), blockSize))
		}
	}
	return problems
}

// CheckImmutable refuses a change of cidr or blockSize on an existing pool: Calico
// treats both as immutable, and runbook never deletes and recreates a pool to
// change them.
func CheckImmutable(existing *Pool, cidr netip.Prefix, blockSize int) []string {
	var problems []string
	if existing.CIDR != cidr {
		problems = append(problems, fmt.Sprintf("pool %s exists with cidr %s, not %s (cidr is immutable; choose another pool name)", existing.Name, existing.Spec.CIDR, cidr))
	}
	if existing.Spec.BlockSize != blockSize {
		problems = append(problems, fmt.Sprintf("pool %s exists with blockSize %d, not %d (blockSize is immutable)", existing.Name, existing.Spec.BlockSize, blockSize))
	}
	return problems
}
