package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/internal/termsafe"
	"github.com/coffer-backup/coffer/pitr"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/restore"
)

// pgdataOptions are restore's point-in-time recovery flags.
type pgdataOptions struct {
	dir        string
	targetTime string
	target     pitr.Target
	port       int
	start      startOptions
	tsMap      []string
}

func addPGDataFlags(cmd *cobra.Command, o *pgdataOptions) {
	f := cmd.Flags()
	f.StringVar(&o.dir, "pgdata", "", "restore a physical base backup into this new data directory, with the WAL to recover to the target")
	f.StringVar(&o.targetTime, "target-time", "", "with --pgdata: recover to this time (RFC 3339, e.g. 2026-12-01T14:05:00Z)")
	f.StringVar(&o.target.LSN, "target-lsn", "", "with --pgdata: recover to this WAL location")
	f.StringVar(&o.target.Name, "target-name", "", "with --pgdata: recover to this restore point (pg_create_restore_point)")
	f.StringVar(&o.target.XID, "target-xid", "", "with --pgdata: recover to this transaction")
	f.StringVar(&o.target.Action, "target-action", "promote", "with --pgdata: at the target, promote, pause or shutdown")
	f.IntVar(&o.port, "port", 0, "with --pgdata: the restored server's port")
	f.StringVar(&o.target.Timeline, "target-timeline", "latest", "with --pgdata: the timeline recovery follows: latest (the newest in the archive), current (the base backup's) or a number")
	f.StringArrayVar(&o.tsMap, "tablespace-map", nil, "with --pgdata: restore tablespace OID or NAME into DIR (OID=DIR or NAME=DIR, repeatable; default DIR.tablespaces/OID beside the data directory, never the backup host's path)")
	addStartFlags(cmd, &o.start)
}

func (o *pgdataOptions) parse() error {
	if o.targetTime != "" {
		t, err := time.Parse(time.RFC3339Nano, o.targetTime)
		if err != nil {
			return fmt.Errorf("restore: --target-time %q: give an RFC 3339 time such as 2026-12-01T14:05:00Z", o.targetTime)
		}
		o.target.Time = t
	}
	if err := o.target.Check(); err != nil {
		return err
	}
	return o.start.parse(o.port)
}

// pickBase chooses the base backup for a target time given "latest": the
// newest physical snapshot of the source taken before the target.
func pickBase(cmd *cobra.Command, repo *repository.Repo, ref, source string, target time.Time) (*repository.Snapshot, error) {
	if ref != "latest" || target.IsZero() {
		return repo.FindSnapshot(cmd.Context(), ref, source)
	}
	snaps, err := repo.Snapshots(cmd.Context())
	var damaged *repository.DamagedError
	if err != nil && !errors.As(err, &damaged) {
		return nil, err
	}
	best := repository.NewestPhysical(snaps, source, target)
	if best == nil {
		return nil, fmt.Errorf("restore: no physical base backup%s was taken before %s: take one with `coffer backup --physical`", sourceNote(source), target.Format(time.RFC3339))
	}
	return best, nil
}

func sourceNote(source string) string {
	if source == "" {
		return ""
	}
	return " of source " + termsafe.String(source)
}

// switches describes the timeline switches of a recovery path.
func switches(p repository.Path) string {
	if len(p) < 2 {
		return ""
	}
	var b strings.Builder
	b.WriteString(" (timelines")
	for _, s := range p {
		fmt.Fprintf(&b, " %d", s.Timeline)
	}
	b.WriteString(")")
	return b.String()
}

// restorePGData writes a physical base backup into a new data directory,
// fetches the WAL it needs and writes the recovery settings.
func restorePGData(cmd *cobra.Command, repo *repository.Repo, snap *repository.Snapshot, o *pgdataOptions) error {
	ctx := cmd.Context()
	if snap.Physical == nil {
		return fmt.Errorf("restore: snapshot %s is a %s backup, not a physical base backup: --pgdata restores those (`coffer backup --physical`); load this one with --to", snap.ID().Short(), termsafe.String(snap.Engine))
	}
	// What the snapshot says of its WAL is printed and used below.
	if _, err := snap.Physical.Check("snapshots/" + snap.ID().String()); err != nil {
		return err
	}
	layout, parts, err := pitr.Plan(repo, snap, o.dir, pitr.TablespacesBeside(o.dir), o.tsMap)
	if err != nil {
		return err
	}
	start := time.Now()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := restore.Run(ctx, repo, snap, pw, restore.Options{})
		pw.CloseWithError(err)
		done <- err
	}()
	files, err := pitr.ExtractBackup(pr, parts, snap.Physical, layout)
	pr.CloseWithError(errors.New("extraction stopped"))
	if rerr := <-done; err == nil {
		err = rerr
	}
	if err == nil {
		err = pitr.Configure(o.dir, o.target, o.start.server(o.port, snap.Physical))
	}
	var wal pitr.Fetched
	if err == nil {
		wal, err = pitr.FetchWAL(ctx, repo, "snapshots/"+snap.ID().String(), snap.Physical, o.dir, o.target.Timeline)
	}
	if err == nil {
		err = o.start.own(ownedDirs(o.dir, layout)...)
	}
	rec := repository.AuditRecord{Snapshot: snap.ID().String(), Source: snap.Source, Detail: map[string]string{"to": "pgdata " + o.dir}}
	audit(ctx, repo, "restore", err, rec)
	if err != nil {
		return fmt.Errorf("restore snapshot %s: %w\n%s incomplete: remove it", snap.ID().Short(), err, incomplete(layout))
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "restored base backup %s (%d files) and %d WAL files (%s) into %s in %s\n", snap.ID().Short(), files, wal.Files, bytesStr(wal.Bytes),
		termsafe.String(o.dir), time.Since(start).Round(time.Millisecond))
	printTablespaces(out, snap.Physical, layout)
	fmt.Fprintf(out, "recovery starts at %s on timeline %d and replays at least to %s; it follows timeline %d%s\n", snap.Physical.StartLSN, snap.Physical.Timeline,
		snap.Physical.StopLSN, wal.Path.Target(), switches(wal.Path))
	if !o.start.start {
		fmt.Fprintf(out, "start the server as its owner: pg_ctl -D %s -l %s/%s start (or restore with --start)\n", termsafe.String(o.dir), termsafe.String(o.dir), pitr.LogName)
		return nil
	}
	return startPGData(cmd, o, snap.Physical)
}

// incomplete names the directories a failed restore leaves.
func incomplete(l *pitr.Layout) string {
	dirs := termsafe.Strings(l.Dirs())
	if len(dirs) == 1 {
		return dirs[0] + " is"
	}
	return strings.Join(dirs, ", ") + " are"
}

// printTablespaces says where each tablespace was restored.
func printTablespaces(w io.Writer, info *repository.PhysicalInfo, l *pitr.Layout) {
	for _, ts := range info.Tablespaces {
		fmt.Fprintf(w, "tablespace %d %q (at %s on the backup host) restored into %s, linked from pg_tblspc/%d\n",
			ts.OID, ts.Name, termsafe.String(ts.Location), termsafe.String(l.Tablespaces[ts.OID]), ts.OID)
	}
}

// ownedDirs are the directories --run-as gets: the data directory, each
// tablespace's, and the one beside the data directory that coffer made
// for unmapped tablespaces (the server must pass through it).
func ownedDirs(dataDir string, l *pitr.Layout) []string {
	dirs := l.Dirs()
	beside := pitr.TablespacesBeside(dataDir)
	for _, d := range dirs[1:] {
		if filepath.Dir(d) == beside {
			return append(dirs, beside)
		}
	}
	return dirs
}
