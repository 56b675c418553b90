// Package engine runs a validated runbook against a cluster: the step lifecycle
// (when → require → apply → until → assert), the run journal that makes a killed run
// resumable, rollback of completed steps in reverse order, and cleanup hooks that
// always run. The cluster is the source of truth for progress; the journal keeps only
// what cannot be derived from it.
package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/runbookdev/runbook/actions"
	"github.com/runbookdev/runbook/internal/exitcode"
)

// JournalVersion is the format version of the journal; a journal of another version
// is refused rather than misread.
const JournalVersion = 1

// Run and step statuses.
const (
	StatusPending        = "pending"
	StatusRunning        = "running"
	StatusDone           = "done"
	StatusSkipped        = "skipped"
	StatusFailed         = "failed"
	StatusInterrupted    = "interrupted"
	StatusRolledBack     = "rolledBack"
	StatusRollbackFailed = "rollbackFailed"
	StatusStopped        = "stopped" // --stop-before reached, or a confirmation declined
	// StatusAwaitingApproval: a pause step waits for `runbook approve`.
	StatusAwaitingApproval = "awaitingApproval"
)

// Journal is the checkpoint of one run.
type Journal struct {
	RunID         string                 `json:"runID"`
	Runbook       string                 `json:"runbook"`
	RunbookDigest string                 `json:"runbookDigest"`
	ParamsDigest  string                 `json:"paramsDigest"`
	Env           string                 `json:"env,omitempty"`
	Source        *Source                `json:"source,omitempty"` // of the latest invocation
	Status        string                 `json:"status"`
	Holder        string                 `json:"holder,omitempty"`
	Cluster       *ClusterIdentity       `json:"cluster,omitempty"` // where the run runs
	StartedAt     time.Time              `json:"startedAt"`
	UpdatedAt     time.Time              `json:"updatedAt"`
	Steps         map[string]*StepRecord `json:"steps"`
	Error         string                 `json:"error,omitempty"`
}

// StepRecord is what the journal keeps of one step.
type StepRecord struct {
	Status     string         `json:"status"`
	Changed    bool           `json:"changed,omitempty"`
	Outputs    map[string]any `json:"outputs,omitempty"`
	StartedAt  *time.Time     `json:"startedAt,omitempty"`
	FinishedAt *time.Time     `json:"finishedAt,omitempty"`
	Attempts   int            `json:"attempts,omitempty"`
	Message    string         `json:"message,omitempty"`
	Error      string         `json:"error,omitempty"`
	Rollback   string         `json:"rollback,omitempty"` // outcome of its rollback, when run
	actions.Record
}

// Finished reports whether the run reached an end state (a new apply starts a new run).
func (j *Journal) Finished() bool {
	switch j.Status {
	case StatusDone, StatusRolledBack:
		return true
	}
	return false
}

func (j *Journal) step(id string) *StepRecord {
	if j.Steps == nil {
		j.Steps = map[string]*StepRecord{}
	}
	r := j.Steps[id]
	if r == nil {
		r = &StepRecord{Status: StatusPending}
		j.Steps[id] = r
	}
	return r
}

// envelope is the stored form: versioned and checksummed so a truncated or
// hand-edited journal is detected instead of trusted.
type envelope struct {
	Version  int             `json:"version"`
	Checksum string          `json:"checksum"`
	Journal  json.RawMessage `json:"journal"`
}

// ErrCorrupt marks a journal that failed its integrity check.
var ErrCorrupt = errors.New("run journal is corrupt")

// MaxJournalBytes bounds a journal far under a ConfigMap's 1 MiB: it holds only what
// the cluster cannot tell, never per-pod progress.
const MaxJournalBytes = 256 << 10

// Encode serialises a journal with its checksum.
func Encode(j *Journal) ([]byte, error) {
	body, err := json.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("encode journal: %w", err)
	}
	if len(body) > MaxJournalBytes {
		return nil, fmt.Errorf("encode journal: %d bytes is over the %d-byte bound (an action recorded too much: step outputs and intents must stay small)", len(body), MaxJournalBytes)
	}
	sum := sha256.Sum256(body)
	return json.Marshal(envelope{Version: JournalVersion, Checksum: "sha256:" + hex.EncodeToString(sum[:]), Journal: body})
}

// Decode parses and verifies a stored journal.
func Decode(b []byte) (*Journal, error) {
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if env.Version > JournalVersion {
		// Not corrupt: written by a newer runbook. Deleting it (the advice for a
		// corrupt journal) would lose a run that runbook can still resume.
		return nil, exitcode.Newf(exitcode.Invalid, "run journal has format version %d, written by a newer runbook; this runbook reads format version %d: use a runbook that reads version %d (do not delete the journal: the run it holds is intact)",
			env.Version, JournalVersion, env.Version)
	}
	if env.Version != JournalVersion {
		return nil, fmt.Errorf("%w: format version %d, this runbook understands %d", ErrCorrupt, env.Version, JournalVersion)
	}
	sum := sha256.Sum256(env.Journal)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != env.Checksum {
		return nil, fmt.Errorf("%w: checksum mismatch (stored %s, content %s): it was truncated or edited by hand", ErrCorrupt, env.Checksum, got)
	}
	var j Journal
	if err := json.Unmarshal(env.Journal, &j); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return &j, nil
}
