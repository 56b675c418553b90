// Package reliability is the reliability campaign of issue #9 that drives the real
// runbook binary as a subprocess against fresh sandbox clusters:
//
//   - crash anywhere: the example migration is killed with SIGKILL at every step
//     boundary and at random instants inside deletePodsInPool and
//     assertNewAllocations, then applied again until done; the end state must equal
//     an uninterrupted run's, with nothing applied twice and no pod evicted
//     needlessly (crash_test.go);
//   - concurrency: two applies at once, a holder killed, a holder paused past its
//     lease and resumed (lock_test.go);
//   - bad input: runbooks and values that validate but are wrong for the cluster
//     fail before anything changes (badinput_test.go).
//
// The tests live in _test files only; this file holds the package documentation.
//
// `go test ./test/reliability` (part of `make test`) runs the reduced set:
// TestCrashAnywhere (one uninterrupted and one batched migration with 35 kills,
// about a minute), TestLockWithProcesses (about two minutes, most of
// it three leases waited out) and TestWrongForTheCluster. RELIABILITY=long (or
// `make reliability`) runs the full set. RELIABILITY_SEED fixes the random kill
// instants (the seed in use is always logged).
package reliability
