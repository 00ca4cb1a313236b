package schedule

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/coffer-backup/coffer/internal/atomicfile"
)

// JobState is what the scheduler remembers about a job between runs of the
// daemon.
type JobState struct {
	// LastScheduled is the scheduled time of the last run that finished
	// (after its retries). A run interrupted by a shutdown does not advance
	// it, so the run is caught up when the daemon starts again.
	LastScheduled time.Time `json:"last_scheduled"`
	// LastStart is when the last attempt started.
	LastStart time.Time `json:"last_start"`
	// LastEnd and LastError describe the last attempt that ended; LastError
	// is empty if it succeeded.
	LastEnd   time.Time `json:"last_end"`
	LastError string    `json:"last_error,omitempty"`
	// LastSuccess is when the last successful run ended (zero: never, or
	// before state files recorded it).
	LastSuccess time.Time `json:"last_success,omitzero"`
	// Successes and Failures count runs (not attempts): a run that succeeds
	// on a retry is one success.
	Successes int `json:"successes"`
	Failures  int `json:"failures"`
}

// StateStore persists JobState by job name.
type StateStore interface {
	Load() (map[string]JobState, error)
	Save(map[string]JobState) error
}

// FileState is a StateStore in a JSON file at the given path, replaced
// atomically (a temporary file in the same directory, then a rename) and
// readable only by its owner.
type FileState string

// Load reads the state file. A missing file is an empty state.
func (f FileState) Load() (map[string]JobState, error) {
	b, err := os.ReadFile(string(f))
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]JobState{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read schedule state: %w", err)
	}
	st := map[string]JobState{}
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("read schedule state %s: %w; remove the file to start afresh (missed runs are then not caught up)", f, err)
	}
	if st == nil { // the file said null
		st = map[string]JobState{}
	}
	return st, nil
}

// Save replaces the state file with st.
func (f FileState) Save(st map[string]JobState) (err error) {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode schedule state: %w", err)
	}
	err = atomicfile.Write(string(f), atomicfile.Options{}, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
	if err != nil {
		return fmt.Errorf("write schedule state: %w", err)
	}
	return nil
}
