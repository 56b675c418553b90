package actions

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/util/retry"

	"github.com/runbookdev/runbook/internal/calico"
	"github.com/runbookdev/runbook/internal/poolsahead"
)

// The operator path of the pool actions: on a tigera-operator install the pools
// listed in Installation "default" are the operator's, so the actions edit the
// list (one full-list update under a resourceVersion precondition) and wait for
// the operator's pools to follow, instead of writing the pools.

// operatorFollowTimeout bounds the wait for the operator to apply an
// Installation change to its pools when the step sets no shorter timeout (the
// operator reacts to the Installation watch at once).
const operatorFollowTimeout = 5 * time.Minute

// opView is what an action knows of the operator install for one pool.
type opView struct {
	inst *calico.Installation // nil: no Installation managing pools
	idx  int                  // index of the pool's entry, -1 when none
}

func (v opView) entry() map[string]any {
	if v.inst == nil || v.idx < 0 {
		return nil
	}
	return v.inst.Pools[v.idx]
}

// installation reads Installation "default" when the operator API is served and
// it manages pools; nil otherwise (then pools are written directly).
func (e *poolEnv) installation(ctx context.Context) (*calico.Installation, error) {
	if e.op == nil {
		return nil, nil
	}
	in, err := e.op.Installation(ctx)
	if err != nil || in == nil || !in.Managed {
		return nil, err
	}
	return in, nil
}

// ahead returns what the earlier steps of a plan do to pool name, when cal
// reads through the plan's model (poolsahead.Model.Client); nil at apply.
func ahead(cal calico.Client, name string) *poolsahead.Pool {
	if m, ok := cal.(interface {
		Touched(string) (*poolsahead.Pool, bool)
	}); ok {
		p, _ := m.Touched(name)
		return p
	}
	return nil
}

// operatorView finds pool name's entry; p (may be nil) is the pool as read.
// fut (plan only) is what the earlier steps do to it: a pool an earlier step
// creates on an install whose Installation manages pools is the operator's,
// and the entry of a pool an earlier step deletes is gone by then.
func (e *poolEnv) operatorView(ctx context.Context, name string, p *calico.Pool, fut *poolsahead.Pool) (opView, error) {
	in, err := e.installation(ctx)
	if err != nil || in == nil {
		return opView{idx: -1}, err
	}
	v := opView{inst: in, idx: -1}
	switch {
	case fut.Deleted():
		return v, nil
	case fut.Created():
		if fut.DeletedBy == "" {
			v.idx = in.Entry(name, fut.CIDR)
		}
		return v, nil
	}
	if p != nil {
		if !calico.OperatorOwns(in, p) {
			return opView{idx: -1}, nil // an unmanaged pool beside the operator's: written directly
		}
		v.idx = in.Entry(p.Name, p.CIDR)
		return v, nil
	}
	v.idx = in.Entry(name, netip.Prefix{})
	return v, nil
}

// operatorProblems are the refusals of any Installation edit: the operator is
// not applying changes now, or another tool owns the list and would revert us.
func (e *poolEnv) operatorProblems(ctx context.Context, in *calico.Installation) ([]string, error) {
	var out []string
	msg, err := e.op.NotReady(ctx)
	if err != nil {
		return nil, err
	}
	if msg != "" {
		out = append(out, msg)
	}
	if owners := in.ForeignOwners(); len(owners) > 0 {
		out = append(out, fmt.Sprintf("Installation default spec.calicoNetwork.ipPools is also owned by %s, which would revert runbook's edit: change the pools in that tool's source instead, or remove its ownership of the field first",
			strings.Join(owners, ", ")))
	}
	return out, nil
}

// driftProblem reports an operator-managed pool that differs from its entry:
// edited behind the operator's back (it will revert it at its next pass) or an
// operator that is not applying the Installation. Either way changing the entry
// now would fight someone: a human decides.
func driftProblem(p *calico.Pool, v opView) string {
	e := v.entry()
	if p == nil || e == nil {
		if p != nil && v.inst != nil && e == nil {
			return fmt.Sprintf("pool %s is labelled as managed by the tigera-operator but has no entry in Installation default spec.calicoNetwork.ipPools: the operator will delete it", p.Name)
		}
		return ""
	}
	if d := calico.EntryDrift(e, p); len(d) > 0 {
		return fmt.Sprintf("operator-managed pool %s differs from its entry in Installation default (%s): it was edited behind the operator's back, or the operator is not applying the Installation; make the Installation say what you want, or let the operator revert the pool, then run again",
			p.Name, strings.Join(d, "; "))
	}
	return ""
}

// editInstallation reads the Installation, lets mutate compute the new list and
// annotations, and writes them in one update conditional on the resourceVersion
// read; on a conflict (the operator writes defaults and status, others may edit)
// it reads and decides again. mutate returning a nil list means nothing to do.
func (e *poolEnv) editInstallation(ctx context.Context, mutate func(in *calico.Installation) ([]map[string]any, map[string]*string, error)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		in, err := e.installation(ctx)
		if err != nil {
			return err
		}
		if in == nil {
			return errors.New("the Installation (default) no longer lists any IP pool")
		}
		problems, err := e.operatorProblems(ctx, in)
		if err != nil {
			return err
		}
		if len(problems) > 0 {
			return refusal(problems)
		}
		pools, ann, err := mutate(in)
		if err != nil || pools == nil {
			return err
		}
		// A conflict keeps the API error in its chain: RetryOnConflict reads again.
		return e.op.Update(ctx, in, pools, ann)
	})
}

// awaitOperator waits (on the pool watch) until cond holds for the pools, bounded
// by ctx (the step's timeout) and operatorFollowTimeout. When it does not, it
// says why as well as it can tell: the Installation no longer holding the change
// (someone reverted it), or what the operator reports.
func (e *poolEnv) awaitOperator(ctx context.Context, cal calico.Client, what string, cond func(pools []calico.Pool) bool, stillWanted func(*calico.Installation) bool) (time.Duration, error) {
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, operatorFollowTimeout)
	defer cancel()
	err := cal.Await(wctx, func(r calico.Reader) (bool, error) {
		pools, _ := r.Pools(wctx)
		return cond(pools), nil
	})
	if err == nil {
		return time.Since(start).Round(10 * time.Millisecond), nil
	}
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer rcancel()
	why := ""
	if in, ierr := e.installation(rctx); ierr == nil && (in == nil || !stillWanted(in)) {
		owners := "unknown"
		if in != nil && len(in.Owners) > 0 {
			var names []string
			for _, o := range in.Owners {
				names = append(names, o.Manager)
			}
			owners = strings.Join(names, ", ")
		}
		why = "; Installation default no longer holds runbook's change: it was reverted (managers of the pool list: " + owners + ")"
	} else if msg, nerr := e.op.NotReady(rctx); nerr == nil && msg != "" {
		why = "; " + msg
	}
	return time.Since(start), fmt.Errorf("the tigera-operator did not %s within %s%s: %w", what, time.Since(start).Round(time.Second), why, err)
}

// poolFollows is the wait condition "pool name exists and matches entry".
func poolFollows(name string, entry map[string]any) func([]calico.Pool) bool {
	return func(pools []calico.Pool) bool {
		p := calico.FindPool(pools, name)
		return p != nil && !p.Deleting && len(calico.EntryDrift(entry, p)) == 0
	}
}

// poolGone is the wait condition "pool name does not exist".
func poolGone(name string) func([]calico.Pool) bool {
	return func(pools []calico.Pool) bool { return calico.FindPool(pools, name) == nil }
}

// entryIs reports whether the Installation still holds entry for name.
func entryIs(name string, entry map[string]any) func(*calico.Installation) bool {
	return func(in *calico.Installation) bool {
		i := in.Entry(name, netip.Prefix{})
		return i >= 0 && reflect.DeepEqual(calico.EntrySpec(in.Pools[i]), calico.EntrySpec(entry))
	}
}

// entryAbsent reports whether the Installation no longer lists name.
func entryAbsent(name string) func(*calico.Installation) bool {
	return func(in *calico.Installation) bool { return in.Entry(name, netip.Prefix{}) < 0 }
}

// withEntry returns the list with entry i replaced (or appended when i < 0),
// every other entry untouched.
func withEntry(in *calico.Installation, i int, e map[string]any) []map[string]any {
	out := slices.Clone(in.Pools)
	if i < 0 {
		return append(out, e)
	}
	out[i] = e
	return out
}

// withoutEntry returns the list without entry i.
func withoutEntry(in *calico.Installation, i int) []map[string]any {
	return slices.Delete(slices.Clone(in.Pools), i, i+1)
}

// disabledRecord is the value of the disabled-by map: the run id, and the
// nodeSelector to restore when the operator had no disableNewAllocations.
func disabledRecord(runID, restore string) string {
	if restore == "" {
		return runID
	}
	return runID + ";nodeSelector=" + restore
}

func parseDisabledRecord(v string) (runID, restore string, usedSelector bool) {
	runID, restore, usedSelector = strings.Cut(v, ";nodeSelector=")
	return
}

// refusal turns problems into an ErrRefused error (the step name is added by the caller).
func refusal(problems []string) error {
	return fmt.Errorf("%w: %s", ErrRefused, strings.Join(problems, "; "))
}

// supportsDNA says whether the operator's Installation has
// ipPools[].disableNewAllocations (else pools are disabled by nodeSelector).
func (e *poolEnv) supportsDNA(ctx context.Context, in *calico.Installation) (bool, error) {
	e.dnaMu.Lock()
	defer e.dnaMu.Unlock()
	if e.dnaKnown {
		return e.dna, nil
	}
	ok, err := e.op.SupportsDisableNewAllocations(ctx, in)
	if err != nil {
		return false, err
	}
	e.dna, e.dnaKnown = ok, true
	return ok, nil
}

// setEntryDisabled stops (disable true) or restores new allocations from an
// operator-managed pool through its Installation entry, recording which run did
// it in the Installation, and waits for the operator's pool to follow. Enabling
// only undoes what runID did: the caller checks that.
func (e *poolEnv) setEntryDisabled(ctx context.Context, cal calico.Client, name string, p *calico.Pool, disable bool, runID string) error {
	var cidr netip.Prefix
	if p != nil {
		cidr = p.CIDR
	}
	var entry map[string]any
	err := e.editInstallation(ctx, func(in *calico.Installation) ([]map[string]any, map[string]*string, error) {
		i := in.Entry(name, cidr)
		if i < 0 {
			return nil, nil, fmt.Errorf("no entry for pool %s in Installation default", name)
		}
		entry = cloneMap(in.Pools[i])
		if calico.EntryDisabled(entry) == disable {
			return nil, nil, nil
		}
		var record *string
		if disable {
			dna, err := e.supportsDNA(ctx, in)
			if err != nil {
				return nil, nil, err
			}
			restore := calico.DisableEntry(entry, dna)
			record = calico.SetRunMap(in, calico.AnnotationPoolsDisabledByRun, name, disabledRecord(runID, restore))
		} else {
			_, restore, usedSelector := parseDisabledRecord(in.RunMap(calico.AnnotationPoolsDisabledByRun)[name])
			if _, ok := entry["disableNewAllocations"]; ok {
				entry["disableNewAllocations"] = false
			}
			if usedSelector && calico.SelectsNoNode(entryString(entry, "nodeSelector")) {
				entry["nodeSelector"] = restore
			}
			record = calico.SetRunMap(in, calico.AnnotationPoolsDisabledByRun, name, "")
		}
		return withEntry(in, i, entry), map[string]*string{calico.AnnotationPoolsDisabledByRun: record}, nil
	})
	if err != nil {
		return err
	}
	what := "enable"
	if disable {
		what = "disable"
	}
	_, err = e.awaitOperator(ctx, cal, what+" pool "+name+" as its Installation entry says", poolFollows(name, entry), entryIs(name, entry))
	return err
}

// removeEntry removes pool name from the Installation (and runbook's records
// of it) and waits for the operator to delete the pool.
func (e *poolEnv) removeEntry(ctx context.Context, cal calico.Client, name string) error {
	err := e.editInstallation(ctx, func(in *calico.Installation) ([]map[string]any, map[string]*string, error) {
		i := in.Entry(name, netip.Prefix{})
		if i < 0 {
			return nil, nil, nil
		}
		return withoutEntry(in, i), map[string]*string{
			calico.AnnotationPoolsCreatedByRun:  calico.SetRunMap(in, calico.AnnotationPoolsCreatedByRun, name, ""),
			calico.AnnotationPoolsDisabledByRun: calico.SetRunMap(in, calico.AnnotationPoolsDisabledByRun, name, ""),
		}, nil
	})
	if err != nil {
		return err
	}
	_, err = e.awaitOperator(ctx, cal, "delete pool "+name+" after its entry left Installation default", poolGone(name), entryAbsent(name))
	return err
}

func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func entryString(e map[string]any, k string) string {
	s, _ := e[k].(string)
	return s
}
