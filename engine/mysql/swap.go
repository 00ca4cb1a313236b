package mysql

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/coffer-backup/coffer/engine"
)

// restore --clean never loses the database it replaces. Load puts the
// snapshot into a new database NAME_coffer_new_<time> beside NAME, the
// caller verifies it, and only then Commit swaps them. MariaDB has no
// RENAME DATABASE, so the swap moves tables: one RENAME TABLE statement,
// atomic, moves NAME's tables to NAME_before_<time> and the new ones to
// NAME. Views, routines and events cannot move between databases, and a
// table with triggers cannot either; so before the RENAME coffer reads
// their definitions (SHOW CREATE) and drops the triggers (and NAME's
// views, whose names the new tables may take), and after it creates them
// again where they now belong: NAME's old objects in NAME_before_<time>,
// the snapshot's in NAME. An object whose definer was the database's
// definer account (coffer_definer_<db>) gets the account of the database
// it moves to; other definers stay as they were. If anything fails before
// the RENAME, what was dropped is put back and NAME is as it was: the
// error says so, and that the verified copy is kept. NAME_before_<time>
// stays until the operator drops it (or --drop-old drops it at once).
//
// While the swap runs (the time of a few DDL statements), NAME has no
// triggers or views: a write to NAME in that moment fires no trigger, and
// a coffer killed in that moment leaves NAME's tables (all their rows)
// without them. The swap does the least it can between dropping and
// creating them.

const (
	newInfix    = "_coffer_new_"
	beforeInfix = "_before_"
	stampFormat = "20060102150405"
	maxName     = 64 // characters in a database name
)

// suffixed is name+infix+stamp, name cut so that the whole fits in 64
// characters, in a GRANT too (where _ and % are escaped).
func suffixed(name, infix string, at time.Time) string {
	suffix := infix + at.UTC().Format(stampFormat)
	r := []rune(name)
	for len(r) > 0 && !grantable(string(r)+suffix) {
		r = r[:len(r)-1]
	}
	return string(r) + suffix
}

func newDatabaseName(name string, at time.Time) string { return suffixed(name, newInfix, at) }

// newLock names the lock that Load holds while it loads a new database:
// a new database whose lock is free was left by a killed restore.
func newLock(db string) string {
	h := sha256.Sum256([]byte(db))
	return "coffer_new_" + hex.EncodeToString(h[:16])
}

// sweepNew drops the new databases that a killed restore into name left:
// NAME_coffer_new_<time> whose lock nobody holds.
func (t *Target) sweepNew(ctx context.Context, a *admin, name string) {
	prefix := strings.TrimSuffix(suffixed(name, newInfix, time.Time{}), time.Time{}.Format(stampFormat))
	like := strings.NewReplacer(`\`, `\\`, `_`, `\_`, `%`, `\%`).Replace(prefix) + "%"
	rows, err := a.conn.QueryContext(ctx, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?", like)
	if err != nil {
		return
	}
	exact := regexp.MustCompile("^" + regexp.QuoteMeta(prefix) + "[0-9]{14}$")
	var stale []string
	for rows.Next() {
		var s string
		if rows.Scan(&s) == nil && exact.MatchString(s) {
			stale = append(stale, s)
		}
	}
	rows.Close()
	for _, s := range stale {
		if a.free(ctx, newLock(s)) && a.exec(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(s)) == nil {
			a.dropDefiner(ctx, s)
			t.note("dropped database %q, which a killed restore into %q had left", s, name)
		}
	}
}

// swap puts x.into in x.to's place and keeps x.to's old content in a new
// database NAME_before_<time> (dropped at once with DropOld).
func (t *Target) swap(ctx context.Context, a *admin, x *mapping) ([]string, error) {
	before := suffixed(x.to, beforeInfix, t.now())
	untouched := fmt.Sprintf("database %q is untouched, and the verified copy of the snapshot is kept in database %q", x.to, x.into)
	fail := func(err error) ([]string, error) {
		return nil, fmt.Errorf("replace database %q at %s: %w; %s: rename its tables by hand, or restore again", x.to, t.c.addr(), err, untouched)
	}
	if n, err := a.count(ctx, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", before); err != nil || n > 0 {
		return fail(fmt.Errorf("database %q exists already (%v)", before, err))
	}
	oldObjs, err := a.listObjects(ctx, x.to)
	if err != nil {
		return fail(err)
	}
	newObjs, err := a.listObjects(ctx, x.into)
	if err != nil {
		return fail(err)
	}
	oldTables, err := a.baseTables(ctx, x.to)
	if err != nil {
		return fail(err)
	}
	newTables, err := a.baseTables(ctx, x.into)
	if err != nil {
		return fail(err)
	}
	var cs, coll string
	if err := a.conn.QueryRowContext(ctx, "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", x.to).Scan(&cs, &coll); err != nil {
		return fail(err)
	}
	if err := a.exec(ctx, "CREATE DATABASE "+quoteIdent(before)+" CHARACTER SET "+quoteIdent(cs)+" COLLATE "+quoteIdent(coll)); err != nil {
		return fail(err)
	}
	a.exec(ctx, "SET SESSION lock_wait_timeout = 60")

	// Detach what a RENAME TABLE between databases cannot take along.
	var gone []placed
	undo := func(cause error) ([]string, error) {
		var errs []error
		for _, d := range gone {
			_, err := a.createAll(ctx, d.db, []*object{d.o}, account{}, account{})
			errs = append(errs, err)
		}
		errs = append(errs, a.exec(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(before)))
		if err := errors.Join(errs...); err != nil {
			return nil, fmt.Errorf("replace database %q at %s: %w; putting back its triggers and views also failed: %v; the verified copy of the snapshot is kept in database %q", x.to, t.c.addr(), cause, err, x.into)
		}
		return fail(cause)
	}
	for _, d := range append(objectsOf(x.to, oldObjs, "TRIGGER", "VIEW"), objectsOf(x.into, newObjs, "TRIGGER")...) {
		if err := a.dropObject(ctx, d.db, d.o); err != nil {
			return undo(err)
		}
		gone = append(gone, d)
	}
	var renames []string
	for _, tb := range oldTables {
		renames = append(renames, quoteIdent(x.to)+"."+quoteIdent(tb)+" TO "+quoteIdent(before)+"."+quoteIdent(tb))
	}
	for _, tb := range newTables {
		renames = append(renames, quoteIdent(x.into)+"."+quoteIdent(tb)+" TO "+quoteIdent(x.to)+"."+quoteIdent(tb))
	}
	if len(renames) > 0 {
		if err := a.exec(ctx, "RENAME TABLE "+strings.Join(renames, ", ")); err != nil {
			return undo(fmt.Errorf("move the tables: %w", err))
		}
	}

	// Swapped: the tables are where they belong. Now the objects.
	var errs []error
	for _, d := range objectsOf(x.to, oldObjs, "PACKAGE BODY", "PACKAGE", "FUNCTION", "PROCEDURE", "EVENT") {
		errs = append(errs, a.dropObject(ctx, d.db, d.o))
	}
	// The snapshot's objects were made in the new database and must work;
	// the old ones may have been broken already (a view of a dropped
	// table): what cannot be made again is kept as its definition.
	if failed, err := t.move(ctx, a, oldObjs, x.to, before); err != nil {
		errs = append(errs, t.keepDefinitions(ctx, a, before, failed, err))
	}
	if _, err := t.move(ctx, a, newObjs, x.into, x.to); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, a.exec(ctx, "DROP DATABASE "+quoteIdent(x.into)), a.dropDefiner(ctx, x.into))
	a.unlock(ctx, newLock(x.into))
	notes := []string{fmt.Sprintf("database %q now holds the snapshot; what it held before is kept in database %q: drop it when you no longer need it", x.to, before)}
	if t.opts.DropOld {
		errs = append(errs, a.exec(ctx, "DROP DATABASE "+quoteIdent(before)), a.dropDefiner(ctx, before))
		notes = []string{fmt.Sprintf("database %q now holds the snapshot; what it held before was dropped (--drop-old)", x.to)}
	}
	if err := errors.Join(errs...); err != nil {
		return notes, fmt.Errorf("replace database %q at %s: its tables were swapped (it holds the snapshot, its old tables are in %q), but: %w", x.to, t.c.addr(), before, err)
	}
	return notes, nil
}

// move creates objs, read from database from, in database to. Objects
// defined by from's definer account are defined by to's. It returns those
// it could not make.
func (t *Target) move(ctx context.Context, a *admin, objs []*object, from, to string) ([]*object, error) {
	if len(objs) == 0 {
		return nil, nil
	}
	for _, o := range objs {
		if o.definer == definerFor(from).definer() {
			if _, err := a.ensureDefiner(ctx, to); err != nil {
				return objs, err
			}
			break
		}
	}
	return a.createAll(ctx, to, objs, definerFor(from), definerFor(to))
}

// lostTable holds the definitions of the objects a swap could not make
// again in the database that keeps the old content.
const lostTable = "coffer_objects_not_moved"

// keepDefinitions stores the definitions of objs in a table of db, and
// says so in a note; it returns an error only if it cannot.
func (t *Target) keepDefinitions(ctx context.Context, a *admin, db string, objs []*object, why error) error {
	tbl := quoteIdent(db) + "." + quoteIdent(lostTable)
	if err := a.exec(ctx, "CREATE TABLE "+tbl+" (kind VARCHAR(20), name VARCHAR(64), definition LONGBLOB, sql_mode TEXT, error TEXT)"); err != nil {
		return fmt.Errorf("%w; keeping their definitions failed too: %v", why, err)
	}
	var names []string
	for _, o := range objs {
		if err := a.exec(ctx, "INSERT INTO "+tbl+" VALUES (?, ?, ?, ?, ?)", o.kind, o.name, o.create, o.sqlMode, why.Error()); err != nil {
			return fmt.Errorf("%w; keeping their definitions failed too: %v", why, err)
		}
		names = append(names, o.String())
	}
	t.note("%s of the replaced database could not be made again in %q (%v); their definitions are kept in its table %s", strings.Join(names, ", "), db, why, lostTable)
	return nil
}

// placed is an object and its database.
type placed struct {
	db string
	o  *object
}

// objectsOf are the objects of objs of the given kinds, in database db.
func objectsOf(db string, objs []*object, kinds ...string) []placed {
	var out []placed
	for _, o := range objs {
		for _, k := range kinds {
			if o.kind == k {
				out = append(out, placed{db, o})
			}
		}
	}
	return out
}

// baseTables are db's tables, sequences included, views not.
func (a *admin) baseTables(ctx context.Context, db string) ([]string, error) {
	out, err := engine.QueryStrings(ctx, a.conn, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE <> 'VIEW' ORDER BY TABLE_NAME", db)
	if err != nil {
		return nil, fmt.Errorf("list the tables of database %q at %s: %w", db, a.c.addr(), err)
	}
	return out, nil
}
