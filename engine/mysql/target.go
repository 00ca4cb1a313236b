package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"

	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/engine/command"
)

// Target is a MariaDB or MySQL server that snapshots are restored into.
// A snapshot of one database is loaded into the address's database (or,
// without one, under its own name); a snapshot of several databases
// loads each under its own name.
//
// The client loads a dump one statement at a time and the restored stream
// arrives in order, so databases are loaded one after the other: jobs is
// accepted for symmetry with other engines and does not apply.
type Target struct {
	c      *conn
	t      *tools
	clean  bool
	jobs   int
	loaded []mapping
}

// mapping is a database of the snapshot and where it was loaded.
type mapping struct{ from, to string }

// NewTarget returns the target at dsn (mysql://USER@HOST:PORT/[DATABASE]).
// With clean, databases that hold tables are dropped and re-created;
// without it they are refused. The password comes from MYSQL_PWD or the
// file named by COFFER_MYSQL_PASSWORD_FILE.
func NewTarget(dsn string, opts TargetOptions) (*Target, error) {
	clean, jobs := opts.Clean, opts.Jobs
	c, err := newConn(dsn)
	if err != nil {
		return nil, err
	}
	t, err := findTools(context.Background())
	if err != nil {
		return nil, err
	}
	return &Target{c: c, t: t, clean: clean, jobs: jobs}, nil
}

// TargetOptions tune a Target; see restore.TargetOptions, which they mirror.
type TargetOptions struct {
	Clean, DropOld bool
	Jobs           int
	TrustSnapshot  bool
	Scratch        bool
}

// Commit implements restore.Target.
func (t *Target) Commit(ctx context.Context) ([]string, error) { return nil, nil }

// Abort implements restore.Target.
func (t *Target) Abort(ctx context.Context) error { return nil }

// Notes implements restore.Target.
func (t *Target) Notes() []string { return nil }

// Engine implements restore.Target.
func (t *Target) Engine() string { return "mysql" }

// String names the target without secrets.
func (t *Target) String() string { return t.c.String() }

// plan maps the snapshot's parts to target databases.
func (t *Target) plan(parts []engine.Part) ([]mapping, error) {
	if len(parts) == 0 {
		return nil, errors.New("the snapshot records no databases: restore it with --output and load it by hand")
	}
	var m []mapping
	for _, p := range parts {
		name, ok := strings.CutSuffix(p.Name, ".sql")
		if !ok || name == "" {
			return nil, fmt.Errorf("snapshot part %q is not a MySQL dump (<database>.sql)", p.Name)
		}
		m = append(m, mapping{from: name, to: name})
	}
	if t.c.db != "" {
		if len(m) > 1 {
			names := make([]string, len(m))
			for i := range m {
				names[i] = m[i].from
			}
			return nil, fmt.Errorf("the snapshot holds %d databases (%s), which load under their own names: give an address without a database, e.g. mysql://%s@%s/", len(m), strings.Join(names, ", "), t.c.user, t.c.addr())
		}
		m[0].to = t.c.db
	}
	return m, nil
}

// Load implements restore.Target. Every target database is checked, and
// created or (with clean) re-created, before anything is loaded.
func (t *Target) Load(ctx context.Context, r io.Reader, rep engine.Report) error {
	m, err := t.plan(rep.Parts)
	if err != nil {
		return err
	}
	db, err := t.c.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := t.prepare(ctx, db, m); err != nil {
		return err
	}
	t.loaded = m
	i := 0
	return engine.Split(r, rep.Parts, func(_ engine.Part, pr io.Reader) error {
		to := m[i].to
		i++
		if err := t.load(ctx, to, pr); err != nil {
			return fmt.Errorf("load database %q at %s: %w; it is partially loaded: drop it, or restore again with --clean", to, t.c.addr(), err)
		}
		return nil
	})
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// prepare refuses databases with tables unless clean, then creates the
// databases the load needs.
func (t *Target) prepare(ctx context.Context, db *sql.DB, m []mapping) error {
	exists := map[string]bool{}
	var busy []string
	for _, x := range m {
		var n int
		err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", x.to).Scan(&n)
		if err != nil {
			return fmt.Errorf("check database %q at %s: %w", x.to, t.c.addr(), err)
		}
		exists[x.to] = n > 0
		if n == 0 {
			continue
		}
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?", x.to).Scan(&n); err != nil {
			return fmt.Errorf("check database %q at %s: %w", x.to, t.c.addr(), err)
		}
		if n > 0 {
			busy = append(busy, fmt.Sprintf("%q (%d tables)", x.to, n))
		}
	}
	if len(busy) > 0 && !t.clean {
		return fmt.Errorf("restore target %s: database %s is not empty; nothing was loaded: restore into another database, or pass --clean to drop and re-create it", t, strings.Join(busy, ", "))
	}
	for _, x := range m {
		if exists[x.to] && t.clean {
			if _, err := db.ExecContext(ctx, "DROP DATABASE "+quoteIdent(x.to)); err != nil {
				return fmt.Errorf("drop database %q at %s for --clean: %w", x.to, t.c.addr(), err)
			}
		}
		if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+quoteIdent(x.to)+" CHARACTER SET utf8mb4"); err != nil {
			return fmt.Errorf("create database %q at %s: %w", x.to, t.c.addr(), err)
		}
	}
	return nil
}

// load pipes one database's dump into the client.
func (t *Target) load(ctx context.Context, db string, r io.Reader) error {
	optFile, remove, err := t.c.optionFile()
	if err != nil {
		return err
	}
	defer remove()
	args := append(t.c.connArgs(optFile), "--binary-mode", "--default-character-set=utf8mb4", "--max-allowed-packet=1G", db)
	cmd := exec.CommandContext(ctx, t.t.client, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	stderr := command.NewTail(4096)
	cmd.Stderr, cmd.Stdout = stderr, io.Discard
	// A stream that fails must not reach the client as an end of input,
	// on which it would run a half-read statement: kill it first.
	in := command.NewStdin(r, cmd)
	cmd.Stdin = in
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", t.t.client, err)
	}
	err = cmd.Wait()
	if in.Err() != nil {
		return in.Err()
	}
	if err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return fmt.Errorf("%s: %w: %s", t.t.client, err, msg)
		}
		return fmt.Errorf("%s: %w", t.t.client, err)
	}
	return nil
}

// Digests implements restore.Target: the digests of the loaded databases,
// under the names they have in the snapshot.
func (t *Target) Digests(ctx context.Context) ([]engine.TableDigest, error) {
	m := t.loaded
	if m == nil {
		if t.c.db == "" {
			return nil, fmt.Errorf("restore target %s: nothing was loaded and the address names no database", t)
		}
		m = []mapping{{from: t.c.db, to: t.c.db}}
	}
	dg := engine.NewDigester()
	for _, x := range m {
		dump := engine.PartSource{Name: x.to, Open: func(ctx context.Context) (io.ReadCloser, error) {
			return t.c.startDump(ctx, t.t, x.to, x.from, dg, nil)
		}}
		if err := dump.Drain(ctx); err != nil {
			return nil, fmt.Errorf("digest database %q at %s: %w", x.to, t.c.addr(), err)
		}
	}
	return dg.Result(), nil
}
