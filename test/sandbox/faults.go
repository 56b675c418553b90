package sandbox

import (
	"github.com/runbookdev/runbook/test/sandbox/cni"
	"github.com/runbookdev/runbook/test/scenarios"
)

// Annotations the sandbox's kwok stages act on (kwok-stages.yaml). Scenarios set
// them through workload fields; tests may set them on pods and nodes of their own.
const (
	// AnnotationStartDelay on a pod overrides the scenario's pods.startDelay: how
	// long the pod takes from getting its addresses to Running (a Go duration).
	AnnotationStartDelay = "sandbox.runbook.dev/start-delay"
	// AnnotationRunFor on a Job's pod is how long it runs before it succeeds.
	AnnotationRunFor = "sandbox.runbook.dev/run-for"
	// AnnotationFault on a pod makes it misbehave once it has its addresses:
	// FaultNeverReady or FaultCrashLoop.
	AnnotationFault = "sandbox.runbook.dev/fault"
	// AnnotationNodeNotReady on a node makes its kubelet report NotReady with the
	// network plugin not initialised, until the annotation is removed.
	AnnotationNodeNotReady = "sandbox.runbook.dev/not-ready"
	// AnnotationShutdownDelay on a pod overrides the scenario's pods.shutdownDelay:
	// how long its containers take to exit after SIGTERM (a Go duration).
	AnnotationShutdownDelay = cni.AnnotationShutdownDelay
)

// Values of AnnotationFault (the scenario's workload fault names).
const (
	FaultNeverReady = scenarios.FaultNeverReady // Running, readiness never passes
	FaultCrashLoop  = scenarios.FaultCrashLoop  // Running, containers in CrashLoopBackOff
)
