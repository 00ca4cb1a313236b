package postgres

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/coffer-backup/coffer/engine/command"
	"github.com/coffer-backup/coffer/repository"
)

// PhysicalFormat is the snapshot format of a physical base backup: the
// tar stream of `pg_basebackup -D - -Ft -X none` (one tablespace, no WAL;
// the WAL archive holds what it needs).
const PhysicalFormat = "pg_basebackup-tar"

// Physical is a running physical base backup: its stream, and what it
// learns of the backup as the stream passes.
type Physical struct {
	st      *command.Stream
	pw      *io.PipeWriter
	tee     io.Reader
	done    chan struct{}
	mu      sync.Mutex
	info    repository.PhysicalInfo
	err     error // from reading the tar stream for backup_label and the manifest
	Version string
}

// OpenPhysical checks the server at dsn (a replication-capable user: a
// superuser, or a role with REPLICATION) and starts pg_basebackup.
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
	var walLevel, sysID string
	var spaces int
	var segSize int64
	err = pc.QueryRow(ctx, `SELECT current_setting('wal_level'), (SELECT system_identifier::text FROM pg_control_system()),
		(SELECT count(*) FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global')),
		(SELECT setting::bigint * CASE unit WHEN 'B' THEN 1 WHEN 'kB' THEN 1024 WHEN 'MB' THEN 1048576 ELSE 1 END FROM pg_settings WHERE name = 'wal_segment_size')`).Scan(&walLevel, &sysID, &spaces, &segSize)
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
	if spaces > 0 {
		return nil, fmt.Errorf("the server at %s has %d tablespaces besides pg_default and pg_global: physical backups of several tablespaces are not supported yet; use a logical backup (--postgres without --physical)", c.addr(), spaces)
	}
	t, err := findTools(ctx, srv.major, "pg_basebackup")
	if err != nil {
		return nil, err
	}
	st, err := command.StartArgs(ctx, "pg_basebackup", c.env(db), t.path["pg_basebackup"],
		"--pgdata=-", "--format=tar", "--wal-method=none", "--checkpoint=fast", "--no-password", "--label=coffer", "--no-sync")
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	p := &Physical{st: st, pw: pw, done: make(chan struct{}), Version: srv.version}
	p.info.SystemIdentifier, p.info.WALSegmentSize = sysID, segSize
	p.info.Superuser, p.info.ServerVersionNum = superuser, versionNum
	p.tee = io.TeeReader(st, pw)
	go p.scan(pr)
	return p, nil
}

// Read reads the tar stream.
func (p *Physical) Read(b []byte) (int, error) {
	n, err := p.tee.Read(b)
	if err == io.EOF {
		p.pw.Close()
		<-p.done
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.err != nil {
			return n, p.err
		}
		if p.info.StartLSN == "" || p.info.StopLSN == "" {
			return n, errors.New("pg_basebackup's stream holds no backup_label or no backup_manifest: it is not a base backup coffer can restore")
		}
	}
	return n, err
}

// Close stops pg_basebackup.
func (p *Physical) Close() error {
	p.pw.CloseWithError(errors.New("closed"))
	return p.st.Close()
}

// Info returns what the stream said, complete once Read returned io.EOF.
func (p *Physical) Info() *repository.PhysicalInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	info := p.info
	return &info
}

var (
	labelStart    = regexp.MustCompile(`(?m)^START WAL LOCATION: ([0-9A-F]+/[0-9A-F]+) \(file ([0-9A-F]{24})\)$`)
	labelTimeline = regexp.MustCompile(`(?m)^START TIMELINE: ([0-9]+)$`)
)

// scan reads the tar stream beside the backup, for backup_label and the
// end of backup_manifest (its WAL range).
func (p *Physical) scan(r *io.PipeReader) {
	defer close(p.done)
	err := func() error {
		tr := tar.NewReader(r)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("pg_basebackup's stream is not a tar archive: %w", err)
			}
			switch h.Name {
			case "backup_label":
				b, err := io.ReadAll(io.LimitReader(tr, 64<<10))
				if err != nil {
					return err
				}
				p.parseLabel(b)
			case "backup_manifest":
				if err := p.parseManifest(tr); err != nil {
					return err
				}
			}
		}
	}()
	io.Copy(io.Discard, r)
	p.mu.Lock()
	p.err = err
	p.mu.Unlock()
}

func (p *Physical) parseLabel(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m := labelStart.FindSubmatch(b); m != nil {
		p.info.StartLSN, p.info.StartWAL = string(m[1]), string(m[2])
	}
	if m := labelTimeline.FindSubmatch(b); m != nil {
		p.info.Timeline, _ = strconv.Atoi(string(m[1]))
	}
}

// parseManifest reads the manifest's WAL range. It keeps only the last
// part of the manifest in memory: the range comes after the file list.
func (p *Physical) parseManifest(r io.Reader) error {
	const keep = 1 << 20
	var tail []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		tail = append(tail, buf[:n]...)
		if len(tail) > 2*keep {
			tail = append(tail[:0], tail[len(tail)-keep:]...)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	i := bytes.LastIndex(tail, []byte(`"WAL-Ranges"`))
	if i < 0 {
		return errors.New("pg_basebackup's manifest has no WAL-Ranges")
	}
	j := bytes.IndexByte(tail[i:], '[')
	k := bytes.IndexByte(tail[i:], ']')
	if j < 0 || k < j {
		return errors.New("pg_basebackup's manifest WAL-Ranges is malformed")
	}
	var ranges []struct {
		Timeline int    `json:"Timeline"`
		Start    string `json:"Start-LSN"`
		End      string `json:"End-LSN"`
	}
	if err := json.Unmarshal(tail[i+j:i+k+1], &ranges); err != nil || len(ranges) == 0 {
		return fmt.Errorf("pg_basebackup's manifest WAL-Ranges is malformed: %v", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	last := ranges[len(ranges)-1]
	p.info.StopLSN = strings.ToUpper(last.End)
	return nil
}

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
	LastTime     time.Time `json:"last_archived_time"`
	LastUnix     float64   `json:"last_archived_unix"` // 0 when none
	LastFailed   string    `json:"last_failed_wal"`
	FailedTime   time.Time `json:"last_failed_time"`
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
		st.LastTime, st.LastUnix = last.UTC(), float64(last.UnixNano())/1e9
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
