package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/coffer-backup/coffer/engine"
	"github.com/coffer-backup/coffer/repository"
)

// PhysicalFormat is the snapshot format of a physical base backup: the
// archives of BASE_BACKUP one after the other, as the parts OID.tar (each
// user tablespace), base.tar and backup_manifest (docs/format.md). No WAL:
// the WAL archive holds what recovery needs.
const PhysicalFormat = "pg_basebackup-parts"

// PhysicalFormatTar is the format of physical base backups written before
// tablespaces were supported: the stream is base.tar alone, with the
// manifest inside, as `pg_basebackup -D - -Ft -X none` writes it.
const PhysicalFormatTar = "pg_basebackup-tar"

// Physical is a running physical base backup: its stream, and what it
// learns of the backup as the stream passes.
type Physical struct {
	ctx     context.Context
	pc      *pgconn.PgConn
	bb      *baseBackup
	concat  *engine.Concat
	info    repository.PhysicalInfo
	ended   bool
	Version string
}

// OpenPhysical checks the server at dsn (a replication-capable user: a
// superuser, or a role with REPLICATION) and starts a base backup on a
// replication connection.
func OpenPhysical(ctx context.Context, dsn string) (*Physical, error) {
	c, db, pc, err := connectServer(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer pc.Close(context.Background())
	srv, err := c.describe(ctx, pc)
	if err != nil {
		return nil, err
	}
	if srv.major < 15 {
		return nil, fmt.Errorf("the server at %s is %s: physical backups need PostgreSQL 15 or later (BASE_BACKUP's archive stream); use a logical backup (--postgres without --physical)", c.addr(), srv.version)
	}
	var walLevel, sysID string
	var segSize int64
	err = pc.QueryRow(ctx, `SELECT current_setting('wal_level'), (SELECT system_identifier::text FROM pg_control_system()),
		(SELECT setting::bigint * CASE unit WHEN 'B' THEN 1 WHEN 'kB' THEN 1024 WHEN 'MB' THEN 1048576 ELSE 1 END FROM pg_settings WHERE name = 'wal_segment_size')`).Scan(&walLevel, &sysID, &segSize)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL server at %s: read its WAL settings: %w", c.addr(), err)
	}
	if walLevel == "minimal" {
		return nil, fmt.Errorf("the server at %s has wal_level = minimal: a physical backup needs replica or logical (and archive_mode = on with archive_command = 'coffer wal-push %%p')", c.addr())
	}
	// The bootstrap superuser (oid 10), which a restore logs in as.
	var superuser string
	var versionNum int
	err = pc.QueryRow(ctx, `SELECT coalesce((SELECT rolname::text FROM pg_catalog.pg_roles WHERE oid = 10), ''),
		current_setting('server_version_num')::int`).Scan(&superuser, &versionNum)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL server at %s: read its superuser and version: %w", c.addr(), err)
	}
	if !repository.ValidRoleName(superuser) {
		superuser = "" // not recorded: a restore is told the name (--pitr-superuser)
	}
	if err := checkArchiving(ctx, pc, c.addr()); err != nil {
		return nil, err
	}
	p := &Physical{ctx: ctx, Version: srv.version}
	p.info.SystemIdentifier, p.info.WALSegmentSize = sysID, segSize
	p.info.Superuser, p.info.ServerVersionNum = superuser, versionNum
	if p.pc, err = c.replication(ctx, db); err != nil {
		return nil, err
	}
	if p.bb, err = startBaseBackup(ctx, p.pc); err != nil {
		p.Close()
		return nil, fmt.Errorf("PostgreSQL server at %s: %w", c.addr(), err)
	}
	if err := p.started(ctx, pc); err != nil {
		p.Close()
		return nil, fmt.Errorf("PostgreSQL server at %s: %w", c.addr(), err)
	}
	return p, nil
}

// replication opens a physical replication connection, as pg_basebackup's.
func (c *conn) replication(ctx context.Context, db string) (*pgconn.PgConn, error) {
	cfg, err := c.config(db)
	if err != nil {
		return nil, err
	}
	rc := cfg.Config.Copy()
	rc.RuntimeParams["replication"] = "true"
	delete(rc.RuntimeParams, "search_path")
	cctx, cancel := context.WithTimeout(ctx, ConnectTimeout)
	defer cancel()
	pc, err := pgconn.ConnectConfig(cctx, rc)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL server at %s: open a replication connection as %s (the user needs REPLICATION, and pg_hba.conf a \"replication\" line for it): %w", c.addr(), c.user, err)
	}
	return pc, nil
}

// started records what the backup's start says: its position, and the
// tablespaces with their names (read from pg_tablespace on pc), whose
// parts come first in the stream, then base.tar and the manifest.
func (p *Physical) started(ctx context.Context, pc *pgx.Conn) error {
	seg, err := repository.NewWALSegments(p.info.WALSegmentSize)
	if err != nil {
		return err
	}
	st := p.bb.start
	p.info.StartLSN, p.info.Timeline = st.LSN.String(), int(st.TimelineID)
	p.info.StartWAL = seg.Name(uint32(st.TimelineID), uint64(st.LSN)/uint64(p.info.WALSegmentSize))
	names := map[uint32]string{}
	rows, err := pc.Query(ctx, "SELECT oid::int8, spcname::text FROM pg_catalog.pg_tablespace")
	if err != nil {
		return fmt.Errorf("read pg_tablespace: %w", err)
	}
	for rows.Next() {
		var oid int64
		var name string
		if err := rows.Scan(&oid, &name); err != nil {
			return err
		}
		names[uint32(oid)] = name
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read pg_tablespace: %w", err)
	}
	var sources []engine.PartSource
	for _, ts := range st.Tablespaces {
		oid := uint32(ts.OID)
		t := repository.Tablespace{OID: oid, Name: names[oid], Location: ts.Location}
		p.info.Tablespaces = append(p.info.Tablespaces, t)
		sources = append(sources, p.part(repository.TablespacePart(oid), ts.Location))
	}
	p.concat = engine.NewConcat(ctx, append(sources, p.part(repository.BasePart, ""), p.part(repository.ManifestPart, ""))...)
	return nil
}

func (p *Physical) part(name, location string) engine.PartSource {
	return engine.PartSource{Name: name, Open: func(ctx context.Context) (io.ReadCloser, error) {
		r, err := p.bb.open(ctx, name, location)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(r), nil
	}}
}

// Read reads the stream: the parts one after the other. At its end the
// backup's end position is read and what the snapshot records checked.
func (p *Physical) Read(b []byte) (int, error) {
	n, err := p.concat.Read(b)
	if err != io.EOF || p.ended {
		return n, err
	}
	p.ended = true
	end, ferr := p.bb.finish(p.ctx)
	if ferr != nil {
		return n, ferr
	}
	p.info.StopLSN = end.LSN.String()
	// Restore refuses what Check refuses: write nothing it would refuse.
	if _, cerr := p.info.Check("the base backup"); cerr != nil {
		var ce *repository.CorruptError
		if errors.As(cerr, &ce) {
			cerr = fmt.Errorf("the server's base backup cannot be recorded: it %s", strings.TrimPrefix(ce.Reason, "its base backup "))
		}
		return n, cerr
	}
	return n, io.EOF
}

// Close ends the replication connection (and so the backup, if it runs).
func (p *Physical) Close() error {
	if p.pc == nil {
		return nil
	}
	return p.pc.Close(context.Background())
}

// Info returns what the backup recorded, complete once Read returned
// io.EOF.
func (p *Physical) Info() *repository.PhysicalInfo {
	info := p.info
	info.Tablespaces = slices.Clone(p.info.Tablespaces)
	return &info
}

// Parts returns the stream's parts read so far, for the snapshot's
// private part.
func (p *Physical) Parts() []engine.Part { return p.concat.Parts() }

// checkArchiving refuses a server that does not archive its WAL, or whose
// archiving is failing: a base backup waits until the WAL it ends in is
// archived, and is useless without the WAL archive.
func checkArchiving(ctx context.Context, pc *pgx.Conn, addr string) error {
	var mode, command, failedWAL string
	var failing bool
	err := pc.QueryRow(ctx, `SELECT current_setting('archive_mode'), current_setting('archive_command'),
		coalesce(last_failed_wal, ''), coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false)
		FROM pg_stat_archiver`).Scan(&mode, &command, &failedWAL, &failing)
	if err != nil {
		return fmt.Errorf("PostgreSQL server at %s: read its archiving state: %w", addr, err)
	}
	switch {
	case mode == "off" || strings.TrimSpace(command) == "":
		return fmt.Errorf("the server at %s does not archive its WAL (archive_mode = %s): a physical base backup cannot be restored without it; set archive_mode = on and archive_command = 'coffer wal-push %%p' (see README, Point-in-time recovery)", addr, mode)
	case failing:
		return fmt.Errorf("the server at %s fails to archive WAL file %s (see pg_stat_archiver and the server's log): fix archive_command first; a base backup would wait for its WAL to be archived", addr, failedWAL)
	}
	return nil
}

// ArchiverStatus is what a server says of its WAL archiving.
type ArchiverStatus struct {
	Archived     int64     `json:"archived_count"`
	Failed       int64     `json:"failed_count"`
	LastArchived string    `json:"last_archived_wal"`
	LastTime     time.Time `json:"last_archived_time,omitzero"` // absent when none
	LastFailed   string    `json:"last_failed_wal"`
	FailedTime   time.Time `json:"last_failed_time,omitzero"`
	// Ready is the number of WAL files waiting to be archived (the
	// archiver's queue), -1 when the user may not list pg_wal.
	Ready int64 `json:"ready_files"`
}

// Archiver reads the WAL archiving state of the server at dsn.
func Archiver(ctx context.Context, dsn string) (*ArchiverStatus, error) {
	c, _, pc, err := connectServer(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer pc.Close(context.Background())
	st := &ArchiverStatus{Ready: -1}
	var last, failedTime *time.Time
	err = pc.QueryRow(ctx, `SELECT archived_count, failed_count, coalesce(last_archived_wal, ''), last_archived_time,
		coalesce(last_failed_wal, ''), last_failed_time FROM pg_stat_archiver`).Scan(&st.Archived, &st.Failed, &st.LastArchived, &last, &st.LastFailed, &failedTime)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL server at %s: read pg_stat_archiver: %w", c.addr(), err)
	}
	if last != nil {
		st.LastTime = last.UTC()
	}
	if failedTime != nil {
		st.FailedTime = failedTime.UTC()
	}
	// pg_ls_archive_statusdir (PostgreSQL 12+) needs superuser or
	// pg_monitor; without it the queue is unknown.
	var ready int64
	if pc.QueryRow(ctx, `SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'`).Scan(&ready) == nil {
		st.Ready = ready
	}
	return st, nil
}

// connectServer connects to the server at dsn for what concerns the whole
// server: to the address's database, or postgres when it names none.
func connectServer(ctx context.Context, dsn string) (*conn, string, *pgx.Conn, error) {
	c, err := parseDSN(dsn)
	if err != nil {
		return nil, "", nil, err
	}
	db := c.db
	if db == "" {
		db = "postgres"
	}
	pc, err := c.connect(ctx, db)
	return c, db, pc, err
}
