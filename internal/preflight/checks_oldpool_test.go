package preflight

import (
	"strings"
	"testing"

	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/internal/calico"
)

// TestOldPoolMissing: a misspelt old pool with the new pool not created yet is
// refused (the run would create the new pool and move nothing); once the new pool
// exists, an absent old pool is a finished migration applied again.
func TestOldPoolMissing(t *testing.T) {
	for _, tc := range []struct {
		name       string
		setup      func(w *world)
		want, text string
		hint       string // the did-you-mean the finding must carry
	}{
		{name: "old pool exists", setup: func(*world) {}},
		{name: "old pool misspelt", setup: func(w *world) {
			for _, s := range w.steps[1:] {
				for k, v := range s.With {
					if v == "old" {
						s.With[k] = "odl"
					}
				}
			}
		}, want: "block old-pool", text: `pool odl does not exist, and new pool new is not created yet`, hint: `did you mean "old"?`},
		{name: "finished migration applied again", setup: func(w *world) {
			w.reader.pools = []calico.Pool{pool("new", "10.0.1.0/24", nil)}
			for _, s := range w.steps[1:] {
				for k, v := range s.With {
					if v == "old" {
						s.With[k] = "gone"
					}
				}
			}
		}},
		{name: "temporary pool the runbook creates, then leaves", setup: func(w *world) {
			w.steps = append(w.steps,
				Step{ID: "add-temp", Pools: roles("name", decl.PoolCreates), With: map[string]any{"name": "temp", "cidr": "10.0.2.0/24"}},
				Step{ID: "disable-temp", Pools: roles("name", decl.PoolDisables), With: map[string]any{"name": "temp"}})
		}},
		{name: "temporary pool left before the step that creates it", setup: func(w *world) {
			w.steps = append(w.steps,
				Step{ID: "disable-temp", Pools: roles("name", decl.PoolDisables), With: map[string]any{"name": "temp"}},
				Step{ID: "add-temp", Pools: roles("name", decl.PoolCreates), With: map[string]any{"name": "temp", "cidr": "10.0.2.0/24"}})
		}, want: "block old-pool", text: "pool temp does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			tc.setup(w)
			var got []Finding
			for _, f := range w.run(t) {
				if f.ID == "old-pool" {
					got = append(got, f)
				}
			}
			if s := summary(got); s != tc.want {
				t.Fatalf("findings %q, want %q:\n%s", s, tc.want, dump(got))
			}
			if tc.text != "" && !strings.Contains(dump(got), tc.text) {
				t.Errorf("findings lack %q:\n%s", tc.text, dump(got))
			}
			if !strings.Contains(dump(got), tc.hint) {
				t.Errorf("no did-you-mean:\n%s", dump(got))
			}
		})
	}
}
