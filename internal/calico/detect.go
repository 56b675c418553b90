package calico

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
)

// APIChoice is the --calico-api flag: which Calico API pools are written through.
type APIChoice string

const (
	// APIAuto picks projectcalico.org/v3 when the cluster serves it, else the v1 CRDs.
	APIAuto APIChoice = "auto"
	// APICRD forces crd.projectcalico.org/v1.
	APICRD APIChoice = "crd"
	// APIV3 forces projectcalico.org/v3; an error when the cluster cannot serve it.
	APIV3 APIChoice = "v3"
)

// APIChoices are the accepted values of the flag, for help and validation.
var APIChoices = []APIChoice{APIAuto, APICRD, APIV3}

// ParseAPIChoice checks a flag value.
func ParseAPIChoice(s string) (APIChoice, error) {
	for _, c := range APIChoices {
		if string(c) == s {
			return c, nil
		}
	}
	return "", fmt.Errorf("--calico-api %q: want one of auto, crd, v3", s)
}

// V3Source says what serves projectcalico.org/v3.
type V3Source string

const (
	V3None V3Source = ""
	// V3APIServer: a service-backed APIService (the Calico API server, aggregated).
	V3APIServer V3Source = "apiserver"
	// V3CRDs: a Local APIService, i.e. native projectcalico.org/v3 CRDs (Calico 3.32+).
	V3CRDs V3Source = "native-crds"
	// V3Unknown: discovery serves the group but the APIService cannot be read
	// (RBAC); usable, origin not known.
	V3Unknown V3Source = "served"
)

// Detection is what discovery found about the cluster's Calico APIs, and the
// flavour chosen from it.
type Detection struct {
	Flavour Flavour
	// V1 says crd.projectcalico.org/v1 serves IP pools and IPAM blocks.
	V1 bool
	// V3 says what serves projectcalico.org/v3 IPPools, if anything does.
	V3 V3Source
	// V3Service is the Service behind the APIService ("ns/name"), when service-backed.
	V3Service string
	// V3Unavailable explains why a registered v3 API cannot be used right now.
	V3Unavailable string
	// Operator says the operator.tigera.io/v1 Installation API is served.
	Operator bool
}

// String is the one line plans and reports show.
func (d Detection) String() string {
	var s string
	switch {
	case d.Flavour == FlavourV3 && d.V3 == V3APIServer:
		s = "projectcalico.org/v3 (Calico API server " + d.V3Service + ")"
	case d.Flavour == FlavourV3 && d.V3 == V3CRDs:
		s = "projectcalico.org/v3 (native CRDs)"
	case d.Flavour == FlavourV3:
		s = "projectcalico.org/v3"
	default:
		s = "crd.projectcalico.org/v1 CRDs"
		if d.V3Unavailable != "" {
			s += " (projectcalico.org/v3 registered but unavailable: " + d.V3Unavailable + ")"
		}
	}
	if d.Operator {
		s += "; tigera-operator Installation API served"
	}
	return s
}

// Found describes the cluster without the choice, for error messages.
func (d Detection) Found() string {
	var parts []string
	if d.V1 {
		parts = append(parts, "crd.projectcalico.org/v1 (ippools, ipamblocks)")
	}
	switch d.V3 {
	case V3APIServer:
		parts = append(parts, "projectcalico.org/v3 from the Calico API server ("+d.V3Service+")")
	case V3CRDs:
		parts = append(parts, "projectcalico.org/v3 native CRDs")
	case V3Unknown:
		parts = append(parts, "projectcalico.org/v3 (origin unknown)")
	}
	if d.V3Unavailable != "" {
		parts = append(parts, "projectcalico.org/v3 registered but unavailable ("+d.V3Unavailable+")")
	}
	if d.Operator {
		parts = append(parts, "operator.tigera.io/v1 Installation")
	}
	if len(parts) == 0 {
		return "no Calico API"
	}
	return strings.Join(parts, ", ")
}

var gvrAPIServices = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

const v3APIServiceName = "v3.projectcalico.org"

// Detect asks discovery which Calico APIs the cluster serves and picks the
// flavour for choice. An explicit choice the cluster cannot serve is an error
// naming what was found; auto prefers v3 (the server validates and defaults, as
// calicoctl does) and falls back to the v1 CRDs when v3 is registered but not
// available, saying so in the Detection.
func Detect(ctx context.Context, disc discovery.DiscoveryInterface, dyn dynamic.Interface, choice APIChoice) (Detection, error) {
	var d Detection
	var err error
	if d.V1, err = servesResources(disc, "crd.projectcalico.org/v1", "ippools", "ipamblocks", "blockaffinities"); err != nil {
		return d, err
	}
	if d.Operator, err = servesResources(disc, "operator.tigera.io/v1", "installations"); err != nil {
		return d, err
	}
	// The APIService tells a Calico API server (service-backed) from native v3
	// CRDs (Local), and whether its server is up. It is read before discovery:
	// discovery of an aggregated group whose server is down answers 503, which the
	// client's retries would wait out (~12 s) only to learn what the APIService's
	// Available condition already says. Reading it needs RBAC a least-privilege
	// deployment may lack; then discovery alone decides.
	var svc *unstructured.Unstructured
	var svcErr error
	if dyn != nil {
		svc, svcErr = dyn.Resource(gvrAPIServices).Get(ctx, v3APIServiceName, metav1.GetOptions{})
		if apierrors.IsNotFound(svcErr) || apierrors.IsForbidden(svcErr) {
			svc, svcErr = nil, nil
		}
	}
	var v3Served bool
	var v3Err error
	if svc != nil {
		svcNS, _, _ := unstructured.NestedString(svc.Object, "spec", "service", "namespace")
		svcName, _, _ := unstructured.NestedString(svc.Object, "spec", "service", "name")
		if svcName == "" {
			d.V3 = V3CRDs
		} else {
			d.V3, d.V3Service = V3APIServer, svcNS+"/"+svcName
			d.V3Unavailable = apiServiceUnavailable(svc.Object)
		}
	}
	if d.V3Unavailable == "" {
		v3Served, v3Err = servesResources(disc, "projectcalico.org/v3", "ippools")
		if v3Err != nil {
			// An aggregated API whose server is down fails discovery of its group only.
			d.V3Unavailable = v3Err.Error()
		}
	}
	if svcErr != nil && (v3Served || v3Err != nil) {
		return d, fmt.Errorf("calico: read APIService %s: %w", v3APIServiceName, svcErr)
	}
	if svc == nil && v3Served {
		d.V3 = V3Unknown
	}
	if d.V3Unavailable != "" && d.V3 == V3None {
		d.V3 = V3Unknown
	}
	v3OK := v3Served && d.V3Unavailable == ""
	switch choice {
	case APIV3:
		if !v3OK {
			return d, fmt.Errorf("%w: --calico-api v3: this cluster does not serve projectcalico.org/v3 IPPools; found %s", ErrNotInstalled, d.Found())
		}
		d.Flavour = FlavourV3
	case APICRD:
		if !d.V1 {
			return d, fmt.Errorf("%w: --calico-api crd: this cluster does not serve crd.projectcalico.org/v1 ippools/ipamblocks/blockaffinities; found %s", ErrNotInstalled, d.Found())
		}
		d.Flavour = FlavourCRD
	case APIAuto, "":
		switch {
		case v3OK && d.V1:
			d.Flavour = FlavourV3
		case d.V1:
			d.Flavour = FlavourCRD
		default:
			// IPAM state is crd.projectcalico.org/v1 in every flavour (KDD): without
			// it nothing here can tell whether a pool is empty.
			return d, fmt.Errorf("%w: crd.projectcalico.org/v1 (IPAM blocks) is not served by this cluster (is Calico installed?); found %s", ErrNotInstalled, d.Found())
		}
	default:
		return d, fmt.Errorf("--calico-api %q: want one of auto, crd, v3", choice)
	}
	if d.Flavour == FlavourV3 && !d.V1 {
		return d, fmt.Errorf("%w: crd.projectcalico.org/v1 IPAM blocks are not served (they hold the addresses in every flavour); found %s", ErrNotInstalled, d.Found())
	}
	return d, nil
}

// servesResources reports whether discovery lists every resource of gv. A group
// that is not served is false, not an error; a failing aggregated server is an
// error (the caller decides what it means).
func servesResources(disc discovery.DiscoveryInterface, gv string, resources ...string) (bool, error) {
	list, err := disc.ServerResourcesForGroupVersion(gv)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("discovery of %s: %w", gv, err)
	}
	have := map[string]bool{}
	for _, r := range list.APIResources {
		have[r.Name] = true
	}
	for _, r := range resources {
		if !have[r] {
			return false, nil
		}
	}
	return true, nil
}

// apiServiceUnavailable returns the Available condition's message when it is not True.
func apiServiceUnavailable(obj map[string]any) string {
	conds, _, _ := unstructured.NestedSlice(obj, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Available" {
			if m["status"] == "True" {
				return ""
			}
			msg, _ := m["message"].(string)
			reason, _ := m["reason"].(string)
			return strings.TrimSpace(reason + " " + msg)
		}
	}
	return "no Available condition"
}
