package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/backup"
	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/engine/command"
	"github.com/coffer-backup/coffer/engine/mysql"
	"github.com/coffer-backup/coffer/engine/postgres"
	"github.com/coffer-backup/coffer/engine/sqlite"
	"github.com/coffer-backup/coffer/internal/termsafe"
	"github.com/coffer-backup/coffer/repository"
)

type backupOptions struct {
	source   string
	stdin    bool
	exec     string
	sqlite   string
	pg       string
	mysql    string
	allDBs   bool
	physical bool
	tags     []string
	host     string
}

func newBackupCmd(g *globals) *cobra.Command {
	o := &backupOptions{}
	cmd := &cobra.Command{
		Use:   "backup --source NAME (--stdin | --exec COMMAND | --sqlite PATH | --postgres URL | --mysql URL)",
		Short: "Back up a stream into a new snapshot",
		Long: `backup reads a stream (standard input, or a command's standard output), stores
what the repository does not have yet, and writes a snapshot. It needs only the
writer key (COFFER_WRITER_KEY_FILE), and always needs it: data is encrypted to
the recipient in that local file, never to one read from the repository. If
the command fails or the stream breaks, no snapshot is written.

Databases are dumped consistently and their per-table digests recorded:
  --postgres postgres://USER@HOST:5432/DB   pg_dump (custom format) and the globals; the
                                            address in any form libpq takes: a URL,
                                            'host=… port=… user=… dbname=…', or a bare
                                            database name, with PGHOST, PGPORT, PGUSER,
                                            PGDATABASE for the rest (no host: the Unix socket)
  --mysql mysql://USER@HOST:3306/DB         mariadb-dump / mysqldump --single-transaction
  --sqlite PATH                             an online copy of the database file
  --postgres URL --physical                 a physical base backup of the whole server,
                                            every tablespace (BASE_BACKUP on a replication
                                            connection, PostgreSQL 15+), for point-in-time
                                            recovery with archive_command = 'coffer wal-push %p'
Passwords come from the environment or files, never from the URL: PGPASSWORD or
PGPASSFILE for PostgreSQL, MYSQL_PWD or COFFER_MYSQL_PASSWORD_FILE for MySQL.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { streamingGC(); return runBackup(cmd, g, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.source, "source", "", "name of what is backed up, e.g. customers-db (required)")
	f.BoolVar(&o.stdin, "stdin", false, "back up standard input")
	f.StringVar(&o.exec, "exec", "", "back up the standard output of this shell command")
	f.StringVar(&o.sqlite, "sqlite", "", "back up this SQLite database (a consistent copy; it may be in use)")
	f.StringVar(&o.pg, "postgres", "", "back up this PostgreSQL database (postgres://USER@HOST:PORT/DB, conninfo, or a database name with PG* variables)")
	f.StringVar(&o.mysql, "mysql", "", "back up this MariaDB/MySQL database (mysql://USER@HOST:PORT/DB)")
	f.BoolVar(&o.allDBs, "all-databases", false, "with --postgres or --mysql: every database of the server")
	f.BoolVar(&o.physical, "physical", false, "with --postgres: a physical base backup of the whole server and its tablespaces (the replication protocol's BASE_BACKUP), for point-in-time recovery with the WAL archive")
	f.StringArrayVar(&o.tags, "tag", nil, "tag the snapshot (repeatable)")
	f.StringVar(&o.host, "host", "", "host name to record (default: this host's name)")
	return cmd
}

type backupResult struct {
	Snapshot    string  `json:"snapshot"`
	Source      string  `json:"source"`
	BytesRead   int64   `json:"size_bytes"`   // the stream read: the snapshot's size
	BytesNew    int64   `json:"new_bytes"`    // of which the repository did not have yet
	BytesStored int64   `json:"stored_bytes"` // what that took, compressed and encrypted
	ChunksTotal int     `json:"chunks_total"`
	ChunksNew   int     `json:"chunks_new"`
	Packs       int     `json:"packs"`
	Seconds     float64 `json:"duration_seconds"`
}

func runBackup(cmd *cobra.Command, g *globals, o *backupOptions) error {
	ctx := cmd.Context()
	if o.source == "" {
		return errors.New("backup: --source NAME is required")
	}
	if n := countSet(o.stdin, o.exec != "", o.sqlite != "", o.pg != "", o.mysql != ""); n != 1 {
		return errors.New("backup: give exactly one of --stdin, --exec COMMAND, --sqlite PATH, --postgres URL or --mysql URL")
	}
	if o.physical && (o.pg == "" || o.allDBs) {
		return errors.New("backup: --physical goes with --postgres (and backs up the whole server: no --all-databases)")
	}
	if o.allDBs && o.pg == "" && o.mysql == "" {
		return errors.New("backup: --all-databases goes with --postgres or --mysql")
	}
	// A terminal is no dump: what was typed would be a snapshot, and a
	// blocked read of it would not even stop on Ctrl-C.
	if o.stdin && isTerminal(os.Stdin) {
		return errors.New("backup --stdin: standard input is a terminal: pipe the stream in (pg_dump -Fc shop | coffer backup --source shop --stdin), or back the database up directly (--postgres, --mysql, --sqlite)")
	}
	if o.host == "" {
		o.host, _ = os.Hostname()
	}
	if os.Getenv("COFFER_WRITER_KEY_FILE") == "" {
		return errors.New("backup: no writer key file: set COFFER_WRITER_KEY_FILE to the writer key that `coffer init` wrote. " +
			"A backup encrypts to the recipient in that local file, never to one read from the repository, " +
			"which whoever can write the storage could have replaced (an operator can decrypt keys/writer.age " +
			"with an identity and keep it as a file, once `coffer key trust` shows its fingerprint is the pinned one)")
	}
	repo, err := g.openRepo(ctx, false)
	if err != nil {
		return err
	}
	opts := backup.Options{Source: o.source, Host: o.host, Tags: o.tags, Engine: "stdin", Format: "raw", Tool: "coffer " + version, Now: clock()}
	var src io.Reader = cmd.InOrStdin()
	switch {
	case o.exec != "":
		s, err := command.Start(ctx, o.exec)
		if err != nil {
			return err
		}
		defer s.Close()
		src, opts.Engine = s, "exec"
	case o.sqlite != "":
		d, err := sqlite.Start(ctx, o.sqlite, "")
		if err != nil {
			return err
		}
		defer d.Close()
		src, opts.Engine, opts.Format = d, "sqlite", sqlite.Format
		opts.ServerVersion, opts.Databases = "SQLite "+d.Version, []string{d.Database}
		opts.Private = func() any { return engine.Report{Tables: d.Digests} }
	case o.pg != "" && o.physical:
		p, err := postgres.OpenPhysical(ctx, o.pg)
		if err != nil {
			return err
		}
		defer p.Close()
		src, opts.Engine, opts.Format, opts.ServerVersion = p, "postgres-physical", postgres.PhysicalFormat, p.Version
		opts.Physical = p.Info
		opts.Private = func() any { return engine.Report{Parts: p.Parts()} }
	case o.pg != "":
		s, err := postgres.Open(ctx, o.pg, postgres.Options{AllDatabases: o.allDBs})
		if err != nil {
			return err
		}
		for _, n := range s.Notes() {
			fmt.Fprintln(cmd.ErrOrStderr(), "note:", termsafe.String(n))
		}
		c := useDatabase(ctx, &opts, "postgres", postgres.Format, s)
		defer c.Close()
		src = c
	case o.mysql != "":
		s, err := mysql.Open(ctx, o.mysql, mysql.Options{AllDatabases: o.allDBs})
		if err != nil {
			return err
		}
		c := useDatabase(ctx, &opts, "mysql", mysql.Format, s)
		defer c.Close()
		src = c
	}
	prog := newProgress(os.Stderr, "backup")
	opts.Progress = prog.backup
	sum, err := backup.Run(ctx, repo, src, opts)
	prog.done()
	rec := repository.AuditRecord{Source: o.source, Detail: map[string]string{"engine": opts.Engine}}
	if err == nil {
		rec.Snapshot = sum.Snapshot.ID().String()
		rec.Detail["size_bytes"], rec.Detail["stored_bytes"] = fmt.Sprint(sum.BytesRead), fmt.Sprint(sum.BytesStored)
	}
	audit(ctx, repo, "backup", err, rec)
	if err != nil {
		return err
	}
	res := backupResult{
		Snapshot: sum.Snapshot.ID().String(), Source: o.source, BytesRead: sum.BytesRead, BytesNew: sum.BytesNew,
		BytesStored: sum.BytesStored, ChunksTotal: sum.ChunksTotal, ChunksNew: sum.ChunksNew, Packs: sum.Packs,
		Seconds: sum.Duration.Seconds(),
	}
	if g.json {
		return printJSON(cmd.OutOrStdout(), res)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "snapshot %s saved: %s read, %s new, %s stored in %s (%d of %d chunks new)\n",
		sum.Snapshot.ID().Short(), bytesStr(sum.BytesRead), bytesStr(sum.BytesNew), bytesStr(sum.BytesStored),
		sum.Duration.Round(time.Millisecond), sum.ChunksNew, sum.ChunksTotal)
	return nil
}

func countSet(flags ...bool) int {
	n := 0
	for _, f := range flags {
		if f {
			n++
		}
	}
	return n
}

// database is a database server's dump, as the engines provide it.
type database interface {
	Parts() []engine.PartSource
	Report() engine.Report
	ServerVersion() string
	Databases() []string
}

// useDatabase makes the stream of db's parts the backup's source and
// records what the snapshot says about it.
func useDatabase(ctx context.Context, opts *backup.Options, name, format string, db database) *engine.Concat {
	c := engine.NewConcat(ctx, db.Parts()...)
	opts.Engine, opts.Format = name, format
	opts.ServerVersion, opts.Databases = db.ServerVersion(), db.Databases()
	opts.Private = func() any {
		rep := db.Report()
		rep.Parts = c.Parts()
		return rep
	}
	return c
}
