package podmove

import (
	"fmt"
	"strconv"
	"testing"
)

// BenchmarkRound measures one decision round (observe, settle, pick) over the
// benchmark's shape: 100 Deployments × 20 pods in 4 namespaces, a PDB each.
func BenchmarkRound(b *testing.B) {
	f, s := &fakeStore{}, testSetup()
	for d := 0; d < 100; d++ {
		ns := fmt.Sprintf("app-%d", d%4)
		name := fmt.Sprintf("d%03d", d)
		o := f.deployment(ns, name, 20)
		f.pdb(ns, name, 5, 20, 15, 20)
		for i := 0; i < 20; i++ {
			p := mkPod(ns, fmt.Sprintf("%s-%02d", name, i), fmt.Sprintf("192.168.%d.%d", d, i+1), o, onNode("n"+strconv.Itoa((d+i)%20)))
			p.ResourceVersion = "1"
			f.pods = append(f.pods, p)
		}
	}
	mem, led := newMemory(), newLedger()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := observe(f, s, mem, t0)
		settle(led, w, mem, noEvents{}, ActEvict)
		pick(w, defaultLimits(), load{})
	}
}
