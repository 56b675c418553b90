package actions

import (
	"net/netip"
	"strings"
	"testing"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"

	"github.com/runbookdev/runbook/internal/calico"
)

func TestDisabledRecord(t *testing.T) {
	for _, tc := range []struct{ run, restore string }{{"r1", ""}, {"r2", "zone == 'a'"}, {"r3", "all()"}} {
		run, restore, used := parseDisabledRecord(disabledRecord(tc.run, tc.restore))
		if run != tc.run || restore != tc.restore || used != (tc.restore != "") {
			t.Errorf("%+v: got %q %q %t", tc, run, restore, used)
		}
	}
}

func TestEntryListEdits(t *testing.T) {
	in := &calico.Installation{Pools: []map[string]any{{"name": "a"}, {"name": "b"}, {"name": "c"}}}
	added := withEntry(in, -1, map[string]any{"name": "d"})
	replaced := withEntry(in, 1, map[string]any{"name": "B"})
	removed := withoutEntry(in, 1)
	names := func(l []map[string]any) string {
		var s []string
		for _, e := range l {
			s = append(s, e["name"].(string))
		}
		return strings.Join(s, ",")
	}
	for _, tc := range []struct{ got, want string }{
		{names(added), "a,b,c,d"}, {names(replaced), "a,B,c"}, {names(removed), "a,c"}, {names(in.Pools), "a,b,c"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %s, want %s (the Installation read must never change)", tc.got, tc.want)
		}
	}
}

func TestDriftProblem(t *testing.T) {
	spec := calico.WithDefaults(v3.IPPoolSpec{CIDR: "192.168.0.0/16", IPIPMode: v3.IPIPModeAlways, NATOutgoing: true})
	entry, err := calico.EntryFor("old", spec, true)
	if err != nil {
		t.Fatal(err)
	}
	in := &calico.Installation{Pools: []map[string]any{entry}}
	pool := func(s v3.IPPoolSpec, labels map[string]string) *calico.Pool {
		return &calico.Pool{Name: "old", Spec: s, CIDR: netip.MustParsePrefix("192.168.0.0/16"), Labels: labels}
	}
	edited := spec
	edited.IPIPMode = v3.IPIPModeNever
	for _, tc := range []struct {
		name string
		pool *calico.Pool
		view opView
		want string
	}{
		{"matches its entry", pool(spec, nil), opView{inst: in, idx: 0}, ""},
		{"edited behind the operator's back", pool(edited, nil), opView{inst: in, idx: 0}, "ipipMode: Installation Always, pool Never"},
		{"labelled but not listed", pool(spec, map[string]string{calico.LabelManagedBy: calico.ManagedByOperator}), opView{inst: in, idx: -1}, "the operator will delete it"},
		{"no operator", pool(edited, nil), opView{idx: -1}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := driftProblem(tc.pool, tc.view)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("driftProblem = %q, want %q", got, tc.want)
			}
		})
	}
}
