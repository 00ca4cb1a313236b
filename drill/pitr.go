package drill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/coffer-backup/coffer/internal/pgephemeral"
	"github.com/coffer-backup/coffer/pitr"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/restore"
)

// A PITR drill proves point-in-time recovery: it restores a physical base
// backup and the archived WAL into an ephemeral server, recovers to the
// target (or to the end of the archive), and checks what that proves:
// every chunk of the base backup and every WAL file fetched matched its
// MAC, the archive holds every segment from the backup's start to the
// target, recovery replayed past the backup's end and stopped at the
// target, pg_amcheck finds no corruption, every table can be counted,
// and the user's assertions hold. Its phases are fetch (base backup and
// WAL), recovery and checks; its RPO is the age of the newest archived
// segment.

// Checks of a PITR drill, beside the ones every drill has.
const (
	checkWALChain  = "wal chain"
	checkWALFiles  = "wal segments"
	checkWALAge    = "wal archive age"
	checkRecovery  = "recovery target"
	checkAmcheck   = "pg_amcheck"
	checkRowCounts = "row counts"
)

// choosePITR returns the base backup to drill: opts.Snapshot if it names
// one, else the newest physical snapshot of the source taken before the
// target time (any, without one).
func choosePITR(ctx context.Context, repo *repository.Repo, opts Options) (*repository.Snapshot, []string, error) {
	if opts.Sample > 0 || opts.Scratch != "" {
		return nil, nil, errors.New("drill --pitr restores one base backup into an ephemeral server: --sample and --scratch do not apply")
	}
	all, damaged, err := snapshots(ctx, repo)
	if err != nil {
		return nil, nil, err
	}
	var snap *repository.Snapshot
	if opts.Snapshot != "latest" {
		if snap, err = repo.FindSnapshot(ctx, opts.Snapshot, opts.Source); err != nil {
			return nil, nil, err
		}
		if snap.Physical == nil {
			return nil, nil, fmt.Errorf("drill --pitr: snapshot %s is not a physical base backup (coffer backup --physical)", snap.ID().Short())
		}
		return snap, damaged, nil
	}
	if snap = repository.NewestPhysical(all, opts.Source, opts.TargetTime); snap == nil {
		what := "no physical base backup"
		if opts.Source != "" {
			what += " of source " + opts.Source
		}
		if !opts.TargetTime.IsZero() {
			what += " was taken before " + opts.TargetTime.UTC().Format(time.RFC3339)
		}
		return nil, nil, fmt.Errorf("drill --pitr: %s: take one with coffer backup --physical", what)
	}
	return snap, damaged, nil
}

// pitrRun is one PITR drill in progress.
type pitrRun struct {
	*runner
	repo *repository.Repo
	snap *repository.Snapshot
	srv  *pgephemeral.Server
	seg  repository.WALSegments

	archive  map[string]bool // segment files in the archive
	path     repository.Path // the timelines recovery follows
	newest   *repository.WALObject
	gapFirst string // the first segment missing after the backup's start, if any
}

func drillPITR(ctx context.Context, repo *repository.Repo, snap *repository.Snapshot, name string, opts Options) (run SnapshotRun) {
	run = SnapshotRun{Snapshot: snap.ID().String(), Source: snap.Source, Engine: snap.Engine, SnapshotAt: snap.Time, Size: snap.Size}
	r := &runner{run: &run, opts: opts}
	defer r.verdict()
	dir, m, ok := r.begin(name)
	if !ok {
		return run
	}
	srv, err := pgephemeral.Prepare(ctx, pgephemeral.Options{Dir: tempDir(opts.TempDir), Created: func(d string) error {
		m.Ephemeral = d
		return m.save(opts.StateDir)
	}})
	if !r.must("scratch", err) {
		os.RemoveAll(dir)
		m.remove(opts.StateDir)
		return run
	}
	run.Target = "ephemeral PostgreSQL in " + srv.Dir
	defer func() {
		err := errors.Join(srv.Stop(context.WithoutCancel(ctx)), os.RemoveAll(dir))
		if err == nil {
			err = m.remove(opts.StateDir)
		}
		r.check("scratch removed", err, "the ephemeral server, its data directory and the work directory were removed")
	}()
	seg, err := snap.Physical.Check("snapshots/" + snap.ID().String())
	if !r.must(checkWALChain, err) {
		return run
	}
	p := &pitrRun{runner: r, repo: repo, snap: snap, srv: srv, seg: seg}
	p.steps(ctx)
	return run
}

func (p *pitrRun) steps(ctx context.Context) {
	target := pitr.Target{Time: p.opts.TargetTime}
	err := p.phase("fetch", func() error {
		if !p.fetchBase(ctx) || !p.checkStart(ctx) || !p.fetchWAL(ctx) {
			return errors.New("failed")
		}
		err := pitr.Configure(p.srv.DataDir(), target, pitr.Server{})
		p.must(checkRecovery, err)
		return err
	})
	if err != nil {
		return
	}
	superuser := Superuser(p.snap.Physical, p.opts.Superuser)
	err = p.phase("recovery", func() error { return p.srv.Recover(ctx, superuser) })
	if err != nil {
		p.check(checkRecovery, err, "")
		if p.gapFirst != "" {
			p.check(checkWALChain, p.missing(p.gapFirst), "")
		}
		return
	}
	p.phase("checks", func() error {
		replay, ok := p.checkTarget(ctx)
		if ok {
			p.checkChain(replay)
		}
		p.checkAge()
		p.amcheck(ctx)
		p.countRows(ctx)
		if len(p.opts.Assertions) > 0 {
			p.runAssertions(ctx)
		}
		return nil
	})
}

// fetchBase restores the base backup into the data directory: every
// chunk is checked against its id and the stream against its digest.
func (p *pitrRun) fetchBase(ctx context.Context) bool {
	layout, parts, err := pitr.Plan(p.repo, p.snap, p.srv.DataDir(), p.srv.TablespaceDir(), nil)
	if !p.must("chunks and stream digest", err) {
		return false
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := restore.Run(ctx, p.repo, p.snap, pw, restore.Options{})
		pw.CloseWithError(err)
		done <- err
	}()
	files, err := pitr.ExtractBackup(pr, parts, p.snap.Physical, layout)
	stopped := errors.New("extraction stopped")
	pr.CloseWithError(stopped)
	if rerr := <-done; rerr != nil && !errors.Is(rerr, stopped) {
		err = rerr // the damaged chunk, rather than the broken pipe it caused
	}
	return p.check("chunks and stream digest", err, fmt.Sprintf("%d chunks of the base backup decrypted and matched their ids; the %d-byte stream matched its digest; %d files extracted%s", p.snap.ChunksTotal, p.snap.Size, files, tablespacesNote(layout)))
}

// checkStart lists the archive and fails unless it holds every segment
// recovery needs to become consistent: from the backup's start to the
// segment of its end.
func (p *pitrRun) checkStart(ctx context.Context) bool {
	files, _, err := p.repo.WALFiles(ctx)
	if !p.must(checkWALChain, err) {
		return false
	}
	info := p.snap.Physical
	tl, _, ok := p.seg.Parse(info.StartWAL)
	stop, err := repository.ParseLSN(info.StopLSN)
	if !ok || err != nil {
		return p.must(checkWALChain, fmt.Errorf("the base backup records start segment %q and end %q, not WAL names coffer reads", info.StartWAL, info.StopLSN))
	}
	p.archive = map[string]bool{}
	last := ""
	for i, f := range files {
		t, _, ok := p.seg.Parse(f.File)
		if !ok {
			continue
		}
		p.archive[f.File] = true
		if t == tl && f.File > last {
			last = f.File
		}
		if p.newest == nil || f.File > p.newest.File {
			p.newest = &files[i]
		}
	}
	stopSeg := p.seg.OfLSN(tl, stop)
	if last == "" || last < info.StartWAL {
		return p.must(checkWALChain, p.missing(info.StartWAL))
	}
	if _, p.gapFirst = p.seg.Chain(p.archive, info.StartWAL, last); p.gapFirst != "" && p.gapFirst <= stopSeg {
		return p.must(checkWALChain, fmt.Errorf("%w; the base backup ends in segment %s: without it, no recovery from this backup can become consistent", p.missing(p.gapFirst), stopSeg))
	}
	return true
}

// Superuser is the role a restore of the base backup logs in as: the
// override when given, else the one the backup recorded (checked by
// PhysicalInfo.Check), else postgres, initdb's usual.
func Superuser(info *repository.PhysicalInfo, override string) string {
	switch {
	case override != "":
		return override
	case info.Superuser != "":
		return info.Superuser
	}
	return "postgres"
}

func (p *pitrRun) missing(segment string) error {
	return fmt.Errorf("WAL segment %s is missing from the archive (no object wal/%s.g…): recovery cannot replay past it", segment, segment)
}

// fetchWAL fetches the WAL recovery may replay into the data directory,
// where the server's restore_command copies it from; each file is
// decrypted and checked against its MAC, and one that fails is named.
func (p *pitrRun) fetchWAL(ctx context.Context) bool {
	got, err := pitr.FetchWAL(ctx, p.repo, "snapshots/"+p.snap.ID().String(), p.snap.Physical, p.srv.DataDir(), "latest")
	if err == nil {
		p.path = got.Path
	}
	return p.check(checkWALFiles, err, fmt.Sprintf("%d WAL files (%d bytes) from segment %s on were fetched, decrypted and matched their MACs; recovery follows timeline %d", got.Files, got.Bytes, p.snap.Physical.StartWAL, got.Path.Target()))
}

// checkTarget reads where recovery stopped: the end of the last record
// replayed must be at or after the backup's end, and the last commit
// replayed at or before the target time.
func (p *pitrRun) checkTarget(ctx context.Context) (uint64, bool) {
	cfg, err := p.srv.ConnConfig("")
	if !p.must(checkRecovery, err) {
		return 0, false
	}
	c, err := connect(ctx, cfg)
	if !p.must(checkRecovery, err) {
		return 0, false
	}
	defer c.Close(context.WithoutCancel(ctx))
	var replayed, current string
	var last *time.Time
	err = c.QueryRow(ctx, `SELECT coalesce(pg_catalog.pg_last_wal_replay_lsn()::text, ''), pg_catalog.pg_current_wal_lsn()::text,
		pg_catalog.pg_last_xact_replay_timestamp()`).Scan(&replayed, &current, &last)
	if !p.must(checkRecovery, err) {
		return 0, false
	}
	what := "the end of the last record replayed"
	if replayed == "" {
		replayed, what = current, "the server's WAL location after promotion"
	}
	lsn, err := repository.ParseLSN(replayed)
	if !p.must(checkRecovery, err) {
		return 0, false
	}
	stop, _ := repository.ParseLSN(p.snap.Physical.StopLSN)
	if lsn < stop {
		return 0, p.must(checkRecovery, fmt.Errorf("recovery stopped at %s (%s), before the base backup's end %s: the restored cluster is not consistent", replayed, what, p.snap.Physical.StopLSN))
	}
	detail := fmt.Sprintf("recovery replayed WAL to %s (%s), at or after the base backup's end %s", replayed, what, p.snap.Physical.StopLSN)
	switch {
	case last == nil:
		detail += "; it replayed no commit"
	case !p.opts.TargetTime.IsZero() && last.After(p.opts.TargetTime):
		return 0, p.must(checkRecovery, fmt.Errorf("%s, but its last replayed commit is at %s, after the target %s", detail, last.UTC().Format(time.RFC3339Nano), p.opts.TargetTime.UTC().Format(time.RFC3339Nano)))
	default:
		detail += "; the last commit replayed is at " + last.UTC().Format(time.RFC3339Nano)
	}
	if !p.opts.TargetTime.IsZero() {
		detail += ", at or before the target " + p.opts.TargetTime.UTC().Format(time.RFC3339Nano)
	} else {
		detail += " (no target: recovery to the end of the archived WAL)"
	}
	return lsn, p.check(checkRecovery, nil, detail+"; the server was promoted")
}

// checkChain checks the archive for every segment from the backup's start
// to the target's (where recovery stopped) or, without a target, to the
// newest archived segment recovery reads, along the timelines it follows.
func (p *pitrRun) checkChain(replayed uint64) {
	info := p.snap.Physical
	path := p.path
	if len(path) == 0 {
		path = repository.Path{{Timeline: uint32(info.Timeline)}}
	}
	_, start, _ := p.seg.Parse(info.StartWAL)
	end, why := p.seg.SegmentOf(replayed), "the segment where recovery reached the target"
	if p.opts.TargetTime.IsZero() {
		end, _ = p.seg.NewestOn(p.archive, path)
		why = fmt.Sprintf("the newest archived segment recovery reads, on timeline %d", path.TimelineOf(end))
	}
	end = max(end, start)
	n, missing := p.seg.ChainPath(p.archive, path, start, end)
	if missing != "" {
		p.check(checkWALChain, p.missing(missing), "")
		return
	}
	detail := fmt.Sprintf("the archive holds all %d segments from %s (the base backup's start) to %s (%s)", n, info.StartWAL, p.seg.Name(path.TimelineOf(end), end), why)
	if len(path) > 1 {
		detail += fmt.Sprintf(", following timelines %s", pathString(path))
	}
	if p.gapFirst != "" {
		if _, g, _ := p.seg.Parse(p.gapFirst); g > end {
			detail += fmt.Sprintf("; after it, segment %s is missing: no later target can be reached", p.gapFirst)
		}
	}
	p.check(checkWALChain, nil, detail)
}

func pathString(path repository.Path) string {
	var s []string
	for _, sp := range path {
		s = append(s, fmt.Sprint(sp.Timeline))
	}
	return strings.Join(s, " → ")
}

// checkAge reports the RPO: the age of the newest archived segment, by
// its object's modification time as the storage gives it.
func (p *pitrRun) checkAge() {
	if p.newest == nil || p.newest.Stored.IsZero() {
		p.check(checkWALAge, errors.New("the storage gives no modification time for the newest WAL segment"), "")
		return
	}
	age := max(p.opts.Now().Sub(p.newest.Stored), 0)
	p.run.RPO = RPO{Age: age}
	p.check(checkWALAge, nil, fmt.Sprintf("RPO %s: the newest archived WAL segment, %s, was stored at %s by the storage's clock (the modification time of %s); "+
		"a failure now would lose what the server wrote since, and what it had not yet archived",
		age.Round(time.Second), p.newest.File, p.newest.Stored.UTC().Format(time.RFC3339), p.newest.Name()))
}

// amcheckCmd is pg_amcheck's command line: every database, heap and
// B-tree, with each index checked against all heap tuples.
var amcheckCmd = []string{"pg_amcheck", "--all", "--install-missing", "--heapallindexed", "--no-password"}

func (p *pitrRun) amcheck(ctx context.Context) {
	out, err := p.srv.Client(ctx, amcheckCmd...)
	if err != nil {
		p.check(checkAmcheck, fmt.Errorf("%s: %w\n%s", strings.Join(amcheckCmd, " "), err, tail(out)), "")
		return
	}
	p.check(checkAmcheck, nil, strings.Join(amcheckCmd, " ")+" found no corruption in any heap or B-tree index of any database")
}

func tail(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 20 {
		lines = append([]string{"…"}, lines[len(lines)-20:]...)
	}
	return strings.Join(lines, "\n")
}

// tablespacesNote says where the tablespaces went, if there are any.
func tablespacesNote(l *pitr.Layout) string {
	if len(l.Tablespaces) == 0 {
		return ""
	}
	return fmt.Sprintf(", %d tablespaces into the ephemeral server's directory %s", len(l.Tablespaces), filepath.Dir(l.Dirs()[1]))
}
