package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// object is a view, trigger, routine or event of a database, with what
// it takes to create it again elsewhere or with another definer: the
// statement the server gives for it (SHOW CREATE, its raw bytes) and the
// session settings it was created under.
type object struct {
	db      string // where it was read
	kind    string // VIEW, TRIGGER, PROCEDURE, FUNCTION, PACKAGE, PACKAGE BODY, EVENT
	name    string
	definer string // user@host
	create  []byte
	sqlMode string
	charset string // character_set_client
	coll    string // collation_connection
	tz      string // events
}

func (o *object) String() string { return strings.ToLower(o.kind) + " " + quoteIdent(o.name) }

// kindOrder is the order objects are created in: routines before the
// views that may call them, triggers once their tables are there.
var kindOrder = []string{"PACKAGE", "PACKAGE BODY", "FUNCTION", "PROCEDURE", "VIEW", "TRIGGER", "EVENT"}

// listObjects returns database db's objects in kindOrder, triggers in
// their order of action, with their statements.
func (a *admin) listObjects(ctx context.Context, db string) ([]*object, error) {
	queries := []string{
		`SELECT 'VIEW', TABLE_NAME, DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME`,
		`SELECT ROUTINE_TYPE, ROUTINE_NAME, DEFINER FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? ORDER BY ROUTINE_TYPE, ROUTINE_NAME`,
		`SELECT 'TRIGGER', TRIGGER_NAME, DEFINER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?
			ORDER BY EVENT_OBJECT_TABLE, EVENT_MANIPULATION, ACTION_TIMING, ACTION_ORDER`,
		`SELECT 'EVENT', EVENT_NAME, DEFINER FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? ORDER BY EVENT_NAME`,
	}
	byKind := map[string][]*object{}
	for _, q := range queries {
		rows, err := a.conn.QueryContext(ctx, q, db)
		if err != nil {
			return nil, fmt.Errorf("list the objects of database %q at %s: %w", db, a.c.addr(), err)
		}
		for rows.Next() {
			o := &object{db: db}
			if err := rows.Scan(&o.kind, &o.name, &o.definer); err != nil {
				rows.Close()
				return nil, err
			}
			byKind[o.kind] = append(byKind[o.kind], o)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, err
		}
	}
	var out []*object
	for _, k := range kindOrder {
		out = append(out, byKind[k]...)
		delete(byKind, k)
	}
	for k := range byKind {
		return nil, fmt.Errorf("database %q at %s holds a %s, which coffer cannot move", db, a.c.addr(), k)
	}
	if len(out) == 0 {
		return nil, nil
	}
	if err := a.use(ctx, db); err != nil {
		return nil, err
	}
	// Raw bytes, as the server holds them: mariadb-dump reads them so too.
	if err := a.exec(ctx, "SET SESSION character_set_results = binary"); err != nil {
		return nil, err
	}
	defer a.exec(context.WithoutCancel(ctx), "SET SESSION character_set_results = utf8mb4")
	for _, o := range out {
		if err := a.showCreate(ctx, o); err != nil {
			return nil, fmt.Errorf("read the definition of %s in database %q at %s: %w", o, db, a.c.addr(), err)
		}
	}
	return out, nil
}

// use makes db the connection's default database: SHOW CREATE then leaves
// db's name out of what it shows, and statements create objects in db.
func (a *admin) use(ctx context.Context, db string) error {
	if err := a.exec(ctx, "USE "+quoteIdent(db)); err != nil {
		return fmt.Errorf("use database %q at %s: %w", db, a.c.addr(), err)
	}
	return nil
}

// showCreate reads o's statement and settings, from the default database.
func (a *admin) showCreate(ctx context.Context, o *object) error {
	rows, err := a.conn.QueryContext(ctx, "SHOW CREATE "+o.kind+" "+quoteIdent(o.name))
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return errors.New("no definition")
	}
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return err
	}
	for i, c := range cols {
		v := string(vals[i])
		switch c {
		case "Create View", "SQL Original Statement", "Create Procedure", "Create Function", "Create Event", "Create Package", "Create Package Body":
			o.create = bytes.Clone(vals[i])
		case "sql_mode":
			o.sqlMode = v
		case "character_set_client":
			o.charset = v
		case "collation_connection":
			o.coll = v
		case "time_zone":
			o.tz = v
		}
	}
	if len(o.create) == 0 {
		return errors.New("the server shows no statement for it: the user may lack the privilege to see it")
	}
	return nil
}

// create makes o in the default database, the same but for its definer:
// from becomes to (when from is not zero). The statement is the server's
// own SHOW CREATE text, OR REPLACE added.
func (a *admin) create(ctx context.Context, o *object, from, to account) error {
	text := o.create
	if from != (account{}) && o.definer == from.definer() {
		i := bytes.Index(text, []byte(from.clause()))
		if i < 0 {
			return fmt.Errorf("%s: its definition does not name its definer %s", o, from.sql())
		}
		text = bytes.Join([][]byte{text[:i], []byte(to.clause()), text[i+len(from.clause()):]}, nil)
	}
	if o.kind == "TRIGGER" { // its statement is as typed: it may name its database
		text = unqualifyTrigger(text, o.db)
	}
	rest, ok := bytes.CutPrefix(text, []byte("CREATE "))
	if !ok {
		return fmt.Errorf("%s: its definition does not begin with CREATE", o)
	}
	if a.mariadb || o.kind == "VIEW" {
		text = append([]byte("CREATE OR REPLACE "), rest...)
	} else if err := a.exec(ctx, "DROP "+o.kind+" IF EXISTS "+quoteIdent(o.name)); err != nil { // MySQL replaces views only
		return fmt.Errorf("%s: %w", o, err)
	}
	var mode, cs, coll, tz string
	if err := a.conn.QueryRowContext(ctx, "SELECT @@SESSION.sql_mode, @@SESSION.character_set_client, @@SESSION.collation_connection, @@SESSION.time_zone").Scan(&mode, &cs, &coll, &tz); err != nil {
		return err
	}
	set := func(mode, cs, coll, tz string) error {
		return a.exec(ctx, "SET SESSION sql_mode = ?, character_set_client = ?, collation_connection = ?, time_zone = ?", mode, cs, coll, tz)
	}
	if err := set(or(o.sqlMode, mode), or(o.charset, cs), or(o.coll, coll), or(o.tz, tz)); err != nil {
		return fmt.Errorf("%s: set its session: %w", o, err)
	}
	err := a.exec(ctx, string(text))
	if rerr := set(mode, cs, coll, tz); err == nil && rerr != nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", o, err)
	}
	return nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// createAll makes objs in database db, with from's objects defined by to.
// Views that use other views may need the others first: what fails is
// tried again while anything gets made. It returns the objects it could
// not make, and why.
func (a *admin) createAll(ctx context.Context, db string, objs []*object, from, to account) ([]*object, error) {
	if len(objs) == 0 {
		return nil, nil
	}
	if err := a.use(ctx, db); err != nil {
		return objs, err
	}
	for todo := objs; len(todo) > 0; {
		var failed []*object
		var errs []error
		for _, o := range todo {
			if err := a.create(ctx, o, from, to); err != nil {
				failed, errs = append(failed, o), append(errs, err)
			}
		}
		if len(failed) == len(todo) {
			return failed, fmt.Errorf("database %q at %s: %w", db, a.c.addr(), errors.Join(errs...))
		}
		todo = failed
	}
	return nil, nil
}

// dropObject drops o of database db.
func (a *admin) dropObject(ctx context.Context, db string, o *object) error {
	if err := a.exec(ctx, "DROP "+o.kind+" IF EXISTS "+quoteIdent(db)+"."+quoteIdent(o.name)); err != nil {
		return fmt.Errorf("drop %s of database %q at %s: %w", o, db, a.c.addr(), err)
	}
	return nil
}

// adopt gives db's objects that from defines (the load account) a
// definer that outlives it: db's definer account. It returns how many
// objects it changed.
func (a *admin) adopt(ctx context.Context, db string, from account) (int, error) {
	objs, err := a.listObjects(ctx, db)
	if err != nil {
		return 0, err
	}
	var mine []*object
	for _, o := range objs {
		if o.definer == from.definer() {
			mine = append(mine, o)
		}
	}
	if len(mine) == 0 {
		return 0, nil
	}
	to, err := a.ensureDefiner(ctx, db)
	if err != nil {
		return 0, err
	}
	if _, err := a.createAll(ctx, db, mine, from, to); err != nil {
		return 0, err
	}
	return len(mine), nil
}
