package postgres

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The roles coffer creates are named with these prefixes and carry a
// comment naming the database they are for, so that DropScratch can find
// the ones a killed drill left behind.
const (
	loadRolePrefix  = "coffer_load_"
	ownerRolePrefix = "coffer_owner_"
	loadComment     = "coffer load role for "
	scratchComment  = "coffer scratch role for "
	ownerComment    = "coffer owner role for "
)

// role is what coffer knows of a role on the target server.
type role struct {
	super bool
	// privileged: a superuser, a role with CREATEROLE (which may grant
	// itself the roles below), or a member of pg_execute_server_program,
	// pg_read_server_files or pg_write_server_files, i.e. a role whose
	// rights reach beyond the databases: the server's programs and files.
	privileged bool
}

// roleSet is the server's roles by name.
type roleSet map[string]role

func readRoles(ctx context.Context, pc *pgx.Conn) (roleSet, error) {
	rows, err := pc.Query(ctx, `SELECT r.rolname, r.rolsuper, r.rolsuper OR r.rolcreaterole
		OR pg_catalog.pg_has_role(r.oid, 'pg_execute_server_program', 'MEMBER')
		OR pg_catalog.pg_has_role(r.oid, 'pg_read_server_files', 'MEMBER')
		OR pg_catalog.pg_has_role(r.oid, 'pg_write_server_files', 'MEMBER')
		FROM pg_catalog.pg_roles r`)
	if err != nil {
		return nil, fmt.Errorf("list the roles: %w", err)
	}
	defer rows.Close()
	rs := roleSet{}
	for rows.Next() {
		var name string
		var r role
		if err := rows.Scan(&name, &r.super, &r.privileged); err != nil {
			return nil, err
		}
		rs[name] = r
	}
	return rs, rows.Err()
}

// ownable reports whether role name may own restored objects, and if not,
// why. A restored object runs the snapshot's code with its owner's rights
// (a SECURITY DEFINER function, a view, a trigger's function), so it is
// never owned by a privileged role, nor by coffer's own roles.
func (rs roleSet) ownable(name string) (bool, string) {
	r, ok := rs[name]
	switch {
	case name == "pg_database_owner":
		return true, "" // whoever owns the database: chooseOwner's role
	case name == "":
		return false, "no owner"
	case !ok:
		return false, "does not exist here"
	case r.super:
		return false, "is a superuser here"
	case r.privileged:
		return false, "may create roles or use the server's programs or files here"
	case strings.HasPrefix(name, "pg_"), strings.HasPrefix(name, loadRolePrefix), strings.HasPrefix(name, readerPrefix):
		return false, "is a role of the server or of coffer"
	}
	return true, ""
}

// grantable reports whether a grant to role name is applied: to PUBLIC or
// to a role that exists and is not a superuser (a grant to a superuser
// gives nothing, and one to a missing role cannot be made).
func (rs roleSet) grantable(name string) (bool, string) {
	if name == "" || strings.EqualFold(name, "public") {
		return true, ""
	}
	r, ok := rs[name]
	switch {
	case !ok:
		return false, "does not exist here"
	case r.super:
		return false, "is a superuser here"
	case strings.HasPrefix(name, loadRolePrefix), strings.HasPrefix(name, readerPrefix):
		return false, "is a role of coffer"
	}
	return true, ""
}

// createdRole is a role Load created: Abort drops it.
type createdRole struct {
	name string
	why  string // "globals", "scratch", "owner"
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// loadRole is the throwaway role a database is loaded as.
type loadRole struct {
	name     string
	password string // given only to pg_restore, in its environment
	verifier string // what the server stores for it
}

// loadConnections is how many sessions pg_restore may hold at once: one
// in a single transaction; with jobs, one per job and the leader's, which
// reconnects at the end while the workers' sessions may still be ending.
func loadConnections(jobs int) int {
	if jobs <= 1 {
		return 1
	}
	return jobs + 1
}

// createLoadRole creates the role that loads db: it can log in and owns
// nothing yet. The server receives only a SCRAM verifier of its password
// (which shows in no statement log); the password itself reaches only
// pg_restore's environment. It expires in a day, should coffer be killed
// before dropping it, and takes no more connections than pg_restore
// opens (loadConnections), a limit the snapshot cannot change.
func (t *Target) createLoadRole(ctx context.Context, pc *pgx.Conn, db string) (*loadRole, error) {
	lr := &loadRole{name: loadRolePrefix + randomHex(8), password: randomHex(24)}
	lr.verifier = scramVerifier(lr.password)
	until := time.Now().Add(24 * time.Hour).UTC().Format("2006-01-02 15:04:05+00")
	stmts := []string{
		"CREATE ROLE " + quoteIdent(lr.name) + " LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT" +
			" CONNECTION LIMIT " + strconv.Itoa(loadConnections(t.jobs)) +
			" PASSWORD " + quoteLiteral(lr.verifier) + " VALID UNTIL " + quoteLiteral(until),
		"COMMENT ON ROLE " + quoteIdent(lr.name) + " IS " + quoteLiteral(loadComment+db),
	}
	if !t.srv.superuser {
		// A user with CREATEROLE must be a member of a role to make it
		// a database's owner and to reassign what it owns.
		stmts = append(stmts, "GRANT "+quoteIdent(lr.name)+" TO CURRENT_USER")
	}
	for _, s := range stmts {
		if _, err := pc.Exec(ctx, s); err != nil {
			t.dropRole(ctx, pc, lr.name)
			return nil, fmt.Errorf("create the role %q that loads database %q at %s: %w", lr.name, db, t.c.addr(), err)
		}
	}
	return lr, nil
}

// dropRole drops a role coffer created; one already gone is fine.
func (t *Target) dropRole(ctx context.Context, pc *pgx.Conn, name string) error {
	_, err := pc.Exec(ctx, "DROP ROLE IF EXISTS "+quoteIdent(name))
	return err
}

// createRole creates a NOLOGIN role without password, commented with why
// it exists (e.g. "coffer scratch role for coffer_drill_x").
func (t *Target) createRole(ctx context.Context, pc *pgx.Conn, name, comment, why string) error {
	if _, err := pc.Exec(ctx, "CREATE ROLE "+quoteIdent(name)+" NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"); err != nil {
		return err
	}
	t.created = append(t.created, createdRole{name: name, why: why})
	t.roles[name] = role{}
	if _, err := pc.Exec(ctx, "COMMENT ON ROLE "+quoteIdent(name)+" IS "+quoteLiteral(comment)); err != nil {
		return err
	}
	if !t.srv.superuser {
		_, err := pc.Exec(ctx, "GRANT "+quoteIdent(name)+" TO CURRENT_USER")
		return err
	}
	return nil
}

// createScratchRoles creates, for a drill, the roles the snapshot's
// objects need (owners, grantees) that the server does not have.
// maxScratchRoles bounds the roles a drill creates for one database.
const maxScratchRoles = 1000

func (t *Target) createScratchRoles(ctx context.Context, pc *pgx.Conn, db string, needed []string) error {
	var made, refused []string
	for _, name := range needed {
		if _, ok := t.roles[name]; ok || name == "" || strings.EqualFold(name, "public") {
			continue
		}
		// A snapshot names as many roles as it likes; a drill makes a
		// bounded number of them on a shared scratch server.
		if len(made) >= maxScratchRoles || checkName(name) != "" || strings.HasPrefix(name, "pg_") || cofferRole(name) {
			refused = append(refused, fmt.Sprintf("%q", name))
			continue
		}
		if err := t.createRole(ctx, pc, name, scratchComment+db, "scratch"); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && (pe.Code == "42939" || pe.Code == "42710") { // reserved name, or made meanwhile
				refused = append(refused, fmt.Sprintf("%q (%s)", name, pe.Message))
				continue
			}
			return fmt.Errorf("create scratch role %q at %s: %w", name, t.c.addr(), err)
		}
		made = append(made, fmt.Sprintf("%q", name))
	}
	if len(made) > 0 {
		t.note("created scratch roles %s (NOLOGIN, no password) for database %q; they are dropped with it", strings.Join(made, ", "), db)
	}
	if len(refused) > 0 {
		t.note("did not create roles %s for database %q: the objects recorded as theirs are owned by the database's owner", strings.Join(refused, ", "), db)
	}
	return nil
}

// scramVerifier is the SCRAM-SHA-256 verifier PostgreSQL stores for
// password (RFC 5802, RFC 7677; PostgreSQL's scram_build_secret), so that
// the password itself never reaches the server's statement log.
func scramVerifier(password string) string {
	const iterations = 4096
	salt := make([]byte, 16)
	rand.Read(salt)
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		panic(err) // only for parameters out of FIPS bounds, which these are not
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	stored := sha256.Sum256(mac(salted, "Client Key"))
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(stored[:]), b64(mac(salted, "Server Key")))
}
