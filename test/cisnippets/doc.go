// Package cisnippets runs the CI pipelines of docs/ci/ as they are written against
// the local test cluster, so the snippets people copy cannot rot: a harness parses
// each workflow, runs its shell steps with bash as the runners do, and emulates only
// what cannot run here (checkout, setup, release download, artifacts, approvals,
// secrets). See docs/ci.md.
package cisnippets
