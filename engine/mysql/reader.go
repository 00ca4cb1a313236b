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
	r, err := t.readerFor(ctx, db)
	if err != nil {
		return nil, err
	}
	return t.c.openAs(ctx, r.user, r.password, db)
}

// readerPrivileges are what the reader account has on a loaded database.
const readerPrivileges = "SELECT, SHOW VIEW, EXECUTE"

// readerFor returns the reader account, made on first use, with
// readerPrivileges on database db.
func (t *Target) readerFor(ctx context.Context, db string) (*loadAccount, error) {
	a, err := t.adminConn(ctx)
	if err != nil {
		return nil, err
	}
	if t.reader == nil {
		l, err := a.createLoadAccount(ctx, db, readerPrivileges)
		if err != nil {
			return nil, err
		}
		t.reader, t.readerDBs = l, map[string]bool{db: true}
		return l, nil
	}
	if !t.readerDBs[db] {
		if err := a.exec(ctx, "GRANT "+readerPrivileges+" ON "+grantOn(db)+" TO "+t.reader.sql()); err != nil {
			return nil, a.needs(err, fmt.Sprintf("%s on database %q WITH GRANT OPTION", readerPrivileges, db))
		}
		t.readerDBs[db] = true
	}
	return t.reader, nil
}

// digestConn is how Digests connects to database db: as the reader
// account (reading the snapshot's tables and views, running nothing of
// it with the administrator's rights), or with TrustSnapshot as the
// address's user.
func (t *Target) digestConn(ctx context.Context, db string) (*conn, error) {
	if t.opts.TrustSnapshot || t.loaded == nil {
		return t.c, nil
	}
	r, err := t.readerFor(ctx, db)
	if err != nil {
		return nil, err
	}
	c := *t.c
	c.user, c.password = r.user, r.password
	return &c, nil
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
