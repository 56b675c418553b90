package runbooks

import (
	"context"
	"fmt"
)

// Render returns the step's parameters for one execution: literals, declared
// defaults, and templates evaluated in env and converted to the declared types.
func (w *With) Render(ctx context.Context, env map[string]any) (map[string]any, error) {
	out := map[string]any{}
	for _, d := range w.Decl.Params {
		f := w.Fields[d.Name]
		switch {
		case f == nil || !f.Present:
			v, err := d.Resolve(nil, false)
			if err != nil {
				return nil, fmt.Errorf("with.%s: %w", d.Name, err)
			}
			if v != nil {
				out[d.Name] = v
			}
		case f.Tmpl != nil:
			raw, err := f.Tmpl.Render(ctx, env)
			if err != nil {
				return nil, err
			}
			v, err := d.Resolve(raw, true)
			if err != nil {
				return nil, fmt.Errorf("%s: with.%s: rendered %q: %w", f.Pos, d.Name, stringify(raw), err)
			}
			out[d.Name] = v
		default:
			out[d.Name] = f.Literal
		}
	}
	return out, nil
}

// Dynamic reports whether any value depends on expressions.
func (w *With) Dynamic() bool {
	for _, f := range w.Fields {
		if f.Tmpl != nil {
			return true
		}
	}
	return false
}

// StepRefs returns the ids of the steps the with: block's templates read.
func (w *With) StepRefs() []string {
	var out []string
	for _, f := range w.Fields {
		if f.Tmpl == nil {
			continue
		}
		for _, e := range f.Tmpl.Exprs() {
			out = append(out, e.Steps...)
		}
	}
	return out
}

// Given is the set of parameters the file writes (rendered or literal); the rest
// take their declared defaults. Actions that converge an existing object touch
// only these: a default is what to create with, not what to impose.
func (w *With) Given() map[string]bool {
	out := make(map[string]bool, len(w.Fields))
	for name, f := range w.Fields {
		if f != nil && f.Present {
			out[name] = true
		}
	}
	return out
}
