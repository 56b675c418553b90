// Package check holds the value rules (value.Check) action parameters declare
// beyond their type: Calico names, selectors, block sizes and uses, Kubernetes
// names and label selectors, lower bounds. Each rule is Calico's or Kubernetes'
// own validation where one exists, at the versions pinned in go.mod, so a value
// validate accepts is one the API accepts, and a value it refuses names the rule.
//
// The rules run wherever a value becomes known (value.Spec.Resolve): a literal at
// validate, a value bound from -f/--set before plan or apply touch the cluster, a
// template rendered when the step runs.
package check

import (
	"errors"
	"fmt"
	"strings"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	cerrors "github.com/projectcalico/calico/libcalico-go/lib/errors"
	"github.com/projectcalico/calico/libcalico-go/lib/selector"
	validator "github.com/projectcalico/calico/libcalico-go/lib/validator/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	k8svalidation "k8s.io/apimachinery/pkg/util/validation"

	"github.com/runbookdev/runbook/internal/calico"
	"github.com/runbookdev/runbook/internal/value"
)

// PoolName accepts what Calico accepts as an IPPool's metadata.name:
// libcalico-go/lib/validator/v3/validator.go validateObjectMeta, a DNS-1123
// subdomain (lower-case letters, digits, '-' and '.', at most 253 bytes).
func PoolName(v any) error {
	s, err := str(v)
	if err != nil {
		return err
	}
	if err := validator.Validate(metav1.ObjectMeta{Name: s}); err != nil {
		return fmt.Errorf("%q is not a valid Calico IP pool name: %s", s, reasons(err))
	}
	return nil
}

// NamespaceName accepts a Kubernetes namespace name: a DNS-1123 label (at most 63
// lower-case letters, digits and '-'; no dots), as the apiserver requires.
func NamespaceName(v any) error {
	s, err := str(v)
	if err != nil {
		return err
	}
	if msgs := k8svalidation.IsDNS1123Label(s); len(msgs) > 0 {
		return fmt.Errorf("%q is not a valid namespace name: %s", s, strings.Join(msgs, "; "))
	}
	return nil
}

// Optional accepts the empty string, which optional parameters read as "not
// given" (deletePodsInPool's targetPool: any pool), and applies c to the rest.
func Optional(c value.Check) value.Check {
	return func(v any) error {
		if s, ok := v.(string); ok && s == "" {
			return nil
		}
		return c(v)
	}
}

// BlockSize accepts the block prefix lengths Calico accepts: IPv4 20 to 32, IPv6
// 116 to 128 (libcalico-go/lib/clientv3/ippool.go validateAndSetDefaults, which
// refuses "IPv4 block size must be between 20 and 32"; the validator itself does
// not check the range), and 0, which Calico reads as its default (26 or 122,
// validator.go validateIPPoolSpec). Which family the pool has is known from its
// cidr; ensurePool checks the pair (calico.ValidateSpec) when it plans.
func BlockSize(v any) error {
	n, err := integer(v)
	if err != nil {
		return err
	}
	lo4, hi4 := calico.BlockSizeRange(4)
	lo6, hi6 := calico.BlockSizeRange(6)
	if n == 0 || (n >= lo4 && n <= hi4) || (n >= lo6 && n <= hi6) {
		return nil
	}
	return fmt.Errorf("blockSize %d is not a Calico block size: IPv4 pools take %d to %d, IPv6 pools %d to %d", n, lo4, hi4, lo6, hi6)
}

// knownUses are the IPPoolAllowedUse values of the pinned projectcalico/api, for
// the message; whether a use is accepted is the validator's answer.
var knownUses = []v3.IPPoolAllowedUse{v3.IPPoolAllowedUseWorkload, v3.IPPoolAllowedUseTunnel}

// AllowedUses accepts a list of uses Calico's validator accepts in
// spec.allowedUses (validator.go validateIPPoolSpec: Workload and Tunnel at the
// pinned version; LoadBalancer came later). Each use is validated in an otherwise
// valid pool, so any error is about the use, and a Calico upgrade that adds one
// needs no change here.
func AllowedUses(v any) error {
	l, ok := v.([]any)
	if !ok {
		return fmt.Errorf("expected a list, got %s", value.Describe(v))
	}
	for i, u := range l {
		s, ok := u.(string)
		if !ok {
			return fmt.Errorf("allowedUses[%d] is %s, not a string", i, value.Describe(u))
		}
		pool := validPool()
		pool.Spec.AllowedUses = []v3.IPPoolAllowedUse{v3.IPPoolAllowedUse(s)}
		if err := validator.Validate(pool); err != nil {
			names := make([]string, len(knownUses))
			for j, k := range knownUses {
				names[j] = string(k)
			}
			return fmt.Errorf("allowedUses[%d] %q is not a use Calico knows (%s): %s", i, s, strings.Join(names, ", "), reasons(err))
		}
	}
	return nil
}

// CalicoSelector accepts a Calico selector (a pool's nodeSelector), parsed by
// Calico's own parser, which is all its validator does with one
// (validator.go validateSelector); the empty string is Calico's all().
func CalicoSelector(v any) error {
	s, err := str(v)
	if err != nil {
		return err
	}
	if _, err := selector.Parse(s); s != "" && err != nil {
		return fmt.Errorf("%q is not a valid Calico selector (%v); write one such as all(), has(zone) or zone == 'a' && rack != 'r1'", s, err)
	}
	return nil
}

// LabelSelector accepts a Kubernetes label selector (app=web,tier!=db,
// env in (a,b)), parsed by apimachinery's labels.Parse as the pod lists that use it
// are; the empty string selects everything.
func LabelSelector(v any) error {
	s, err := str(v)
	if err != nil {
		return err
	}
	if _, err := labels.Parse(s); err != nil {
		return fmt.Errorf("%q is not a valid label selector: %v", s, err)
	}
	return nil
}

// AtLeast accepts ints of at least min: concurrency 0 would never move a pod.
func AtLeast(min int) value.Check {
	return func(v any) error {
		n, err := integer(v)
		if err != nil {
			return err
		}
		if n < min {
			return fmt.Errorf("must be at least %d, got %d", min, n)
		}
		return nil
	}
}

// validPool is a pool every rule of the validator accepts, to validate one field in.
func validPool() *v3.IPPool {
	return &v3.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "check"},
		Spec: v3.IPPoolSpec{CIDR: "10.0.0.0/16", BlockSize: 26, IPIPMode: v3.IPIPModeNever, VXLANMode: v3.VXLANModeNever}}
}

// reasons are the validator's reasons, without its Go field names.
func reasons(err error) string {
	var verr cerrors.ErrorValidation
	if !errors.As(err, &verr) || len(verr.ErroredFields) == 0 {
		return err.Error()
	}
	out := make([]string, len(verr.ErroredFields))
	for i, f := range verr.ErroredFields {
		out[i] = f.Reason
		if out[i] == "" {
			out[i] = f.String()
		}
	}
	return strings.Join(out, "; ")
}

// str and integer read canonical values; another type is a declaration bug,
// reported as an error, never a panic.
func str(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("expected a string, got %s", value.Describe(v))
	}
	return s, nil
}

func integer(v any) (int, error) {
	n, ok := v.(int)
	if !ok {
		return 0, fmt.Errorf("expected an int, got %s", value.Describe(v))
	}
	return n, nil
}
