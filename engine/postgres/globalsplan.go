package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// RoleInfo is what a plan needs to know of a role that exists on the
// target server.
type RoleInfo struct {
	Superuser bool
	// MemberOf lists the roles it is a member of, directly or through
	// other roles.
	MemberOf []string
}

// ExistingRoles reads every role of the server pc is connected to, with
// the roles each is a member of (pg_roles and pg_auth_members, which any
// user may read).
func ExistingRoles(ctx context.Context, pc *pgx.Conn) (map[string]RoleInfo, error) {
	rows, err := pc.Query(ctx, `WITH RECURSIVE m(member, roleid) AS (
			SELECT member, roleid FROM pg_catalog.pg_auth_members
			UNION
			SELECT m.member, a.roleid FROM m JOIN pg_catalog.pg_auth_members a ON a.member = m.roleid)
		SELECT r.rolname, r.rolsuper,
			coalesce(array_agg(g.rolname ORDER BY g.rolname) FILTER (WHERE g.rolname IS NOT NULL), '{}')
		FROM pg_catalog.pg_roles r
		LEFT JOIN m ON m.member = r.oid
		LEFT JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
		GROUP BY r.rolname, r.rolsuper`)
	if err != nil {
		return nil, fmt.Errorf("list the roles of the target server: %w", err)
	}
	out := map[string]RoleInfo{}
	for rows.Next() {
		var name string
		var ri RoleInfo
		if err := rows.Scan(&name, &ri.Superuser, &ri.MemberOf); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list the roles of the target server: %w", err)
		}
		out[name] = ri
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list the roles of the target server: %w", err)
	}
	return out, nil
}

// GlobalsPlan is what coffer applies of a globals script: statements it
// built itself, with quoted names and literals.
type GlobalsPlan struct {
	Statements []string // to run in order, each on its own
	Created    []string // the roles the statements create
	Notes      []string // what was left out, and why; safe to print
}

// dangerousRoles are predefined roles whose members can read or write the
// server's files, run programs as the server's user, signal or outrank
// other sessions: never granted from a snapshot.
var dangerousRoles = map[string]bool{
	"pg_execute_server_program": true, "pg_read_server_files": true, "pg_write_server_files": true,
	"pg_signal_backend": true, "pg_checkpoint": true, "pg_create_subscription": true,
	"pg_use_reserved_connections": true, "pg_signal_autovacuum_worker": true, "pg_database_owner": true,
}

// readAllRoles can read or write every table of every database.
var readAllRoles = map[string]bool{"pg_read_all_data": true, "pg_write_all_data": true}

// UnsafeOwner says why role name of the target server (existing, from
// ExistingRoles) must not own restored objects, or "": a view or a
// SECURITY DEFINER function runs with its owner's rights, so an owner
// that is a superuser, a predefined role, or a member of a superuser or of
// a role that reaches the server's files, programs or every table would
// give the snapshot's SQL those rights.
func UnsafeOwner(existing map[string]RoleInfo, name string) string {
	unsafe := func(r string) bool { return existing[r].Superuser || dangerousRoles[r] || readAllRoles[r] }
	switch info, ok := existing[name]; {
	case strings.HasPrefix(name, "pg_"):
		return "it is a predefined role"
	case !ok:
		return "it does not exist on the target"
	case info.Superuser:
		return "it is a superuser"
	default:
		for _, m := range info.MemberOf {
			if unsafe(m) {
				return "it is a member of " + display(m)
			}
		}
	}
	return ""
}

// Plan is PlanFor with a target of PostgreSQL 16 or later.
func (g *Globals) Plan(existing map[string]RoleInfo, mode string) *GlobalsPlan {
	return g.PlanFor(existing, mode, 0)
}

// PlanFor decides what of g to apply to a server whose roles are
// existing (ExistingRoles), of major version targetMajor (0: 16 or
// later). mode is "all" or, for anything else, "roles".
//
// It creates only roles that do not exist, and never alters, grants to,
// or otherwise changes an existing role. Unless mode is "all", a created
// role gets neither SUPERUSER, REPLICATION, BYPASSRLS nor CREATEROLE (with
// which a role can make itself superuser-equivalent before PostgreSQL
// 16). A membership is granted only to a role the plan creates, never in
// a dangerous predefined role (dangerousRoles), nor in an existing role
// that is a superuser or a member of one; unless mode is "all", only in a
// role the plan creates. Memberships that would make a cycle are left
// out, and so is GRANTED BY: the grants are the applying user's. Notes
// say what was left out and why.
func (g *Globals) PlanFor(existing map[string]RoleInfo, mode string, targetMajor int) *GlobalsPlan {
	pl := &planner{g: g, existing: existing, all: mode == "all", major: targetMajor,
		created: map[string]bool{}, edges: map[string][]string{}, plan: &GlobalsPlan{}}
	pl.roles()
	pl.memberships()
	return pl.plan
}

type planner struct {
	g        *Globals
	existing map[string]RoleInfo
	all      bool
	major    int
	created  map[string]bool
	edges    map[string][]string // member → roles granted to it by the plan
	plan     *GlobalsPlan
}

func (pl *planner) note(format string, args ...any) {
	pl.plan.Notes = append(pl.plan.Notes, fmt.Sprintf(format, args...))
}

func (pl *planner) roles() {
	var kept []string
	for _, r := range pl.g.Roles {
		if _, ok := pl.existing[r.Name]; ok {
			kept = append(kept, display(r.Name))
			continue
		}
		if pl.created[r.Name] {
			continue
		}
		if strings.HasPrefix(r.Name, "pg_") || r.Name == "public" || r.Name == "none" {
			pl.note("role %s was not created: the name is reserved by PostgreSQL", display(r.Name))
			continue
		}
		if cofferRole(r.Name) {
			// coffer's own roles (load, reader, owner) are found by their
			// names and comments: a snapshot may not plant one.
			pl.note("role %s was not created: the name is one of coffer's own roles", display(r.Name))
			continue
		}
		var dropped []string
		if !pl.all {
			for _, a := range []struct {
				on   *bool
				name string
			}{{&r.Superuser, "SUPERUSER"}, {&r.CreateRole, "CREATEROLE"}, {&r.Replication, "REPLICATION"}, {&r.BypassRLS, "BYPASSRLS"}} {
				if *a.on {
					*a.on = false
					dropped = append(dropped, a.name)
				}
			}
		}
		pl.created[r.Name] = true
		pl.plan.Created = append(pl.plan.Created, r.Name)
		pl.plan.Statements = append(pl.plan.Statements, r.SQL())
		if r.Comment != "" && !strings.HasPrefix(r.Comment, "coffer ") {
			pl.plan.Statements = append(pl.plan.Statements, "COMMENT ON ROLE "+quoteIdent(r.Name)+" IS "+quoteLiteral(r.Comment))
		}
		if len(dropped) > 0 {
			pl.note("role %s was created without %s: pass --globals=all to keep them", display(r.Name), strings.Join(dropped, ", "))
		}
	}
	if len(kept) > 0 {
		if len(kept) > 10 {
			kept = append(kept[:10], fmt.Sprintf("and %d more", len(kept)-10))
		}
		pl.note("%d roles of the snapshot exist on the target and were left unchanged: %s", len(kept), strings.Join(kept, ", "))
	}
}

// SQL is the CREATE ROLE statement of r, with every attribute spelt out.
func (r RoleDef) SQL() string {
	var b strings.Builder
	b.WriteString("CREATE ROLE " + quoteIdent(r.Name) + " WITH")
	for _, a := range []struct {
		on   bool
		name string
	}{{r.Superuser, "SUPERUSER"}, {r.Inherit, "INHERIT"}, {r.CreateRole, "CREATEROLE"}, {r.CreateDB, "CREATEDB"},
		{r.Login, "LOGIN"}, {r.Replication, "REPLICATION"}, {r.BypassRLS, "BYPASSRLS"}} {
		if !a.on {
			b.WriteString(" NO" + a.name)
		} else {
			b.WriteString(" " + a.name)
		}
	}
	if r.ConnLimit >= 0 {
		fmt.Fprintf(&b, " CONNECTION LIMIT %d", r.ConnLimit)
	}
	if r.Password != "" {
		b.WriteString(" PASSWORD " + quoteLiteral(r.Password))
	}
	if r.ValidUntil != "" {
		b.WriteString(" VALID UNTIL " + quoteLiteral(r.ValidUntil))
	}
	return b.String()
}

// refuse says why membership in role may not be granted, or "".
func (pl *planner) refuse(role string) string {
	switch {
	case dangerousRoles[role]:
		return "it is a predefined role that reaches beyond the database (server files, programs or other sessions)"
	case strings.HasPrefix(role, "pg_") && !pl.all:
		return "predefined roles are granted only with --globals=all"
	case pl.created[role]:
		return ""
	}
	info, ok := pl.existing[role]
	if !ok {
		return "the role does not exist on the target"
	}
	if info.Superuser {
		return "it is a superuser"
	}
	for _, m := range info.MemberOf {
		if pl.existing[m].Superuser || dangerousRoles[m] || strings.HasPrefix(m, "pg_") && !pl.all {
			return fmt.Sprintf("it is a member of %s", display(m))
		}
	}
	if !pl.all {
		return "it exists on the target: new roles get the rights of existing ones only with --globals=all"
	}
	return ""
}

// reaches says whether from is, through grants of the plan, a member of to.
func (pl *planner) reaches(from, to string) bool {
	seen := map[string]bool{}
	stack := []string{from}
	for len(stack) > 0 {
		r := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if r == to {
			return true
		}
		if !seen[r] {
			seen[r] = true
			stack = append(stack, pl.edges[r]...)
		}
	}
	return false
}

func (pl *planner) memberships() {
	// pg_dumpall of PostgreSQL 16 writes one GRANT per grantor; coffer
	// grants once, with ADMIN OPTION if any of them had it.
	var ms []Membership
	index := map[[2]string]int{}
	for _, m := range pl.g.Memberships {
		k := [2]string{m.Role, m.Member}
		if i, ok := index[k]; ok {
			ms[i].Admin = ms[i].Admin || m.Admin
			continue
		}
		index[k] = len(ms)
		ms = append(ms, m)
	}
	for _, m := range ms {
		what := fmt.Sprintf("membership of %s in %s", display(m.Member), display(m.Role))
		why := ""
		switch {
		case m.Role == m.Member:
		case !pl.created[m.Member]:
			why = "the member was not created by this restore, and existing roles are left unchanged"
			if _, ok := pl.existing[m.Member]; !ok {
				why = "the member does not exist"
			}
		case pl.refuse(m.Role) != "":
			why = pl.refuse(m.Role)
		case pl.reaches(m.Role, m.Member):
			why = "it would make a cycle of memberships"
		}
		if m.Role == m.Member {
			continue
		}
		if why != "" {
			pl.note("%s not granted: %s", what, why)
			continue
		}
		pl.edges[m.Member] = append(pl.edges[m.Member], m.Role)
		pl.plan.Statements = append(pl.plan.Statements, pl.grantSQL(m, what))
	}
}

func (pl *planner) grantSQL(m Membership, what string) string {
	var opts []string
	if m.Admin {
		opts = append(opts, "ADMIN OPTION")
	}
	tf := map[bool]string{true: "TRUE", false: "FALSE"}
	if pl.major == 0 || pl.major >= 16 {
		if m.Inherit != nil {
			opts = append(opts, "INHERIT "+tf[*m.Inherit])
		}
		if m.Set != nil {
			opts = append(opts, "SET "+tf[*m.Set])
		}
	} else if m.Inherit != nil && !*m.Inherit || m.Set != nil && !*m.Set {
		pl.note("%s granted without INHERIT FALSE or SET FALSE: PostgreSQL %d has no such options", what, pl.major)
	}
	s := "GRANT " + quoteIdent(m.Role) + " TO " + quoteIdent(m.Member)
	if len(opts) > 0 {
		s += " WITH " + strings.Join(opts, ", ")
	}
	return s
}

// cofferRole reports whether name is one coffer gives its own roles.
func cofferRole(name string) bool {
	for _, p := range []string{loadRolePrefix, readerPrefix, ownerRolePrefix} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
