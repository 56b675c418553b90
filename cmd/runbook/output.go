package main

import (
	"encoding/json"
	"io"

	"gopkg.in/yaml.v3"
)

// writeStructured prints v as JSON or YAML according to -o.
func writeStructured(w io.Writer, format string, v any) error {
	if format == "yaml" {
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		defer enc.Close()
		return enc.Encode(v)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
