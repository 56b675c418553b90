package reliability

import (
	"testing"
	"time"
)

// TestBatchedPlan checks the kill plan without a cluster: every boundary once and
// in the order the run reaches them, random instants inside move-pods (at most
// 3/5 of the target) and verify (until the target landed inside, or 3× the target
// attempts), none for a step the journal already has done (random or boundary),
// the same plan for the same seed.
func TestBatchedPlan(t *testing.T) {
	ref := reference{durations: map[string]time.Duration{"move-pods": 10 * time.Second, "verify": 3 * time.Second}}
	drive := func(seed uint64, inside int, moveDoneAfter int) []killPoint {
		plan := batchedPlan(newRand(seed), ref, inside)
		st := &trialState{done: map[string]bool{}, lastStep: map[string]time.Duration{}}
		var out []killPoint
		moves := 0
		for {
			k, ok := plan(st)
			if !ok {
				return out
			}
			out = append(out, k)
			if k.event == "" && k.step == "move-pods" {
				moves++
				if moves == moveDoneAfter {
					st.done["move-pods"] = true
				}
			}
			if k.event == "" && k.step == "verify" {
				st.inside++ // every verify kill lands inside here
			}
		}
	}
	count := func(ks []killPoint, step string) (n int, max time.Duration) {
		for _, k := range ks {
			if k.event == "" && k.step == step {
				n++
				if k.delay > max {
					max = k.delay
				}
			}
		}
		return n, max
	}
	for _, tc := range []struct {
		name             string
		inside, moveDone int
		wantMove         int
	}{
		{"every move kill", 20, 0, 12},
		{"move done early", 20, 3, 3},
		{"small target", 5, 0, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ks := drive(42, tc.inside, tc.moveDone)
			var bounds []string
			for _, k := range ks {
				if k.event != "" {
					bounds = append(bounds, k.String())
				}
			}
			var want []string
			for _, b := range boundaries() {
				if tc.moveDone > 0 && b.String() == "step.done move-pods" {
					continue // the journal has it done: its boundary is gone
				}
				want = append(want, b.String())
			}
			if len(bounds) != len(want) {
				t.Fatalf("boundaries %v, want %v", bounds, want)
			}
			for i := range want {
				if bounds[i] != want[i] {
					t.Fatalf("boundary %d: %s, want %s (all: %v)", i, bounds[i], want[i], bounds)
				}
			}
			moves, maxMove := count(ks, "move-pods")
			verifies, maxVerify := count(ks, "verify")
			if moves != tc.wantMove {
				t.Errorf("%d kills inside move-pods, want %d", moves, tc.wantMove)
			}
			// One kill per planned move kill lands inside here, so verify takes the rest.
			if moves+verifies < tc.inside {
				t.Errorf("%d + %d random kills, want at least %d", moves, verifies, tc.inside)
			}
			if limit := 2 * ref.durations["move-pods"] / time.Duration(tc.inside*3/5+1); maxMove > limit {
				t.Errorf("a move kill %v after the step start, beyond %v", maxMove, limit)
			}
			if maxVerify > ref.durations["verify"] {
				t.Errorf("a verify kill %v after the step start, beyond the whole step", maxVerify)
			}
			// The random kills sit between their step's start and end boundaries.
			pos := map[string]int{}
			for i, k := range ks {
				pos[k.String()] = i
			}
			for i, k := range ks {
				end, ok := pos["step.done "+k.step]
				if !ok {
					end = len(ks)
				}
				if k.event == "" && (i < pos["step.start "+k.step] || i > end) {
					t.Errorf("kill %d (%v) outside its step's boundaries", i, k)
				}
			}
		})
	}
	a, b := drive(7, 20, 0), drive(7, 20, 0)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("seed 7 gave two plans: %v vs %v", a[i], b[i])
		}
	}
}
