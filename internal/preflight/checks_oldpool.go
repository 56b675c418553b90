package preflight

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/internal/suggest"
)

func init() {
	Register(Check{ID: "old-pool", Roles: []decl.PoolRole{decl.PoolCreates}, Run: onMigration(checkOldPool)})
}

// checkOldPool: the pool actions treat an absent old pool as already handled, so
// that a finished migration applied again changes nothing. But when the new pool
// is not created yet either, nothing was migrated: the old pool's name is wrong (a
// typo, another cluster's values), and the run would create the new pool, move
// nothing and leave every pod where it is, reporting success.
func checkOldPool(ctx context.Context, in *Input, m *Migration) ([]Finding, error) {
	var planned []string
	for _, n := range m.New {
		if n.Planned {
			planned = append(planned, n.Name)
		}
	}
	if len(planned) == 0 {
		return nil, nil // the new pool exists: possibly a finished migration run again
	}
	exists := map[string]bool{}
	var names []string
	for _, p := range m.Pools {
		exists[p.Name] = true
		names = append(names, p.Name)
	}
	sort.Strings(names)
	var out []Finding
	seen := map[string]bool{}
	for _, s := range in.Steps {
		for _, pp := range s.Pools {
			name := s.Named(pp)
			if pp.Role == decl.PoolCreates && name != "" {
				// Left later by the runbook itself (a temporary pool): it exists by then.
				exists[name] = true
			}
			if !pp.Role.Leaves() || name == "" || exists[name] || seen[name] {
				continue
			}
			seen[name] = true
			out = append(out, Finding{Severity: Block, Step: s.ID, Subject: "IPPool " + name,
				Message: fmt.Sprintf("pool %s does not exist, and new pool %s is not created yet: this is not a finished migration applied again, the old pool's name is wrong (pools: %s)",
					name, strings.Join(planned, ", "), strings.Join(names, ", ")),
				Fix: "name the pool the pods are in" + suggest.Hint(name, names)})
		}
	}
	return out, nil
}
