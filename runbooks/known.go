package runbooks

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/expr-lang/expr/file"

	"github.com/runbookdev/runbook/internal/value"
)

// A with: value is checked against its declaration (type, enum, value.Check) as
// soon as it is known, not only when its step runs: a literal when it is parsed; a
// template that reads only params with defaults at validate (Parse); one that reads
// params and env once they are bound (CheckParams, before plan or apply touch the
// cluster). A template that reads a step's outputs, run, now() or a cluster
// function is known only when its step runs, and checked then (With.Render); so
// is one with closures or ranges, whose cost the file's size does not bound.
// A step whose when: is known to be false is skipped, as the run would skip it.

// CheckParams renders every with: value known from the bound params and the
// environment and checks it as its step would, so a value from -f or --set that
// the step would refuse (a pool name Calico does not accept, concurrency 0) is
// refused before anything reads or writes the cluster. Each error names the
// with: field in the runbook and where the params it read came from.
// envKnown says whether env is the name the run will see: plan and apply know it
// ("" without --env); validate without --env does not, and leaves templates that
// read env to them.
func (rb *Runbook) CheckParams(p *Params, env string, envKnown bool) error {
	k := &knownValues{params: p.Values, source: p.Source, env: env, envKnown: envKnown, all: true}
	return rb.checkKnown(k).Err()
}

// checkDefaults is Parse's part: templates that read only params with defaults.
func (rb *Runbook) checkDefaults() Errors {
	k := &knownValues{params: map[string]any{}, source: map[string]string{}}
	for _, p := range rb.Params {
		if p.Default != nil {
			k.params[p.Name], k.source[p.Name] = p.Default, "default"
		}
	}
	return rb.checkKnown(k)
}

// knownValues are the values an expression may be evaluated with ahead of its step.
type knownValues struct {
	params   map[string]any
	source   map[string]string // "default", a values file, "--set"
	env      string
	envKnown bool
	// all: every declared param counts as known; an unset one has its zero value,
	// as in the run. Otherwise only those in params.
	all bool
	// itemKnown: the step checked is an instance of a forEach step, so its item is
	// known (a forEach step not expanded yet has none).
	itemKnown bool
	item      any
}

func (k *knownValues) knows(d exprDeps, rb *Runbook) bool {
	if d.late || d.loops || len(d.steps) > 0 || (d.env && !k.envKnown) || (d.item && !k.itemKnown) {
		return false
	}
	names := d.params
	if d.allParams {
		names = rb.paramNames()
	}
	for _, n := range names {
		if _, ok := k.params[n]; !ok && !k.all {
			return false
		}
	}
	return true
}

// from says where the values an expression read came from, for its error.
func (k *knownValues) from(d exprDeps, rb *Runbook) string {
	var out []string
	names := d.params
	if d.allParams {
		names = rb.paramNames()
	}
	for _, n := range names {
		switch src := k.source[n]; {
		case src == "default":
			out = append(out, "params."+n+" from its default")
		case src != "":
			out = append(out, "params."+n+" from "+src)
		default:
			out = append(out, "params."+n+" unset")
		}
	}
	if d.env {
		out = append(out, fmt.Sprintf("env %q", k.env))
	}
	if d.item && k.itemKnown {
		out = append(out, "item "+value.Format(k.item))
	}
	if len(out) == 0 {
		return ""
	}
	return " (" + strings.Join(out, ", ") + ")"
}

func (rb *Runbook) checkKnown(k *knownValues) Errors {
	if rb.scope == nil {
		return nil
	}
	base, err := rb.Env(Bindings{Params: k.params, Env: k.env})
	if err != nil {
		return nil // the values do not fit their params: ResolveParams says so
	}
	var errs Errors
	for _, st := range rb.Steps {
		env := base
		k.itemKnown, k.item = st.Group != "", st.Item
		if k.itemKnown {
			env = maps.Clone(base)
			env[itemHolder] = forEachItem{Item: st.Item}
		}
		if st.When != nil && st.When.Program != nil && k.knows(st.When.deps, rb) {
			if ok, err := st.When.Eval(context.Background(), env); err == nil && !ok {
				continue
			}
		}
		errs = append(errs, k.checkWith(rb, st.With, env)...)
		for _, h := range append(append([]*Hook(nil), st.RollbackHooks...), st.CleanupHooks...) {
			errs = append(errs, k.checkWith(rb, h.With, env)...)
		}
	}
	return errs
}

func (k *knownValues) checkWith(rb *Runbook, w *With, env map[string]any) Errors {
	if w == nil || w.Decl == nil {
		return nil
	}
	var errs Errors
	for _, d := range w.Decl.Params {
		f := w.Fields[d.Name]
		if f == nil || f.Tmpl == nil {
			continue
		}
		var deps exprDeps
		known := true
		for _, e := range f.Tmpl.Exprs() {
			known = known && e.Program != nil && k.knows(e.deps, rb)
			deps = deps.union(e.deps)
		}
		if !known {
			continue
		}
		raw, err := f.Tmpl.Render(context.Background(), env)
		if err != nil {
			errs = append(errs, &Error{Pos: f.Pos, Path: f.Path, Msg: fmt.Sprintf("%s fails%s: %v%s", f.Tmpl.Source, k.from(deps, rb), exprError(err), k.itemHint(deps))})
			continue
		}
		if _, err := d.Resolve(raw, true); err != nil {
			errs = append(errs, &Error{Pos: f.Pos, Path: f.Path, Msg: fmt.Sprintf("%s is %s%s: %v", f.Tmpl.Source, value.Format(raw), k.from(deps, rb), err)})
		}
	}
	return errs
}

// exprError is an evaluation error without the position, field and source
// excerpt run() and expr-lang put around it: the error reports the field already.
func exprError(err error) string {
	var fe *file.Error
	if errors.As(err, &fe) {
		return strings.TrimSpace(fe.Message)
	}
	return err.Error()
}

// itemHint explains the usual cause of an item's expression failing: the list holds
// plain values where the template reads fields (item.name of "zone-a").
func (k *knownValues) itemHint(d exprDeps) string {
	if !d.item || !k.itemKnown {
		return ""
	}
	if _, isMap := k.item.(map[string]any); isMap {
		return ""
	}
	return fmt.Sprintf(" (the item is %s, not a map: does the list hold the entries this template reads fields of?)", value.Format(k.item))
}

func (d exprDeps) union(o exprDeps) exprDeps {
	d.steps = append(append([]string(nil), d.steps...), o.steps...)
	for _, p := range o.params {
		if !slices.Contains(d.params, p) {
			d.params = append(d.params, p)
		}
	}
	d.allParams = d.allParams || o.allParams
	d.env = d.env || o.env
	d.item = d.item || o.item
	d.late = d.late || o.late
	d.loops = d.loops || o.loops
	return d
}
