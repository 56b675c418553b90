package scenarios

import (
	"fmt"

	"sigs.k8s.io/yaml"
)

// Defaults applied by Parse where a scenario leaves a field out.
const (
	DefaultServiceSubnet = "10.96.0.0/12" // kubeadm's default serviceSubnet
	DefaultImage         = "registry.k8s.io/pause:3.10"
	DefaultBlockSizeV4   = 26
	DefaultBlockSizeV6   = 122
	DefaultNodeSelector  = "all()"
	DefaultEncapsulation = "Never"
)

// Parse decodes a scenario strictly, applies defaults and validates it. All
// validation problems are reported together.
func Parse(data []byte) (*Scenario, error) {
	var s Scenario
	if err := yaml.UnmarshalStrict(data, &s); err != nil {
		return nil, fmt.Errorf("decoding scenario: %w", err)
	}
	s.setDefaults()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

func (s *Scenario) setDefaults() {
	if s.Cluster.ServiceSubnet == "" {
		s.Cluster.ServiceSubnet = DefaultServiceSubnet
	}
	for i := range s.Calico.IPPools {
		p := &s.Calico.IPPools[i]
		if p.BlockSize == 0 {
			p.BlockSize = DefaultBlockSizeV4
			if isIPv6CIDR(p.CIDR) {
				p.BlockSize = DefaultBlockSizeV6
			}
		}
		if p.NodeSelector == "" {
			p.NodeSelector = DefaultNodeSelector
		}
		if p.IPIPMode == "" {
			p.IPIPMode = DefaultEncapsulation
		}
		if p.VXLANMode == "" {
			p.VXLANMode = DefaultEncapsulation
		}
	}
	for i := range s.NodeGroups {
		if s.NodeGroups[i].Count == 0 {
			s.NodeGroups[i].Count = 1
		}
	}
	s.Workloads = expandCopies(s.Workloads)
	for i := range s.Workloads {
		w := &s.Workloads[i]
		if w.Kind == "" {
			w.Kind = KindDeployment
		}
		if w.Replicas == 0 && (w.Kind == KindPod || w.Kind == KindJob) {
			w.Replicas = 1
		}
		if w.Webhook != nil && w.Webhook.FailurePolicy == "" {
			w.Webhook.FailurePolicy = "Fail"
		}
		if w.Image == "" {
			w.Image = DefaultImage
		}
		if len(w.Labels) == 0 {
			w.Labels = map[string]string{"app": w.Name}
		}
	}
}

func nodeName(prefix string, i int) string { return fmt.Sprintf("%s-%d", prefix, i) }

// expandCopies replaces each workload with count > 1 by its copies. Copies need
// their own labels, so a workload with count and explicit labels is left as is
// for Validate to reject.
func expandCopies(in []Workload) []Workload {
	out := make([]Workload, 0, len(in))
	for _, w := range in {
		if w.Count <= 1 || len(w.Labels) > 0 {
			out = append(out, w)
			continue
		}
		for i := 1; i <= w.Count; i++ {
			c := w
			c.Count = 1
			c.Name = fmt.Sprintf("%s-%d", w.Name, i)
			c.PDBs = make([]PDB, len(w.PDBs))
			for j, p := range w.PDBs {
				p.Name = fmt.Sprintf("%s-%d", p.Name, i)
				c.PDBs[j] = p
			}
			out = append(out, c)
		}
	}
	return out
}
