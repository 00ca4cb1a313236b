package mysql

import (
	"context"
	"database/sql"
	"fmt"
)

// OpenReader connects to the database Load loaded (the first, for a
// snapshot of several) as a temporary account that may only read it
// (SELECT, SHOW VIEW, EXECUTE on that database), for the queries a drill
// runs on it (assertions). The objects it reads are the snapshot's: a
// view or function declared SQL SECURITY INVOKER runs with the rights of
// whoever queries it, so the operator's assertions must not query it as
// the server's administrator. The account is a load account (same
// prefix, same lock, same sweep after a kill); Commit and Abort drop it.
// The caller closes the returned database first.
func (t *Target) OpenReader(ctx context.Context) (*sql.DB, error) {
	if len(t.loaded) == 0 {
		return nil, fmt.Errorf("restore target %s: nothing was loaded", t)
	}
	db := t.loaded[0].into
	if t.opts.TrustSnapshot {
		return t.c.openAs(ctx, t.c.user, t.c.password, db)
	}
	a, err := t.adminConn(ctx)
	if err != nil {
		return nil, err
	}
	if t.reader == nil {
		l, err := a.createLoadAccount(ctx, db, "SELECT, SHOW VIEW, EXECUTE")
		if err != nil {
			return nil, err
		}
		t.reader = l
	}
	return t.c.openAs(ctx, t.reader.user, t.reader.password, db)
}

// dropReader drops the reader account, if one was made.
func (t *Target) dropReader(ctx context.Context) error {
	if t.reader == nil || t.admin == nil {
		return nil
	}
	err := t.admin.dropLoadAccount(ctx, t.reader)
	t.reader = nil
	return err
}
