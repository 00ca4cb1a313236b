package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/engine/command"
)

// preflight reads the server's roles and checks, before anything is
// created, that the options and the connecting user allow the load.
func (t *Target) preflight(ctx context.Context, pc *pgx.Conn) error {
	var err error
	if t.roles, err = readRoles(ctx, pc); err != nil {
		return fmt.Errorf("PostgreSQL server at %s: %w", t.c.addr(), err)
	}
	if o := t.opts.Owner; o != "" {
		if ok, why := t.roles.ownable(o); !ok {
			return fmt.Errorf("owner %q %s: give a role that exists and is neither a superuser nor allowed to create roles or use the server's programs and files; nothing was loaded", o, why)
		}
	}
	if t.opts.TrustSnapshot || t.srv.superuser {
		return nil
	}
	var createRole bool
	if err := pc.QueryRow(ctx, "SELECT rolcreaterole FROM pg_catalog.pg_roles WHERE rolname = current_user").Scan(&createRole); err != nil {
		return fmt.Errorf("PostgreSQL server at %s: read the rights of user %q: %w", t.c.addr(), t.c.user, err)
	}
	if !createRole {
		return fmt.Errorf("user %q at %s may not create roles: coffer loads a snapshot as a throwaway role it creates, so that nothing in the snapshot runs with %q's rights; connect as a user with CREATEROLE (or a superuser), or, for a snapshot you trust, pass --trust-snapshot to load it as %q; nothing was loaded", t.c.user, t.c.addr(), t.c.user, t.c.user)
	}
	return nil
}

// loadDatabase reads the dump's table of contents, creates the database,
// restores the dump into it as a load role and then applies the owners
// and grants the dump recorded.
func (t *Target) loadDatabase(ctx context.Context, pc *pgx.Conn, x *loadDB, r io.Reader) error {
	// The header and TOC come first; keep the bytes read to replay them.
	var head bytes.Buffer
	tee := &stopWriter{w: &head}
	a := newArchive(io.TeeReader(r, tee), x.from, engine.NewDigester())
	if err := a.readHeader(); err != nil {
		return fmt.Errorf("restore database %q: %w", x.from, err)
	}
	hdrEnd := a.offset()
	if err := a.readTOC(); err != nil {
		return fmt.Errorf("restore database %q: %w", x.from, err)
	}
	var spooled *os.File
	if t.opts.Mask != nil {
		// Rewritten, checked and spooled before anything is created.
		tee.stopped = true
		f, err := t.maskArchive(a, head.Bytes(), hdrEnd)
		if err != nil {
			return err
		}
		defer f.Close()
		spooled, r = f, nil
	} else {
		r = io.MultiReader(&head, r)
	}
	dbEntry := a.entry("DATABASE")
	// The database exists before any role made for it: a drill's
	// cleanup drops the roles of scratch databases that do not exist.
	if err := t.createDatabase(ctx, pc, x, dbEntry); err != nil {
		return err
	}
	if x.exists && !x.replaces() && a.empty() {
		// e.g. the postgres database of an --all-databases snapshot:
		// nothing to load, and no role to make for it.
		t.note("database %q of the snapshot holds no objects: nothing was loaded into %q, which exists", x.from, x.into)
		x.loaded = true
		return nil
	}
	if t.opts.TrustSnapshot {
		if err := t.pgRestore(ctx, x, a, nil, r, spooled); err != nil {
			return err
		}
		t.note("database %q was loaded as %q with all of that user's rights (--trust-snapshot), owners and grants as the snapshot recorded them", x.to, t.c.user)
		x.loaded = true
		return nil
	}
	own, err := t.planOwnership(a, x.into)
	if err != nil {
		return fmt.Errorf("restore database %q: %w", x.from, err)
	}
	lr, err := t.createLoadRole(ctx, pc, x.into)
	if err != nil {
		return err
	}
	x.load = lr
	if _, err := pc.Exec(ctx, "ALTER DATABASE "+quoteIdent(x.into)+" OWNER TO "+quoteIdent(lr.name)); err != nil {
		return fmt.Errorf("hand database %q at %s to the load role %q: %w", x.into, t.c.addr(), lr.name, err)
	}
	if t.opts.Scratch {
		if err := t.createScratchRoles(ctx, pc, x.to, own.needed); err != nil {
			return err
		}
	}
	recorded := ""
	if dbEntry != nil {
		recorded = dbEntry.owner
	}
	if err := t.chooseOwner(ctx, pc, x, recorded); err != nil {
		return err
	}
	if a.entry("SUBSCRIPTION") != nil {
		t.note("database %q: the snapshot's subscriptions were not restored: a restored copy must not start replicating from another server", x.to)
	}
	if err := t.pgRestore(ctx, x, a, lr, r, spooled); err != nil {
		return err
	}
	if err := t.closeLoadRole(ctx, pc, x.into, lr); err != nil {
		return err
	}
	if err := t.applyOwnership(ctx, pc, x, own); err != nil {
		return err
	}
	if err := t.dropLoadRole(ctx, pc, x); err != nil {
		return err
	}
	x.loaded = true
	return nil
}

// empty reports whether an archive holds nothing but the settings of its
// session and the database's own entries (pg_restore loads those only
// with --create).
func (a *archive) empty() bool {
	for _, e := range a.ordered() {
		switch {
		case e.desc == "ENCODING", e.desc == "STDSTRINGS", e.desc == "SEARCHPATH", e.desc == "DATABASE",
			e.desc == "DATABASE PROPERTIES", strings.HasPrefix(e.tag, "DATABASE ") && (e.desc == "COMMENT" || e.desc == "ACL"):
		default:
			return false
		}
	}
	return true
}

// createDatabase creates the database x is loaded into, owned for now
// by the connecting user, with the options (encoding, locale) the dump
// recorded, rebuilt from parsed values. Of an existing empty database
// that is loaded in place it records the settings.
func (t *Target) createDatabase(ctx context.Context, pc *pgx.Conn, x *loadDB, e *tocEntry) error {
	if x.exists && !x.replaces() {
		var err error
		x.settings, err = dbSettings(ctx, pc, x.into)
		return err
	}
	if _, err := pc.Exec(ctx, t.createStatement(e, x.into)); err != nil {
		return fmt.Errorf("create database %q at %s: %w", x.into, t.c.addr(), err)
	}
	x.created = true
	return nil
}

// restoreTail is how much of pg_restore's (verbose) standard error is
// kept to explain a failure.
const restoreTail = 64 << 10

// pgRestore runs pg_restore into x.into, logged in as lr (the connecting
// user when nil, for a trusted snapshot), reading the dump from r, or from
// spooled (a masked archive) when set. With jobs > 1 the dump is first
// spooled to an unlinked file (spool).
func (t *Target) pgRestore(ctx context.Context, x *loadDB, a *archive, lr *loadRole, r io.Reader, spooled *os.File) error {
	args := []string{"--verbose", "--exit-on-error", "--no-password"}
	env, user := t.c.env(x.into), t.c.user
	if lr != nil {
		// Owners, grants and tablespaces are the snapshot's claims
		// about the server: coffer applies owners and grants itself,
		// and a tablespace is a directory on the server.
		args = append(args, "--no-owner", "--no-privileges", "--no-tablespaces", "--no-subscriptions")
		env, user = t.c.envAs(x.into, lr.name, lr.password), lr.name
	}
	args = append(args, "--dbname="+conninfo("dbname", x.into, "user", user))
	spool := spooled
	switch {
	case spool == nil && t.jobs > 1:
		f, err := t.spool(r)
		if err != nil {
			return fmt.Errorf("load database %q: %w", x.into, err)
		}
		defer f.Close()
		spool, r = f, nil
	}
	if t.jobs > 1 {
		args = append(args, "--jobs="+strconv.Itoa(t.jobs))
	} else {
		args = append(args, "--single-transaction")
	}
	if spool != nil {
		args = append(args, "/dev/fd/3")
	}
	cmd := command.New(ctx, env, append([]string{t.t.path["pg_restore"]}, args...)...)
	stderr := command.NewTail(restoreTail)
	cmd.Stderr, cmd.Stdout = stderr, io.Discard
	var in *command.Stdin
	if spool != nil {
		cmd.ExtraFiles = []*os.File{spool} // fd 3
	} else {
		// A stream that fails must not reach pg_restore as an end of
		// input: kill it first.
		in = command.NewStdin(r, cmd)
		cmd.Stdin = in
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start pg_restore: %w", err)
	}
	err := cmd.Wait()
	if in != nil && in.Err() != nil {
		return fmt.Errorf("load database %q: %w", x.into, in.Err())
	}
	if err != nil {
		return t.restoreError(x, a, lr, err, stderr.String())
	}
	return nil
}

// spool writes the dump to a file that pg_restore -j can read in
// parallel, and that no one else can: it is created in a new 0700
// directory and unlinked at once, so it is gone with the last process
// that holds it open (coffer and pg_restore, which reads it as
// /dev/fd/3), even after kill -9.
func (t *Target) spool(r io.Reader) (*os.File, error) {
	f, err := t.spoolFile()
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool the dump to an unlinked file in %s: %w", t.spoolDir(), err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool the dump: %w", err)
	}
	return f, nil
}

func (t *Target) spoolDir() string {
	if t.TempDir != "" {
		return t.TempDir
	}
	return os.TempDir()
}

// spoolFile creates an empty unlinked file that only coffer can read.
func (t *Target) spoolFile() (*os.File, error) {
	dir, err := os.MkdirTemp(t.TempDir, "coffer-pg-restore-") // mode 0700
	if err != nil {
		return nil, fmt.Errorf("spool the dump: %w", err)
	}
	path := filepath.Join(dir, "dump.pgdump")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	rerr := errors.Join(os.Remove(path), os.Remove(dir))
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("spool the dump: %w", err)
	}
	if rerr != nil {
		f.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("spool the dump: unlink %s: %w", path, rerr)
	}
	return f, nil
}

// conninfo is a libpq connection string of key, value pairs, each value
// quoted, so that a name is never read as options.
func conninfo(kv ...string) string {
	var b strings.Builder
	q := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(kv[i] + "='" + q.Replace(kv[i+1]) + "'")
	}
	return b.String()
}

// tocLine is pg_restore's (verbose) line naming the entry that failed:
// "from TOC entry 3344; 0 17993 MATERIALIZED VIEW DATA mv postgres".
var tocLine = regexp.MustCompile(`(?m)^pg_restore: from TOC entry (\d+); `)

// restoreError explains a failed pg_restore: which object of the
// snapshot failed, the server's error, and, for a load as a load role,
// that the snapshot asked for more than a database owner may do.
func (t *Target) restoreError(x *loadDB, a *archive, lr *loadRole, err error, stderr string) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() < 0 {
		err = fmt.Errorf("killed (%s)", ee.String())
	}
	object := ""
	if m := tocLine.FindAllStringSubmatchIndex(stderr, -1); m != nil {
		first := m[0] // with -j, later workers may report their own ends
		id, _ := strconv.ParseInt(stderr[first[2]:first[3]], 10, 64)
		if e := a.entries[id]; e != nil {
			name := e.tag
			if e.namespace != "" {
				name = e.namespace + "." + e.tag
			}
			object = fmt.Sprintf("%s %q (TOC entry %d)", e.desc, name, id)
		} else {
			object = fmt.Sprintf("TOC entry %d", id)
		}
		stderr = stderr[first[1]:]
	}
	msg := serverError(stderr)
	var b strings.Builder
	fmt.Fprintf(&b, "load database %q at %s: pg_restore %v", x.into, t.c.addr(), err)
	if object != "" {
		fmt.Fprintf(&b, "; the snapshot's %s failed", object)
	}
	if msg != "" {
		fmt.Fprintf(&b, ": %s", msg)
	}
	if lr != nil {
		fmt.Fprintf(&b, "\ncoffer loads a snapshot as role %q, which owns the new database and nothing else and is not a superuser, "+
			"so that nothing a backup host wrote runs with more rights: if this snapshot is one you trust and it needs more "+
			"(an extension only a superuser may create, an event trigger…), restore it again with --trust-snapshot, "+
			"which loads it as %q with all of that user's rights", lr.name, t.c.user)
	}
	return errors.New(b.String())
}

// serverError is the first error pg_restore printed, with the server's
// hint and context, without the statement (which may be long).
func serverError(stderr string) string {
	i := strings.Index(stderr, "error: ")
	if i < 0 {
		return strings.TrimSpace(lastLines(stderr, 3))
	}
	s := stderr[i+len("error: "):]
	s = strings.TrimPrefix(s, "could not execute query: ")
	if j := strings.Index(s, "\nCommand was:"); j >= 0 {
		s = s[:j]
	}
	if j := strings.Index(s, "\npg_restore:"); j >= 0 {
		s = s[:j]
	}
	s = strings.Join(strings.Fields(s), " ")
	return truncate(s, 600)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "; ")
}

// truncate cuts s to at most n bytes, at a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
