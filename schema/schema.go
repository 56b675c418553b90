// Package schema generates the JSON Schema (2020-12) of the runbook format from the
// action registry, so editors and CI can check runbooks with any JSON-Schema tool. The
// generated file is checked in (runbook.schema.json) for editors and CI; a test
// keeps it equal to what the registry generates, and `runbook schema` prints it.
package schema

import (
	"encoding/json"
	"fmt"

	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/internal/value"
	"github.com/runbookdev/runbook/runbooks"
)

// ID is the schema's $id.
const ID = "https://runbook.dev/schema/runbook-v1alpha1.json"

type obj = map[string]any

// Generate builds the schema for the actions and functions in reg.
func Generate(reg *decl.Registry) ([]byte, error) {
	defs := obj{
		"expression": obj{"type": "string", "minLength": 1,
			"description": "An expr-lang expression (https://expr-lang.org) over params, env, steps, run and the guard functions; may be wrapped in ${{ }}."},
		"template": obj{"type": "string", "pattern": `\$\{\{.*\}\}`,
			"description": "A string with ${{ expr }} interpolations; exactly one ${{ }} keeps the expression's type."},
		"duration": obj{"type": "string", "pattern": `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`},
		"param":    paramSchema(),
		"step":     stepSchema(reg),
	}
	var names []string
	for _, d := range reg.Actions() {
		names = append(names, d.Name)
		defs["with."+d.Name] = withSchema(d)
	}
	defs["hook"] = obj{
		"type": "object", "additionalProperties": false, "required": []string{"action"},
		"properties": obj{"action": obj{"enum": names}, "with": obj{"type": "object"}},
		"allOf":      actionConditionals(reg, false),
	}
	s := obj{
		"$schema": "https://json-schema.org/draft/2020-12/schema",
		"$id":     ID,
		"title":   "runbook " + runbooks.APIVersion,
		"type":    "object", "additionalProperties": false,
		"required": []string{"apiVersion", "kind", "metadata", "steps"},
		"properties": obj{
			"apiVersion": obj{"const": runbooks.APIVersion},
			"kind":       obj{"const": runbooks.Kind},
			"metadata": obj{"type": "object", "additionalProperties": false, "required": []string{"name"},
				"properties": obj{
					"name":        obj{"type": "string", "pattern": `^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`, "maxLength": 63},
					"description": obj{"type": "string"},
					"labels":      obj{"type": "object", "additionalProperties": obj{"type": "string"}},
				}},
			"onFailure": obj{"enum": []string{string(runbooks.Rollback), string(runbooks.Stop)}},
			"params": obj{"type": "object", "propertyNames": obj{"pattern": `^[A-Za-z_][A-Za-z0-9_]*$`},
				"additionalProperties": obj{"$ref": "#/$defs/param"}},
			"steps": obj{"type": "array", "minItems": 1, "items": obj{"$ref": "#/$defs/step"}},
		},
		"$defs": defs,
	}
	out, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal schema: %w", err)
	}
	return append(out, '\n'), nil
}

func paramSchema() obj {
	var types []string
	for _, t := range value.Types {
		types = append(types, string(t))
	}
	return obj{
		"type": "object", "additionalProperties": false, "required": []string{"type"},
		"properties": obj{
			"type":        obj{"enum": types},
			"default":     obj{},
			"required":    obj{"type": "boolean"},
			"enum":        obj{"type": "array", "minItems": 1},
			"description": obj{"type": "string"},
		},
	}
}

func stepSchema(reg *decl.Registry) obj {
	var names []string
	for _, d := range reg.Actions() {
		names = append(names, d.Name)
	}
	return obj{
		"type": "object", "additionalProperties": false, "required": []string{"id", "action"},
		"properties": obj{
			"id":      obj{"type": "string", "pattern": `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`, "maxLength": 63},
			"name":    obj{"type": "string"},
			"action":  obj{"enum": names},
			"with":    obj{"type": "object"},
			"when":    obj{"$ref": "#/$defs/expression", "description": "Skip the step when false."},
			"require": obj{"$ref": "#/$defs/expression", "description": "Precondition: fail with nothing changed when false."},
			"until":   obj{"$ref": "#/$defs/expression", "description": "After applying, wait until true (bounded by timeout)."},
			"assert":  obj{"$ref": "#/$defs/expression", "description": "Postcondition."},
			"timeout": obj{"$ref": "#/$defs/duration"},
			"forEach": obj{"description": "Run the step once per item (its expressions read it as item); ids <id>-<item, its name, or its index>. A list, or an expression over params and env giving one.",
				"oneOf": []any{obj{"type": "array"}, obj{"$ref": "#/$defs/expression"}}},
			"onFailure": obj{"enum": []string{string(runbooks.Rollback), string(runbooks.Stop)}},
			"rollback": obj{"oneOf": []any{
				obj{"enum": []string{"auto", "none"}},
				obj{"type": "array", "items": obj{"$ref": "#/$defs/hook"}},
			}},
			"cleanup": obj{"type": "array", "items": obj{"$ref": "#/$defs/hook"}},
		},
		"allOf": actionConditionals(reg, true),
	}
}

// actionConditionals selects the with: schema by the action's name.
func actionConditionals(reg *decl.Registry, step bool) []any {
	var out []any
	for _, d := range reg.Actions() {
		then := obj{"properties": obj{"with": obj{"$ref": "#/$defs/with." + d.Name}}}
		for _, p := range d.Params {
			if p.Required {
				then["required"] = []string{"with"}
				break
			}
		}
		if step && d.PointOfNoReturn {
			then["properties"].(obj)["rollback"] = obj{"const": "none"}
		}
		out = append(out, obj{"if": obj{"properties": obj{"action": obj{"const": d.Name}}, "required": []string{"action"}}, "then": then})
	}
	return out
}

func withSchema(d *decl.Action) obj {
	props := obj{}
	var required []string
	for _, p := range d.Params {
		props[p.Name] = valueSchema(p.Spec)
		if p.Required {
			required = append(required, p.Name)
		}
	}
	s := obj{"type": "object", "additionalProperties": false, "properties": props, "description": d.Summary}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

// valueSchema is the schema of one typed value: the literal, or a ${{ }} template.
func valueSchema(spec value.Spec) obj {
	var lit obj
	switch spec.Type {
	case value.String:
		lit = obj{"type": "string"}
	case value.Int:
		lit = obj{"type": "integer"}
	case value.Bool:
		lit = obj{"type": "boolean"}
	case value.Duration:
		lit = obj{"$ref": "#/$defs/duration"}
	case value.CIDR:
		lit = obj{"type": "string", "pattern": `^[0-9a-fA-F:.]+/[0-9]{1,3}$`}
	case value.List:
		lit = obj{"type": "array"}
	case value.Map:
		lit = obj{"type": "object"}
	default:
		lit = obj{}
	}
	if len(spec.Enum) > 0 {
		enum := make([]any, len(spec.Enum))
		for i, e := range spec.Enum {
			enum[i] = value.JSON(e)
		}
		lit = obj{"enum": enum}
	}
	s := obj{"anyOf": []any{lit, obj{"$ref": "#/$defs/template"}}}
	if spec.Description != "" {
		s["description"] = spec.Description
	}
	if spec.Default != nil {
		s["default"] = value.JSON(spec.Default)
	}
	return s
}
