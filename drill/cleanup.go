package drill

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"github.com/coffer-backup/coffer/internal/atomicfile"
	"github.com/coffer-backup/coffer/internal/pgephemeral"
)

// marker records a running drill's scratch resources in the state
// directory, so that after a drill is killed (SIGKILL, power loss) the next
// drill or `coffer drill --cleanup` removes them: customer data must not
// linger on the drill host. It is written before each resource exists.
type marker struct {
	ID        string    `json:"id"`
	PID       int       `json:"pid"`
	Started   time.Time `json:"started"`
	Dir       string    `json:"dir"`                 // work directory (the scratch SQLite file, the load's spool)
	Scratch   *scratch  `json:"scratch"`             // the scratch database or file
	Ephemeral string    `json:"ephemeral,omitempty"` // an ephemeral server's directory
}

// What coffer itself names, and so all that Cleanup acts on: a run's id
// (newID and its index), its work directory in the temporary directory,
// its scratch database.
var (
	idPattern       = regexp.MustCompile(`^[0-9]{8}t[0-9]{6}_[0-9a-f]{6}_[0-9]+$`)
	databasePattern = regexp.MustCompile(`^` + scratchPrefix + `[0-9a-z_]+$`)
)

const (
	workPrefix    = "coffer-drill-" // a run's work directory, in the temporary directory
	scratchPrefix = "coffer_drill_" // a run's scratch database or SQLite file
)

func (m *marker) path(stateDir string) string { return filepath.Join(stateDir, m.ID+".json") }

func (m *marker) save(stateDir string) error {
	if stateDir == "" {
		return nil
	}
	if err := EnsureStateDir(stateDir); err != nil {
		return err
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

// alive reports whether the drill that wrote the marker still runs; a
// zombie (killed, not yet reaped) does not.
func (m *marker) alive() bool {
	if m.PID <= 0 || m.PID == os.Getpid() {
		return false
	}
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(m.PID) + "/stat"); err == nil {
		i := bytes.LastIndexByte(b, ')')
		return i < 0 || i+2 >= len(b) || (b[i+2] != 'Z' && b[i+2] != 'X')
	}
	err := syscall.Kill(m.PID, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// CleanupOptions say where drills keep their markers and what their
// leftovers may be: only what a drill with these settings could have made
// is removed.
type CleanupOptions struct {
	StateDir string // the markers; "" for none
	TempDir  string // where work directories and ephemeral servers are; default os.TempDir()
	Scratch  string // the scratch server: scratch databases elsewhere are left alone
}

// Cleaned is one leftover that Cleanup removed.
type Cleaned struct {
	Drill   string `json:"drill,omitempty"` // the drill's id; "" for what Sweep found without a marker`
	Removed string `json:"removed"`
}

// CleanupResult is what Cleanup removed, and the markers it left alone.
type CleanupResult struct {
	Removed []Cleaned
	Ignored []string // one warning per marker not acted on, saying why
}

// Cleanup removes what drills that no longer run left behind: scratch
// databases and files, ephemeral servers and their throwaway users, work
// directories. Drills still running are left alone. A marker is acted on
// only if it is a regular file of ours, in a state directory of ours
// closed to others, and names only what coffer itself creates:
// coffer_drill_… databases on the configured scratch server, coffer-drill-…
// and pgephemeral-… directories in the temporary directory. Other markers
// are left in place and reported in Ignored.
func Cleanup(ctx context.Context, opts CleanupOptions) (*CleanupResult, error) {
	res := &CleanupResult{}
	var errs []error
	if opts.StateDir != "" {
		if err := res.markers(ctx, opts); err != nil {
			errs = append(errs, err)
		}
	}
	swept, err := pgephemeral.Sweep(ctx)
	for _, s := range swept {
		what := "throwaway user " + s.User + " of an ephemeral PostgreSQL server in " + s.Dir
		if s.Dir == "" {
			what = "group " + s.User + " of a throwaway user that is gone"
		}
		res.Removed = append(res.Removed, Cleaned{Removed: what})
	}
	return res, errors.Join(append(errs, err)...)
}

func (res *CleanupResult) markers(ctx context.Context, opts CleanupOptions) error {
	d, err := openStateDir(opts.StateDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer d.Close()
	stored, err := readMarkers(d)
	if err != nil {
		return err
	}
	lim, err := newLimits(opts)
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range stored {
		p := filepath.Join(opts.StateDir, s.name)
		var m marker
		err := s.err
		if err == nil {
			err = json.Unmarshal(s.data, &m)
		}
		if err == nil {
			err = lim.check(&m, s.name)
		}
		if err != nil {
			res.Ignored = append(res.Ignored, fmt.Sprintf("drill marker %s ignored: %v", p, err))
			continue
		}
		if m.alive() {
			continue
		}
		if err := m.clean(ctx); err != nil {
			errs = append(errs, fmt.Errorf("clean up after drill %s: %w", m.ID, err))
			continue
		}
		res.Removed = append(res.Removed, Cleaned{Drill: m.ID, Removed: m.what()})
		os.Remove(p)
	}
	return errors.Join(errs...)
}

// limits are what a marker may name.
type limits struct {
	tempDir string // absolute, cleaned
	scratch string // the scratch server, as newScratch records it; "" for none
}

func newLimits(opts CleanupOptions) (*limits, error) {
	l := &limits{tempDir: tempDir(opts.TempDir)}
	if opts.Scratch != "" {
		var err error
		if l.scratch, err = serverAddress(opts.Scratch); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// tempDir is the absolute temporary directory of drills.
func tempDir(dir string) string {
	if dir == "" {
		dir = os.TempDir()
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return filepath.Clean(dir)
}

// check fails unless the marker in file name names only what a drill with
// these limits creates.
func (l *limits) check(m *marker, name string) error {
	if !idPattern.MatchString(m.ID) || name != m.ID+".json" {
		return fmt.Errorf("drill id %q (in file %s) is not one coffer makes", m.ID, name)
	}
	if want := filepath.Join(l.tempDir, workPrefix+m.ID); m.Dir != want {
		if filepath.IsAbs(m.Dir) && filepath.Base(m.Dir) == workPrefix+m.ID && filepath.Clean(m.Dir) == m.Dir {
			return fmt.Errorf("its work directory %q is not in the temporary directory %s: if the drill ran with TMPDIR=%q, run the cleanup with it too", m.Dir, l.tempDir, filepath.Dir(m.Dir))
		}
		return fmt.Errorf("its work directory %q is not %s", m.Dir, want)
	}
	if err := ownDir(m.Dir); err != nil {
		return err
	}
	if m.Ephemeral != "" {
		if filepath.Dir(m.Ephemeral) != l.tempDir || !pgephemeral.IsDirName(filepath.Base(m.Ephemeral)) {
			return fmt.Errorf("its ephemeral server directory %q is not a pgephemeral-… directory in %s", m.Ephemeral, l.tempDir)
		}
	}
	sc := m.Scratch
	if sc == nil {
		return nil
	}
	switch sc.Engine {
	case "sqlite":
		if want := filepath.Join(m.Dir, scratchPrefix+m.ID+".db"); sc.File != want || sc.Server != "" || sc.Database != "" {
			return fmt.Errorf("its scratch file %q is not %s", sc.File, want)
		}
	case "postgres", "mysql":
		if sc.File != "" || sc.Database != scratchPrefix+m.ID || !databasePattern.MatchString(sc.Database) {
			return fmt.Errorf("its scratch database %q is not %s", sc.Database, scratchPrefix+m.ID)
		}
		if m.Ephemeral != "" {
			return nil // the server goes with its directory; nothing is dropped
		}
		if l.scratch == "" {
			return fmt.Errorf("its scratch database %s is on %q, and no scratch server is configured: run coffer drill --cleanup --scratch %q", sc.Database, sc.Server, sc.Server)
		}
		if sc.Server != l.scratch {
			return fmt.Errorf("its scratch database %s is on %q, not on the configured scratch server %s: run coffer drill --cleanup --scratch %q", sc.Database, sc.Server, l.scratch, sc.Server)
		}
	default:
		return fmt.Errorf("its scratch engine %q is not postgres, mysql or sqlite", sc.Engine)
	}
	return nil
}

// ownDir fails unless dir is missing or a directory of ours (not a
// symbolic link).
func ownDir(dir string) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("its work directory %s is not a directory (%v)", dir, fi.Mode().Type())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("its work directory %s is not yours", dir)
	}
	return nil
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

// clean removes what a checked marker names.
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
