package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"
)

// maxGlobals bounds the globals part read into memory: pg_dumpall's
// globals of a server with thousands of roles are a few MiB.
const maxGlobals = 64 << 20

// applyGlobals applies the snapshot's globals part (pg_dumpall
// --globals-only) only when the operator asked (TargetOptions.Globals),
// and then only as coffer's own statements over this connection:
// ParseGlobals understands the script, and Plan keeps CREATE ROLE for
// roles that do not exist (never an ALTER of an existing role, never the
// connecting user; SUPERUSER, REPLICATION and BYPASSRLS only with "all").
// Drills never apply globals: they create only the roles the objects need
// (createScratchRoles).
func (t *Target) applyGlobals(ctx context.Context, pc *pgx.Conn, r io.Reader) error {
	switch {
	case t.opts.Scratch:
		return nil
	case t.opts.Globals == "":
		t.note("the snapshot's roles and tablespaces (%s) were not applied: objects owned by a role missing here are owned by the database's owner, and grants to missing roles are left out; to create the missing roles first, restore with --globals=roles", GlobalsPart)
		return nil
	}
	script, err := io.ReadAll(io.LimitReader(r, maxGlobals+1))
	if err != nil {
		return fmt.Errorf("read the globals (%s): %w; no database was loaded", GlobalsPart, err)
	}
	if len(script) > maxGlobals {
		return fmt.Errorf("the globals (%s) are larger than %d MiB, more than any server's roles: the snapshot is not what pg_dumpall writes; no database was loaded", GlobalsPart, maxGlobals>>20)
	}
	return t.applyGlobalsPlan(ctx, pc, script)
}

// applyGlobalsPlan parses the globals (ParseGlobals), plans what to
// apply to this server (Globals.PlanFor) and runs the plan's statements,
// each on its own. The roles it created are recorded for Abort and named
// in the notes, with what was left out.
func (t *Target) applyGlobalsPlan(ctx context.Context, pc *pgx.Conn, script []byte) (err error) {
	g, err := ParseGlobals(script)
	if err != nil {
		return fmt.Errorf("%w; no database was loaded", err)
	}
	existing, err := ExistingRoles(ctx, pc)
	if err != nil {
		return fmt.Errorf("%w; no database was loaded", err)
	}
	plan := g.PlanFor(existing, t.opts.Globals, t.srv.major)
	defer func() {
		// Whatever happened, the roles that exist now and did not before
		// are this restore's.
		now, rerr := readRoles(context.WithoutCancel(ctx), pc)
		if rerr != nil {
			err = errors.Join(err, rerr)
			return
		}
		var made []string
		for _, name := range plan.Created {
			if _, ok := now[name]; ok {
				if _, before := existing[name]; !before {
					t.created = append(t.created, createdRole{name: name, why: "globals"})
					made = append(made, fmt.Sprintf("%q", name))
				}
			}
		}
		t.roles = now
		if len(made) > 0 && err == nil {
			t.note("created %s from the snapshot's globals (--globals=%s): %s", count(len(made), "role", "roles"), t.opts.Globals, strings.Join(made, ", "))
		}
	}()
	for i, stmt := range plan.Statements {
		if _, err := pc.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("apply the globals at %s: statement %d of %d: %w; no database was loaded", t.c.addr(), i+1, len(plan.Statements), err)
		}
	}
	if len(plan.Created) == 0 {
		t.note("the snapshot's globals (--globals=%s) create no role here: every role they define exists and was left unchanged", t.opts.Globals)
	}
	for _, n := range plan.Notes {
		t.note("globals: %s", n)
	}
	for _, ts := range g.Tablespaces {
		t.note("globals: tablespace %s was not created (a tablespace is a directory on the server: create it yourself if you need it)", display(ts.Name))
	}
	if len(g.Skipped) > 0 {
		t.note("globals: not applied: %s", strings.Join(firstN(g.Skipped, 10), "; "))
	}
	return nil
}
