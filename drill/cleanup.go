package drill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/coffer-backup/coffer/internal/pgephemeral"

	"github.com/coffer-backup/coffer/internal/atomicfile"
)

// marker records a running drill's scratch resources in the state
// directory, so that after a drill is killed (SIGKILL, power loss) the next
// drill or `coffer drill --cleanup` removes them: customer data must not
// linger on the drill host.
type marker struct {
	ID        string    `json:"id"`
	PID       int       `json:"pid"`
	Started   time.Time `json:"started"`
	Dir       string    `json:"dir"`                 // work directory (the restored dump)
	Scratch   *scratch  `json:"scratch"`             // the scratch database or file
	Ephemeral string    `json:"ephemeral,omitempty"` // an ephemeral server's directory
}

func (m *marker) path(stateDir string) string { return filepath.Join(stateDir, m.ID+".json") }

func (m *marker) save(stateDir string) error {
	if stateDir == "" {
		return nil
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return fmt.Errorf("drill state directory: %w", err)
	}
	return atomicfile.Write(m.path(stateDir), atomicfile.Options{}, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(m)
	})
}

func (m *marker) remove(stateDir string) error {
	if stateDir == "" {
		return nil
	}
	if err := os.Remove(m.path(stateDir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// alive reports whether the drill that wrote the marker still runs.
func (m *marker) alive() bool {
	if m.PID == os.Getpid() {
		return false
	}
	err := syscall.Kill(m.PID, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Cleaned is one leftover that Cleanup removed.
type Cleaned struct {
	Drill   string `json:"drill"`
	Removed string `json:"removed"`
}

// Cleanup removes what drills that no longer run left behind: scratch
// databases and files, ephemeral servers, restored dumps. Drills still
// running are left alone.
func Cleanup(ctx context.Context, stateDir string) ([]Cleaned, error) {
	if stateDir == "" {
		return nil, nil
	}
	paths, err := filepath.Glob(filepath.Join(stateDir, "*.json"))
	if err != nil {
		return nil, err
	}
	var out []Cleaned
	var errs []error
	for _, p := range paths {
		var m marker
		b, err := os.ReadFile(p)
		if err == nil {
			err = json.Unmarshal(b, &m)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("drill marker %s: %w", p, err))
			continue
		}
		if m.alive() {
			continue
		}
		if err := m.clean(ctx); err != nil {
			errs = append(errs, fmt.Errorf("clean up after drill %s: %w", m.ID, err))
			continue
		}
		out = append(out, Cleaned{Drill: m.ID, Removed: m.what()})
		os.Remove(p)
	}
	return out, errors.Join(errs...)
}

func (m *marker) what() string {
	s := "work directory " + m.Dir
	if m.Ephemeral != "" {
		return s + ", ephemeral PostgreSQL server in " + m.Ephemeral
	}
	if m.Scratch != nil {
		s += ", " + m.Scratch.String()
	}
	return s
}

func (m *marker) clean(ctx context.Context) error {
	var errs []error
	if m.Ephemeral != "" {
		errs = append(errs, pgephemeral.Remove(ctx, m.Ephemeral))
	} else if m.Scratch != nil {
		errs = append(errs, m.Scratch.drop(ctx))
	}
	errs = append(errs, os.RemoveAll(m.Dir))
	return errors.Join(errs...)
}
