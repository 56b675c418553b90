package actions

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/runbookdev/runbook/internal/calico"
)

// leaksSeenKey is the one journal intent recording when the run first saw each
// leak. One intent, written at most once per observation round, however many
// leaks: an intent per leak cost a journal write per leak and grew the journal
// past its bound at a few thousand leaks (issue #15 item 12).
const leaksSeenKey = "leaksSeen"

// legacyLeakPrefix is the per-leak intent of earlier versions ("leakSeen/<ip>/<handle>"),
// still read so that a run they started resumes with its sightings.
const legacyLeakPrefix = "leakSeen/"

// sightings maps a leak's digest to when the run first saw it.
type sightings map[string]time.Time

// leakDigest identifies a leak by its address and handle (an address released and
// allocated again is a new leak) in 16 characters: 96 bits of SHA-256, so 2,000
// leaks take some 40 KiB of journal, and two leaks never share a digest in practice.
func leakDigest(ip, handle string) string {
	sum := sha256.Sum256([]byte(ip + "/" + handle))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

func digestOf(l calico.Allocation) string { return leakDigest(l.IP.String(), l.Handle) }

// readSightings reads the sightings of a resumed run.
func readSightings(intent map[string]string) sightings {
	seen := sightings{}
	for k, v := range intent {
		if rest, ok := strings.CutPrefix(k, legacyLeakPrefix); ok {
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
				if ip, handle, ok := strings.Cut(rest, "/"); ok {
					seen[leakDigest(ip, handle)] = t
				}
			}
		}
	}
	var byTime map[string][]string
	if err := json.Unmarshal([]byte(intent[leaksSeenKey]), &byTime); err == nil {
		for ms, ds := range byTime {
			n, err := strconv.ParseInt(ms, 10, 64)
			if err != nil {
				continue
			}
			for _, d := range ds {
				seen[d] = time.UnixMilli(n)
			}
		}
	}
	return seen
}

// encode groups the digests by first-sighting time (one group per round), in
// milliseconds; deterministic, so an unchanged set encodes the same.
func (s sightings) encode() (string, error) {
	byTime := map[string][]string{}
	for d, t := range s {
		k := strconv.FormatInt(t.UnixMilli(), 10)
		byTime[k] = append(byTime[k], d)
	}
	for _, ds := range byTime {
		sort.Strings(ds)
	}
	b, err := json.Marshal(byTime) // map keys are sorted
	if err != nil {
		return "", fmt.Errorf("encoding leak sightings: %w", err)
	}
	return string(b), nil
}
