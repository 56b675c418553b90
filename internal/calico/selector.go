package calico

import (
	"fmt"
	"sync"

	"github.com/projectcalico/calico/libcalico-go/lib/selector"
)

// parsed caches parsed Calico selectors: pools are few, but their selectors are
// evaluated for every node on every guard evaluation.
var parsed sync.Map // string -> selector.Selector

// SelectsNode evaluates a pool's nodeSelector against a node's labels with Calico's
// own selector implementation (ipam.SelectsNode): an empty selector selects every
// node.
func SelectsNode(nodeSelector string, labels map[string]string) (bool, error) {
	if nodeSelector == "" {
		return true, nil
	}
	sel, err := parseSelector(nodeSelector)
	if err != nil {
		return false, err
	}
	return sel.Evaluate(labels), nil
}

func parseSelector(s string) (selector.Selector, error) {
	if v, ok := parsed.Load(s); ok {
		return v.(selector.Selector), nil
	}
	sel, err := selector.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("invalid Calico selector %q: %w", s, err)
	}
	parsed.Store(s, sel)
	return sel, nil
}
