// Package faults is the control-plane and workload part of the reliability
// campaign (issue #9): the example migration, run with the real CLI against a
// sandbox cluster of each test's own, while kube-apiserver or etcd restart under
// it, through a proxy injecting 5xx answers, connection resets and latency, and
// with workloads that never become Ready, crash, sit on a node gone NotReady or
// under a budget that never allows a disruption.
//
// What each test asserts is the tool's promise: a transient fault is ridden out
// and the run finishes with the same end state as an undisturbed one; a fault that
// outlasts the step's timeout stops the run with a journal that loads (checksum
// verified) and a resume that finishes; a workload fault fails the step within its
// timeout naming the cause, the rollback re-enables the old pool, and the pods that
// were not moved keep serving. Counts (restarts survived, fault scenarios passed,
// faults injected) are logged with a FAULTS: prefix for the campaign's summary.
package faults
