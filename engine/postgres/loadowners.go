package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// ownership is what a dump records about who owns its objects and who
// may use them, parsed from its table of contents.
type ownership struct {
	objects  []ownedObject
	grants   []aclGrant
	needed   []string // roles the objects name: owners and grantees
	unparsed []string // ACL entries that were not understood, skipped
	unowned  []string // objects with an owner that coffer does not set
}

type ownedObject struct {
	e     *tocEntry
	owner string // as recorded
}

// aclGrant is one statement of an ACL or DEFAULT ACL entry, built by
// coffer from parsed values.
type aclGrant struct {
	object  string // for notes: e.g. `TABLE "shop.customers"`
	grantee string // "PUBLIC" for PUBLIC
	forRole string // of default privileges
	sql     string
}

func (a *archive) ordered() []*tocEntry {
	out := make([]*tocEntry, 0, len(a.order))
	for _, id := range a.order {
		out = append(out, a.entries[id])
	}
	return out
}

// planOwnership reads the owners and grants of a dump's objects.
func (t *Target) planOwnership(a *archive, db string) (*ownership, error) {
	o := &ownership{}
	need := map[string]bool{}
	for _, e := range a.ordered() {
		switch e.desc {
		case "ACL", "DEFAULT ACL":
			gs, err := parseGrants(e, db)
			if err != nil {
				o.unparsed = append(o.unparsed, fmt.Sprintf("%s %q (%v)", e.desc, entryName(e), err))
				continue
			}
			for _, g := range gs {
				o.grants = append(o.grants, g)
				for _, r := range []string{g.grantee, g.forRole} {
					if r != "" && r != "PUBLIC" {
						need[r] = true
					}
				}
			}
		default:
			switch {
			case e.owner == "":
			case hasOwner(e):
				o.objects = append(o.objects, ownedObject{e: e, owner: e.owner})
				need[e.owner] = true
			case ownerRefused[e.desc] != "" || e.desc == "EXTENSION":
				o.unowned = append(o.unowned, fmt.Sprintf("%s %q", e.desc, entryName(e)))
			}
		}
	}
	for n := range need {
		o.needed = append(o.needed, n)
	}
	sort.Strings(o.needed)
	return o, nil
}

func entryName(e *tocEntry) string {
	if e.namespace != "" {
		return e.namespace + "." + e.tag
	}
	return e.tag
}

// chooseOwner decides who owns the loaded database (and every object
// whose recorded owner may not own it here), in this order:
//
//  1. the owner the dump recorded, if that role exists here (or was just
//     created from the globals or for a drill) and may own objects
//     (roleSet.ownable: not a superuser, no CREATEROLE, no access to the
//     server's programs or files);
//  2. else TargetOptions.Owner (--owner), checked the same way by Load;
//  3. else the owner of the database being replaced or loaded in place,
//     if it may;
//  4. else a new NOLOGIN role coffer_owner_<random>, commented "coffer
//     owner role for DB" (or, for a drill, "coffer scratch role for DB",
//     so that the drill's cleanup drops it), which the notes name.
//
// It is never a superuser and never the connecting user when that user
// could create roles: a function or view owned by such a role would run
// the snapshot's code with its rights whenever it is used.
func (t *Target) chooseOwner(ctx context.Context, pc *pgx.Conn, x *loadDB, recorded string) error {
	ok, why := t.roles.ownable(recorded)
	if recorded == "pg_database_owner" {
		ok, why = false, "cannot own a database"
	}
	if ok {
		x.owner = recorded
		return nil
	}
	switch {
	case t.opts.Owner != "":
		x.owner = t.opts.Owner
	case x.exists:
		if ok, _ := t.roles.ownable(x.oldOwner); ok {
			x.owner = x.oldOwner
		}
	}
	if x.owner != "" {
		switch {
		case !x.created:
			t.note("database %q keeps its owner %q; the objects loaded into it whose recorded owner may not own them here are owned by %q", x.to, x.oldOwner, x.owner)
		case recorded != "":
			t.note("database %q is owned by %q: the snapshot recorded owner %q, which %s", x.to, x.owner, recorded, why)
		}
		return nil
	}
	name := ownerRolePrefix + randomHex(6)
	comment, kind := ownerComment+x.to, "owner"
	if t.opts.Scratch {
		comment, kind = scratchComment+x.to, "scratch"
	}
	if err := t.createRole(ctx, pc, name, comment, kind); err != nil {
		return fmt.Errorf("create role %q to own database %q at %s: %w", name, x.to, t.c.addr(), err)
	}
	x.owner = name
	what := "no owner"
	if recorded != "" {
		what = fmt.Sprintf("owner %q, which %s", recorded, why)
	}
	t.note("database %q is owned by %q, a role created for it (NOLOGIN, no password), as are its objects whose recorded owner may not own them here: the snapshot recorded %s; to give them to a role of yours, restore with --owner ROLE, or later run REASSIGN OWNED BY %s TO ROLE in it and ALTER DATABASE %s OWNER TO ROLE",
		x.to, name, what, quoteIdent(name), quoteIdent(x.to))
	return nil
}

// applyOwnership gives each loaded object the owner it had at the
// source when that role may own it here (else the fallback owner: --owner,
// else the database's), applies the dump's grants to roles that exist and
// are not superusers, gives what the load role still owns to the
// database's owner, and clears what the load may have set on the
// database. Every statement is coffer's, with quoted identifiers; the
// connection's search_path is pg_catalog, pg_temp (connect).
func (t *Target) applyOwnership(ctx context.Context, admin *pgx.Conn, x *loadDB, o *ownership) error {
	// First, from outside: settings the load gave the database apply to
	// every session that logs into it, coffer's included (role, …).
	if err := t.resetSettings(ctx, admin, x); err != nil {
		return err
	}
	pc, err := t.c.connect(ctx, x.into)
	if err != nil {
		return err
	}
	defer pc.Close(context.WithoutCancel(ctx))
	fallback := t.opts.Owner
	if fallback == "" {
		fallback = x.owner
	}
	substituted := map[string]*substitution{}
	var failed, notLoaded []string
	for _, obj := range o.objects {
		owner := obj.owner
		if ok, why := t.roles.ownable(owner); !ok {
			s := substituted[owner]
			if s == nil {
				s = &substitution{why: why}
				substituted[owner] = s
			}
			s.n++
			owner = fallback
		}
		stmt, ok := ownerStatement(obj.e, owner)
		if !ok {
			continue
		}
		if mine, err := createdByLoad(ctx, pc, obj.e, x.load.name); err != nil || !mine {
			if err == nil {
				err = errors.New("the load did not create it")
			}
			notLoaded = append(notLoaded, fmt.Sprintf("%s %q (%v)", obj.e.desc, entryName(obj.e), err))
			continue
		}
		if _, err := pc.Exec(ctx, stmt); err != nil {
			failed = append(failed, fmt.Sprintf("%s %q (%v)", obj.e.desc, entryName(obj.e), err))
		}
	}
	for _, owner := range sortedKeys(substituted) {
		s := substituted[owner]
		t.note("database %q: %s recorded as owned by %q, which %s, %s owned by %q", x.to, count(s.n, "object", "objects"), owner, s.why, isAre(s.n), fallback)
	}
	if len(o.unowned) > 0 {
		t.note("database %q: coffer does not set the owner of %s, which %s %q's: %s", x.to, count(len(o.unowned), "object", "objects"), isAre(len(o.unowned)), x.owner, strings.Join(firstN(o.unowned, 10), "; "))
	}
	if len(failed) > 0 {
		t.note("database %q: the owner of %s could not be set; they are %q's: %s", x.to, count(len(failed), "object", "objects"), x.owner, strings.Join(firstN(failed, 10), "; "))
	}
	if len(notLoaded) > 0 {
		t.note("database %q: the snapshot names owners for %s that its load did not create (PostgreSQL's own, or missing); coffer changed nothing about them: %s", x.to, count(len(notLoaded), "object", "objects"), strings.Join(firstN(notLoaded, 10), "; "))
	}
	t.applyGrants(ctx, pc, x, o)
	// A database loaded in place (it existed, empty) keeps its owner;
	// what the load created is x.owner's.
	dbOwner := x.owner
	if !x.created {
		dbOwner = x.oldOwner
	}
	for _, stmt := range []string{
		"REASSIGN OWNED BY " + quoteIdent(x.load.name) + " TO " + quoteIdent(x.owner),
		"DROP OWNED BY " + quoteIdent(x.load.name),
		"ALTER DATABASE " + quoteIdent(x.into) + " OWNER TO " + quoteIdent(dbOwner),
	} {
		if _, err := pc.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("database %q at %s: %s: %w", x.into, t.c.addr(), stmt, err)
		}
	}
	return nil
}

type substitution struct {
	n   int
	why string
}

// applyGrants applies the dump's grants to roles that may receive them,
// and notes the others.
func (t *Target) applyGrants(ctx context.Context, pc *pgx.Conn, x *loadDB, o *ownership) {
	skipped := map[string]*substitution{}
	var failed []string
	for _, g := range o.grants {
		who, ok, why := g.grantee, true, ""
		if ok, why = t.roles.grantable(g.grantee); ok && g.forRole != "" {
			// Default privileges are a role's: never a superuser's.
			who = g.forRole
			ok, why = t.roles.grantable(g.forRole)
		}
		if !ok {
			s := skipped[who]
			if s == nil {
				s = &substitution{why: why}
				skipped[who] = s
			}
			s.n++
			continue
		}
		if _, err := pc.Exec(ctx, g.sql); err != nil {
			failed = append(failed, fmt.Sprintf("%s to %q (%v)", g.object, g.grantee, err))
		}
	}
	for _, grantee := range sortedKeys(skipped) {
		s := skipped[grantee]
		t.note("database %q: %s naming %q %s not applied: that role %s", x.to, count(s.n, "grant", "grants"), grantee, wasWere(s.n), s.why)
	}
	if len(failed) > 0 {
		t.note("database %q: %s failed and %s not applied: %s", x.to, count(len(failed), "grant", "grants"), wasWere(len(failed)), strings.Join(firstN(failed, 10), "; "))
	}
	if len(o.unparsed) > 0 {
		t.note("database %q: %s of the snapshot %s not understood and skipped: %s", x.to, count(len(o.unparsed), "privilege entry", "privilege entries"), wasWere(len(o.unparsed)), strings.Join(firstN(o.unparsed, 10), "; "))
	}
}

// resetSettings clears the settings the load may have given the
// database (ALTER DATABASE … SET search_path = …, or role = …, which
// would steer every later session, a superuser's included). pc is not a
// session of that database. A database coffer created
// had none; one loaded in place gets back none, and the note lists what
// it had.
func (t *Target) resetSettings(ctx context.Context, pc *pgx.Conn, x *loadDB) error {
	now, err := dbSettings(ctx, pc, x.into)
	if err != nil {
		return err
	}
	if slices.Equal(now, x.settings) {
		return nil
	}
	if _, err := pc.Exec(ctx, "ALTER DATABASE "+quoteIdent(x.into)+" RESET ALL"); err != nil {
		return fmt.Errorf("database %q at %s: reset the settings the load gave it: %w", x.into, t.c.addr(), err)
	}
	if len(now) > 0 {
		t.note("database %q: the load set %s on it (ALTER DATABASE … SET); coffer reset them", x.to, quoteAll(now))
	}
	if len(x.settings) > 0 {
		t.note("database %q: its settings before the load, now reset, were %s: set them again if you need them", x.to, quoteAll(x.settings))
	}
	return nil
}

// dbSettings are the settings of database db for every role.
func dbSettings(ctx context.Context, pc *pgx.Conn, db string) ([]string, error) {
	var s []string
	err := pc.QueryRow(ctx, `SELECT coalesce(s.setconfig, '{}') FROM pg_catalog.pg_database d
		LEFT JOIN pg_catalog.pg_db_role_setting s ON s.setdatabase = d.oid AND s.setrole = 0
		WHERE d.datname = $1`, db).Scan(&s)
	if err != nil {
		return nil, fmt.Errorf("read the settings of database %q: %w", db, err)
	}
	return s, nil
}

// dropLoadRole drops the load role once it owns nothing.
func (t *Target) dropLoadRole(ctx context.Context, pc *pgx.Conn, x *loadDB) error {
	if err := t.dropRole(ctx, pc, x.load.name); err != nil {
		return fmt.Errorf("drop the load role %q at %s: %w", x.load.name, t.c.addr(), err)
	}
	x.load = nil
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func firstN(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(slices.Clone(s[:n]), fmt.Sprintf("and %d more", len(s)-n))
}

// count is "1 object" or "2 objects".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func isAre(n int) string   { return map[bool]string{true: "is", false: "are"}[n == 1] }
func wasWere(n int) string { return map[bool]string{true: "was", false: "were"}[n == 1] }

func quoteAll(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}

// hasOwner reports whether coffer gives the object of a TOC entry an
// owner: an object OwnerSQL can name (a table, a function… but not an
// index, a constraint or data), and never the DATABASE entry, whose tag is
// the source's name (the target database's owner is chooseOwner's).
func hasOwner(e *tocEntry) bool {
	if e.desc == "DATABASE" {
		return false
	}
	_, ok := OwnerSQL(e.desc, e.namespace, e.tag, "x")
	return ok
}

// ownerStatement is ALTER … OWNER TO owner for the object of entry e,
// built by OwnerSQL from the entry's desc, namespace and tag.
func ownerStatement(e *tocEntry, owner string) (string, bool) {
	if e.desc == "DATABASE" {
		return "", false
	}
	return OwnerSQL(e.desc, e.namespace, e.tag, owner)
}

// parseGrants are the statements of an ACL or DEFAULT ACL entry, rebuilt
// from the values ParseACL read (Grant.SQL, without the grantor: coffer
// grants as the connecting user, which the server records as the object's
// owner). Grants on PostgreSQL's own objects are refused. A grant on the
// DATABASE is made on the database loaded into (db).
func parseGrants(e *tocEntry, db string) ([]aclGrant, error) {
	gs, err := ParseACL(e.defn)
	if err != nil {
		return nil, err
	}
	var out []aclGrant
	for _, g := range gs {
		if g.System() {
			return nil, fmt.Errorf("it changes the privileges of PostgreSQL's own objects (%s)", strings.Join(g.Object, "."))
		}
		if g.ObjectKind == "DATABASE" {
			g.Object = []string{db}
		}
		grantee := g.Grantee
		if g.Public {
			grantee = "PUBLIC"
		}
		what := fmt.Sprintf("%s %q", g.ObjectKind, strings.Join(g.Object, "."))
		if g.Default {
			what = fmt.Sprintf("default privileges of %q on %s", g.ForRole, g.ObjectKind)
		}
		out = append(out, aclGrant{object: what, grantee: grantee, forRole: g.ForRole, sql: g.SQL()})
	}
	return out, nil
}

// createStatement is the CREATE DATABASE statement for db with the
// options of the dump's DATABASE entry (template0, encoding, locale…),
// rebuilt from the values ParseCreateDatabase read, for this server's
// version. Options it cannot read are left out, with a note: the database
// then has the server's defaults.
func (t *Target) createStatement(e *tocEntry, db string) string {
	if e == nil {
		return "CREATE DATABASE " + quoteIdent(db) + " WITH TEMPLATE = template0"
	}
	o, err := ParseCreateDatabase(e.defn)
	if err != nil {
		t.note("database %q: %v; it was created with the server's default encoding and locale", db, err)
		return "CREATE DATABASE " + quoteIdent(db) + " WITH TEMPLATE = template0"
	}
	o, notes := o.ForServer(t.srv.major)
	for _, n := range notes {
		t.note("database %q: %s", db, n)
	}
	return o.SQL(db)
}
