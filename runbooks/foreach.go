package runbooks

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"strings"

	"github.com/runbookdev/runbook/internal/value"
)

// A step with forEach runs once per item of a list, like Argo's withItems or
// Ansible's loop. Expand turns it into one plain step per item before anything
// plans or runs, so each instance is journalled, resumed, skipped and rolled back
// like any step, under its own id:
//
//	<id>-<key>   key: the item itself when it is a string or an int, the value of its
//	             "name" (else "id") when it is a map; else the item's index
//
// lower-cased, other characters turned into '-'. The items must be known before
// the run (they name the steps): a literal list, or an expression over params and
// env. Expressions name the group, never an instance: steps.<id>.status is done
// once every instance is, and an instance's own until/assert/hooks read the
// instance as steps.<id>.

// MaxForEachItems bounds one forEach: every instance is a step of the journal (a
// ConfigMap of at most 1 MiB) and of the plan a reviewer reads.
const MaxForEachItems = 256

// Expand returns the runbook with every forEach step replaced by its instances, the
// items read from the bound params and env. A runbook without forEach is returned
// as is. Each error names the forEach field.
func (rb *Runbook) Expand(p *Params, env string) (*Runbook, error) {
	hasForEach := false
	for _, st := range rb.Steps {
		hasForEach = hasForEach || st.ForEach != nil
	}
	if !hasForEach {
		return rb, nil
	}
	benv, err := rb.Env(Bindings{Params: p.Values, Env: env})
	if err != nil {
		return nil, err
	}
	out := *rb
	out.Steps = nil
	out.groups = map[string][]string{}
	ids := map[string]string{} // id -> what claimed it, for the duplicate error
	for _, st := range rb.Steps {
		ids[st.ID] = fmt.Sprintf("steps[%d]", st.Index)
	}
	var errs Errors
	for _, st := range rb.Steps {
		if st.ForEach == nil {
			out.Steps = append(out.Steps, st)
			continue
		}
		items, err := st.ForEach.items(benv)
		if err != nil {
			errs = append(errs, &Error{Pos: st.ForEach.Pos, Path: st.ForEach.Path, Msg: err.Error()})
			continue
		}
		if len(items) > MaxForEachItems {
			errs = append(errs, &Error{Pos: st.ForEach.Pos, Path: st.ForEach.Path,
				Msg: fmt.Sprintf("forEach gives %d items, at most %d: split the runbook, or run it once per part of the list", len(items), MaxForEachItems)})
			continue
		}
		out.groups[st.ID] = []string{}
		for i, item := range items {
			inst := *st
			inst.ID = st.ID + "-" + itemKey(item, i)
			inst.Group, inst.Item = st.ID, item
			what := fmt.Sprintf("%s item %d (%s)", st.ForEach.Path, i, value.Format(item))
			switch {
			case len(inst.ID) > 63 || !stepIDRe.MatchString(inst.ID):
				errs = append(errs, &Error{Pos: st.ForEach.Pos, Path: st.ForEach.Path,
					Msg: fmt.Sprintf("item %d (%s) gives step id %q: at most 63 characters of lower-case letters, digits and '-'; shorten the step id or the item's name", i, value.Format(item), inst.ID)})
				continue
			case ids[inst.ID] != "":
				errs = append(errs, &Error{Pos: st.ForEach.Pos, Path: st.ForEach.Path,
					Msg: fmt.Sprintf("%s gives step id %q, already the id of %s: give each item a distinct name", what, inst.ID, ids[inst.ID])})
				continue
			}
			ids[inst.ID] = what
			out.groups[st.ID] = append(out.groups[st.ID], inst.ID)
			out.Steps = append(out.Steps, &inst)
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return &out, nil
}

// Instances returns the ids of the instances of the forEach step id (none for a list
// of no items), or nil and false when id is not a forEach step of the expanded
// runbook.
func (rb *Runbook) Instances(id string) ([]string, bool) {
	ids, ok := rb.groups[id]
	return ids, ok
}

// items evaluates the forEach.
func (f *ForEach) items(env map[string]any) ([]any, error) {
	if f.Expr == nil {
		return f.Literal, nil
	}
	v, err := run(context.Background(), f.Expr, env)
	if err != nil {
		return nil, fmt.Errorf("%s fails: %s", f.Expr.Source, exprError(err))
	}
	switch l := v.(type) {
	case []any:
		return l, nil
	case []string:
		out := make([]any, len(l))
		for i, s := range l {
			out[i] = s
		}
		return out, nil
	case nil:
		return nil, nil
	}
	return nil, fmt.Errorf("%s is %s, not a list", f.Expr.Source, value.Format(v))
}

var nonIDChars = regexp.MustCompile(`[^a-z0-9]+`)

// itemKey is the part of an instance's id its item gives.
func itemKey(item any, index int) string {
	var s string
	switch v := item.(type) {
	case string:
		s = v
	case int:
		s = strconv.Itoa(v)
	case map[string]any:
		for _, k := range []string{"name", "id"} {
			if n, ok := v[k].(string); ok && n != "" {
				s = n
				break
			}
		}
	}
	s = strings.Trim(nonIDChars.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if s == "" {
		return strconv.Itoa(index)
	}
	return s
}

// groupView is what expressions see as steps.<group>: done once every instance is,
// failed when one failed, changed when any changed. A forEach over no items is
// skipped.
func groupView(ids []string, steps map[string]StepResult) StepResult {
	counts := map[string]int{}
	changed := false
	for _, id := range ids {
		r, ok := steps[id]
		if !ok || r.Status == "" {
			r.Status = "pending"
		}
		counts[r.Status]++
		changed = changed || r.Changed
	}
	status := "skipped"
	switch n := len(ids); {
	case n == 0:
	case counts["failed"] > 0:
		status = "failed"
	case counts["rolledBack"] > 0:
		status = "rolledBack"
	case counts["running"] > 0:
		status = "running"
	case counts["pending"] == n:
		status = "pending"
	case counts["pending"] > 0:
		status = "running"
	case counts["skipped"] == n:
		status = "skipped"
	default:
		status = "done"
	}
	return StepResult{Status: status, Changed: changed}
}

// groupBindings presents each forEach group as one step to the expressions of st.
func (rb *Runbook) groupBindings(b Bindings) Bindings {
	if len(rb.groups) == 0 {
		return b
	}
	steps := maps.Clone(b.Steps)
	if steps == nil {
		steps = map[string]StepResult{}
	}
	for g, ids := range rb.groups {
		if b.Step != nil && b.Step.Group == g {
			if r, ok := b.Steps[b.Step.ID]; ok {
				steps[g] = r
			} else {
				delete(steps, g)
			}
			continue
		}
		steps[g] = groupView(ids, b.Steps)
	}
	b.Steps = steps
	return b
}
