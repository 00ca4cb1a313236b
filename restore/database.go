package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/engine/mysql"
	"github.com/coffer-backup/coffer/engine/postgres"
	"github.com/coffer-backup/coffer/engine/sqlite"
	"github.com/coffer-backup/coffer/mask"
	"github.com/coffer-backup/coffer/repository"
)

// Target is a database a snapshot can be loaded into. Everything a
// snapshot holds is treated as hostile: a target loads it as data only,
// without superuser rights, changing nothing outside the databases it
// loads, and never touching a database it replaces until Commit.
//
// ToDatabase calls Load, then (when verifying) Digests, then Commit when
// everything matched, or Abort on any failure.
type Target interface {
	// Load reads the dump stream into the database. rep is what the
	// snapshot recorded about the stream (its parts, its tables). With
	// TargetOptions.Clean it loads into a new database beside the one it
	// replaces, which stays untouched until Commit.
	Load(ctx context.Context, r io.Reader, rep engine.Report) error
	// Digests computes the per-table digests of what Load loaded.
	Digests(ctx context.Context) ([]engine.TableDigest, error)
	// Commit puts what Load loaded in place (with Clean: swaps it with
	// the database it replaces) and says what it did.
	Commit(ctx context.Context) ([]string, error)
	// Abort removes what Load created. A database that Load was to
	// replace is left as it was.
	Abort(ctx context.Context) error
	// Notes say what the load did besides loading data (roles created,
	// objects whose owner was not applied…), for the operator.
	Notes() []string
	// Engine is the engine whose snapshots it loads: postgres, mysql, sqlite.
	Engine() string
	// String names the target for messages, without secrets.
	String() string
}

// TargetOptions tune how a target loads.
type TargetOptions struct {
	Clean   bool // replace what the target holds: load beside it, verify, then swap
	DropOld bool // with Clean: drop the replaced database after the swap (else kept as NAME_before_TIME)
	Force   bool // with Clean: end other sessions of the replaced database to swap it (PostgreSQL WITH (FORCE))
	Jobs    int  // parallel load jobs, where the engine can

	// Globals applies the snapshot's server-wide objects: "" (none, the
	// default), "roles" (create roles that do not exist, without
	// SUPERUSER, REPLICATION or BYPASSRLS, never altering an existing
	// role), or "all" (those attributes too).
	Globals string
	// Owner owns what the snapshot recorded as owned by a role that is
	// missing or a superuser on the target (PostgreSQL).
	Owner string
	// TrustSnapshot loads the snapshot with the connecting user's full
	// rights (a superuser can then run whatever the dump contains): only
	// for snapshots the operator trusts, e.g. that need extensions only a
	// superuser may create. It is recorded in the audit log.
	TrustSnapshot bool
	// Scratch marks a drill's throwaway database: roles the objects need
	// are created NOLOGIN without passwords and dropped by Abort.
	Scratch bool
	// TempDir is where a dump is spooled for a parallel load (unlinked at
	// once; the system's temporary directory when empty).
	TempDir string
	// Password is the connecting user's password when it is not in the
	// environment (an ephemeral drill server's, which coffer made).
	Password string
	// Mask, when set, makes the load a masked copy: no original value of
	// a column the rules mask reaches the target (PostgreSQL, MariaDB and
	// MySQL, SQLite).
	Mask *Masking
}

// Masking is a masked restore's rules and the repository's masking key.
type Masking struct {
	Rules *mask.Rules
	Key   mask.Key
}

// DBOptions tune a restore into a database.
type DBOptions struct {
	Options
	Verify bool // compare per-table digests after loading
	// Canaries are planted in a masked copy once it is verified.
	Canaries []mask.Canary
}

// DBSummary describes a restore into a database.
type DBSummary struct {
	Summary
	Load   time.Duration        // stream and load, together
	Verify time.Duration        // digests of the loaded database
	Tables []engine.TableResult // per-table comparison, when verified
	Notes  []string             // what the target did besides loading (Target.Notes, Commit)
}

// ParseTarget turns a --to address into a Target.
func ParseTarget(addr string, opts TargetOptions) (Target, error) {
	switch {
	case strings.HasPrefix(addr, "sqlite:"):
		t := &sqliteTarget{path: strings.TrimPrefix(addr, "sqlite:"), clean: opts.Clean, dropOld: opts.DropOld}
		if opts.Mask != nil {
			t.mask = &sqlite.Masking{Rules: opts.Mask.Rules, Masker: mask.NewMasker(opts.Mask.Key)}
		}
		return t, nil
	case strings.HasPrefix(addr, "mysql://"), strings.HasPrefix(addr, "mariadb://"):
		return mysql.NewTarget(addr, mysqlOptions(opts))
	case strings.HasPrefix(addr, "postgres://"), strings.HasPrefix(addr, "postgresql://"):
		return postgres.NewTarget(addr, postgresOptions(opts))
	}
	return nil, fmt.Errorf("restore target %q: give sqlite:PATH, postgres://… or mysql://…", addr)
}

// ToDatabase streams snapshot snap into target and, with Verify, compares
// the loaded tables with the digests recorded at backup time.
func ToDatabase(ctx context.Context, repo *repository.Repo, snap *repository.Snapshot, target Target, opts DBOptions) (*DBSummary, error) {
	if snap.Engine != target.Engine() {
		return nil, fmt.Errorf("snapshot %s is a %s backup and cannot be loaded into %s: restore it into a %s target, or with --output", snap.ID().Short(), snap.Engine, target, snap.Engine)
	}
	if len(snap.Private) == 0 {
		return nil, fmt.Errorf("snapshot %s is a %s backup, not a database dump: restore it with --output", snap.ID().Short(), snap.Engine)
	}
	var want engine.Report
	if err := repo.OpenPrivate(snap, &want); err != nil {
		return nil, err
	}
	start := time.Now()
	pr, pw := io.Pipe()
	g, gctx := errgroup.WithContext(ctx)
	var sum *Summary
	var runErr, loadErr error
	g.Go(func() error {
		sum, runErr = Run(gctx, repo, snap, pw, opts.Options)
		pw.CloseWithError(runErr)
		return runErr
	})
	g.Go(func() error {
		loadErr = target.Load(gctx, pr, want)
		pr.CloseWithError(errors.Join(loadErr, io.ErrClosedPipe))
		return loadErr
	})
	if err := g.Wait(); err != nil {
		// A damaged stream fails Run first; Load's error then says what
		// state the target database was left in, which the operator
		// needs most: keep both.
		switch {
		case runErr != nil && loadErr != nil && !errors.Is(loadErr, runErr):
			err = fmt.Errorf("%w\n%w", runErr, loadErr)
		case loadErr != nil:
			err = loadErr
		}
		return nil, abort(ctx, target, fmt.Errorf("restore snapshot %s into %s: %w", snap.ID().Short(), target, err))
	}
	out := &DBSummary{Summary: *sum, Load: time.Since(start)}
	if opts.Verify {
		vstart := time.Now()
		got, err := target.Digests(ctx)
		if err != nil {
			return out, abort(ctx, target, fmt.Errorf("verify %s: %w", target, err))
		}
		out.Verify = time.Since(vstart)
		out.Tables = engine.Compare(Expected(target, want.Tables), got)
		if !engine.AllMatch(out.Tables) {
			// The notes (what was dropped, what is untouched) go with the
			// table comparison in the summary.
			var err error = &MismatchError{Snapshot: snap.ID().Short(), Target: target.String()}
			if aerr := target.Abort(context.WithoutCancel(ctx)); aerr != nil {
				err = fmt.Errorf("%w\nremoving what was loaded also failed: %v", err, aerr)
			}
			out.Notes = target.Notes()
			return out, err
		}
	}
	if len(opts.Canaries) > 0 {
		ct, ok := target.(canaryTarget)
		if !ok {
			return out, abort(ctx, target, fmt.Errorf("%s cannot hold canaries: they go into masked copies", target))
		}
		if err := ct.PlantCanaries(ctx, opts.Canaries); err != nil {
			return out, abort(ctx, target, err)
		}
	}
	notes, err := target.Commit(ctx)
	out.Notes = append(target.Notes(), notes...)
	if err != nil {
		return out, fmt.Errorf("restore snapshot %s into %s: %w", snap.ID().Short(), target, err)
	}
	return out, nil
}

// maskedTarget is a target that loaded a masked copy: what its tables
// must digest to.
type maskedTarget interface {
	MaskExpected() []engine.TableDigest
}

// Expected is what target's tables must digest to once loaded: recorded,
// the digests the snapshot recorded; for a masked copy, those of the
// masked rows coffer wrote and of the backup's kept columns.
func Expected(target Target, recorded []engine.TableDigest) []engine.TableDigest {
	if mt, ok := target.(maskedTarget); ok && mt.MaskExpected() != nil {
		return mt.MaskExpected()
	}
	return recorded
}

// canaryTarget is a target that plants canaries in a masked copy.
type canaryTarget interface {
	PlantCanaries(ctx context.Context, cs []mask.Canary) error
}

// MismatchError is a restore whose loaded tables differ from what the
// snapshot recorded; DBSummary.Tables says which.
type MismatchError struct{ Snapshot, Target string }

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s does not match snapshot %s: the restored data differs from what was backed up", e.Target, e.Snapshot)
}

// abort undoes a failed load and says so in err: what the target says
// it did (Notes after Abort: which database is untouched, what was
// dropped) is what the operator needs to know, so it is added unless
// err says it already.
func abort(ctx context.Context, t Target, err error) error {
	if aerr := t.Abort(context.WithoutCancel(ctx)); aerr != nil {
		return fmt.Errorf("%w\nremoving what was loaded also failed: %v", err, aerr)
	}
	for _, n := range t.Notes() {
		if !strings.Contains(err.Error(), n) {
			err = fmt.Errorf("%w\n%s", err, n)
		}
	}
	return err
}

func mysqlOptions(o TargetOptions) mysql.TargetOptions {
	m := mysql.TargetOptions{Clean: o.Clean, DropOld: o.DropOld, Jobs: o.Jobs, TrustSnapshot: o.TrustSnapshot, Scratch: o.Scratch}
	if o.Mask != nil {
		m.Mask = &mysql.Masking{Rules: o.Mask.Rules, Masker: mask.NewMasker(o.Mask.Key)}
	}
	return m
}

func postgresOptions(o TargetOptions) postgres.TargetOptions {
	p := postgres.TargetOptions{Clean: o.Clean, DropOld: o.DropOld, Force: o.Force, Jobs: o.Jobs, Globals: o.Globals,
		Owner: o.Owner, TrustSnapshot: o.TrustSnapshot, Scratch: o.Scratch, TempDir: o.TempDir, Password: o.Password}
	if o.Mask != nil {
		p.Mask = &postgres.Masking{Rules: o.Mask.Rules, Masker: mask.NewMasker(o.Mask.Key)}
	}
	return p
}

type sqliteTarget struct {
	path    string
	clean   bool
	dropOld bool      // with clean: remove the replaced file after the swap
	staged  string    // with clean: the loaded file beside path, until Commit
	created bool      // Load created path: Abort removes it
	now     time.Time // when Load ran, names a replaced file (PATH.before-TIME)
	mask    *sqlite.Masking
	masked  *sqlite.Masked // a masked load's copy, until Commit or Abort
	notes   []string
}

// Load implements Target: into a new file at path, or, with clean (or an
// empty file at path), into a file beside it that Commit renames over it.
func (t *sqliteTarget) Load(ctx context.Context, r io.Reader, _ engine.Report) error {
	t.now = time.Now()
	if t.mask != nil { // masked in a private directory first
		m, err := sqlite.MaskCopy(ctx, r, "", t.mask)
		if err != nil {
			return err
		}
		t.masked, t.notes = m, m.Notes
		f, err := os.Open(m.Path)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	st, err := os.Lstat(t.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := sqlite.Load(ctx, r, t.path); err != nil {
			return err
		}
		t.created = true
		return nil
	case err != nil:
		return fmt.Errorf("restore target %s: %w", t.path, err)
	case st.Size() > 0 && !t.clean:
		return fmt.Errorf("restore target %s exists and is not empty: choose another path, or pass --clean to replace it (the old file is kept beside it)", t.path)
	}
	t.staged, err = sqlite.Stage(ctx, r, t.path)
	return err
}

// Digests implements Target: of what Load loaded, before Commit too.
func (t *sqliteTarget) Digests(ctx context.Context) ([]engine.TableDigest, error) {
	if t.masked != nil {
		return sqlite.MaskedDigests(ctx, t.loadedPath(), t.masked)
	}
	if t.staged != "" {
		return sqlite.Digests(ctx, t.staged)
	}
	return sqlite.Digests(ctx, t.path)
}

// loadedPath is where Load put the database.
func (t *sqliteTarget) loadedPath() string {
	if t.staged != "" {
		return t.staged
	}
	return t.path
}

// MaskExpected implements maskedTarget: the backup's kept columns.
func (t *sqliteTarget) MaskExpected() []engine.TableDigest {
	if t.masked == nil {
		return nil
	}
	return t.masked.Expected()
}

// PlantCanaries implements canaryTarget, in the loaded file.
func (t *sqliteTarget) PlantCanaries(ctx context.Context, cs []mask.Canary) error {
	if err := sqlite.PlantCanaries(ctx, t.loadedPath(), t.mask, cs); err != nil {
		return err
	}
	t.notes = append(t.notes, fmt.Sprintf("%d canary customers were planted in %s", len(cs), t.mask.Rules.Canaries.Table))
	return nil
}

// dropMasked removes the private masked copy.
func (t *sqliteTarget) dropMasked() {
	if t.masked != nil {
		t.masked.Close()
		t.masked = nil
	}
}

// Commit implements Target: a staged file takes path's name, the old one
// kept as PATH.before-TIME unless dropOld.
func (t *sqliteTarget) Commit(context.Context) ([]string, error) {
	t.dropMasked()
	if t.staged == "" {
		return nil, nil
	}
	note, err := sqlite.Replace(t.staged, t.path, t.dropOld, t.now)
	if err != nil {
		sqlite.RemoveDatabase(t.staged)
		t.staged = ""
		return nil, err
	}
	t.staged = ""
	if note == "" {
		return nil, nil
	}
	return []string{note}, nil
}

// Abort implements Target: removes what Load wrote; a file it was to
// replace is left as it was.
func (t *sqliteTarget) Abort(context.Context) error {
	t.dropMasked()
	switch {
	case t.staged != "":
		err := sqlite.RemoveDatabase(t.staged)
		t.staged = ""
		return err
	case t.created:
		t.created = false
		return sqlite.RemoveDatabase(t.path)
	}
	return nil
}

// Notes implements Target.
func (t *sqliteTarget) Notes() []string { return t.notes }

func (t *sqliteTarget) String() string { return "sqlite:" + t.path }

func (t *sqliteTarget) Engine() string { return "sqlite" }
