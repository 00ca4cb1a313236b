package postgres

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestHostileLoadRoleTakeover: the archive's SQL runs as the load role,
// which may change its own password, so the author of a snapshot could
// log in as the owner of the database being loaded. The load role takes
// no more connections than pg_restore opens, and a load after which the
// role's password changed, or a session of it outlived pg_restore, is
// undone.
func TestHostileLoadRoleTakeover(t *testing.T) {
	src, stream, rep := hostileSource(t)

	t.Run("password changed", func(t *testing.T) {
		for _, jobs := range []int{1, 2} {
			s, r := inject(t, src, stream, rep, "ALTER ROLE CURRENT_USER PASSWORD 'known-to-the-backup-host';")
			target := newDatabase(t, "takeover")
			_, err := load(t, dsn(target), TargetOptions{Jobs: jobs}, s, r)
			if !errors.Is(err, ErrLoadRoleTaken) || !strings.Contains(err.Error(), "password was changed") {
				t.Fatalf("jobs %d: load after the snapshot set its role's password: %v", jobs, err)
			}
			noLeftovers(t, target)
		}
	})

	// The attacker logs in as the load role while the archive sleeps in
	// its first statement (trust authentication here stands for the
	// password the snapshot set).
	for _, tc := range []struct {
		name string
		jobs int
	}{{"one job: refused", 1}, {"two jobs", 2}} {
		t.Run(tc.name, func(t *testing.T) {
			s, r := inject(t, src, stream, rep, "SELECT pg_sleep(3);")
			target := newDatabase(t, "session")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var wg sync.WaitGroup
			var held *pgx.Conn
			var loginErr error
			wg.Add(1)
			go func() {
				defer wg.Done()
				held, loginErr = loginAsLoadRole(ctx, t, target)
			}()
			_, err := load(t, dsn(target), TargetOptions{Jobs: tc.jobs}, s, r)
			wg.Wait()
			if held != nil {
				defer held.Close(context.Background())
				if perr := held.Ping(context.Background()); perr == nil {
					t.Fatal("the attacker's session as the load role is still open after the load")
				}
			}
			switch {
			case tc.jobs == 1 && (loginErr == nil || !strings.Contains(loginErr.Error(), "too many connections")):
				t.Fatalf("a second login as the load role beside pg_restore: %v", loginErr)
			case tc.jobs == 1 && err != nil:
				t.Fatalf("the load failed although the attacker was refused: %v", err)
			case tc.jobs > 1 && err == nil:
				t.Fatal("a load beside which somebody held the load role's session succeeded")
			case tc.jobs > 1:
				noLeftovers(t, target)
			}
		})
	}
}

// loginAsLoadRole waits until the archive's SQL runs as the load role of
// database db (the earliest the snapshot's author could know a password
// it set) and logs in as it, as that author would.
func loginAsLoadRole(ctx context.Context, t *testing.T, db string) (*pgx.Conn, error) {
	admin := connect(t, "postgres")
	for ctx.Err() == nil {
		var name string
		err := admin.QueryRow(ctx, `SELECT r.rolname FROM pg_roles r JOIN pg_stat_activity a ON a.usename = r.rolname
			WHERE shobj_description(r.oid, 'pg_authid') = $1 AND a.query LIKE '%pg_sleep%'`, loadComment+db).Scan(&name)
		if err == nil {
			return pgx.Connect(ctx, strings.Replace(dsn(db), "postgres@", name+"@", 1))
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil, ctx.Err()
}
