package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/internal/atomicfile"
	"github.com/coffer-backup/coffer/internal/termsafe"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/restore"
)

type restoreOptions struct {
	source, output, to, part string
	mask                     string
	canaries                 int
	canaryFor                string
	verify                   bool
	target                   restore.TargetOptions
	pg                       pgdataOptions
}

func newRestoreCmd(g *globals) *cobra.Command {
	o := &restoreOptions{}
	cmd := &cobra.Command{
		Use:   "restore SNAPSHOT|latest [--source NAME] [--output FILE [--part NAME|all] | --to DATABASE [--clean [--drop-old] [--force]] [--globals[=roles|all]] [--owner ROLE] [--trust-snapshot]]",
		Short: "Restore a snapshot to a file, standard output or a database",
		Long: `restore writes a snapshot to --output FILE, or to standard output (not to a
terminal: the stream is data, not text to show). Every chunk is checked against
its id and the whole stream against the digest recorded at backup time. A file is
written under a temporary name and renamed only when complete and verified; an
existing file is never overwritten.

What is written is what the database's own tools read. A PostgreSQL snapshot of
one database gives its pg_dump archive (pg_restore -l FILE lists it, pg_restore -t
TABLE restores one table); a MariaDB/MySQL snapshot of one database its SQL dump.
--part NAME chooses another part: globals.sql (the server's roles and tablespaces,
as pg_dumpall wrote them), or one database of an --all-databases snapshot (shop or
shop.pgdump); a snapshot of several databases needs --part. --part all writes the
whole stream, the parts one after the other (docs/format.md), which only coffer
reads. Only the chunks of the part are read; each is checked against its id, and
the part's place in the stream comes from the authenticated snapshot (the digest
of the whole stream can only be checked when the whole stream is restored).
coffer ls SNAPSHOT lists the parts.

--to loads a database snapshot into a database (sqlite:PATH, mysql://…,
postgres://…) and compares every table's row count and digest with those
recorded at backup time. A snapshot is treated as hostile input: it is loaded as
data, without superuser rights, changing no role and nothing outside the target
database, unless the flags below say otherwise. A target that is missing is
created; one that is not empty is refused unless --clean. Needs an operator
identity (COFFER_IDENTITY_FILE).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runRestore(cmd, g, o, args[0]) },
	}
	f := cmd.Flags()
	f.StringVar(&o.source, "source", "", "with latest or a short id: only this source's snapshots")
	f.StringVarP(&o.output, "output", "o", "", "write to this file (default: standard output; - for standard output even when it is a terminal)")
	f.StringVar(&o.part, "part", "", "to a file or standard output: write this part of the stream (globals.sql, a database's name: see coffer ls), or all for the whole stream")
	f.StringVar(&o.to, "to", "", "load into this database: sqlite:PATH, mysql://USER@HOST:PORT/DB, postgres://USER@HOST:PORT/DB")
	f.BoolVar(&o.target.Clean, "clean", false, "with --to: replace a target that is not empty: the snapshot is loaded beside it and verified, and only then takes its place; the old one is kept (NAME_before_TIME, PATH.before-TIME) unless --drop-old")
	f.BoolVar(&o.target.DropOld, "drop-old", false, "with --clean: delete the replaced database once the new one has taken its place (there is then no way back to it)")
	f.BoolVar(&o.target.Force, "force", false, "with --clean: end the other sessions of the replaced database to swap it (PostgreSQL); their work in progress is lost")
	f.StringVar(&o.target.Globals, "globals", "", "with --to: also create the snapshot's roles that the server lacks (--globals or --globals=roles: never SUPERUSER, REPLICATION or BYPASSRLS, never altering an existing role; --globals=all: those attributes too, so the backup host decides who is superuser on this server)")
	f.Lookup("globals").NoOptDefVal = "roles"
	f.StringVar(&o.target.Owner, "owner", "", "with --to: the role to own what the snapshot says is owned by a role that is missing or a superuser on the target (PostgreSQL)")
	f.BoolVar(&o.target.TrustSnapshot, "trust-snapshot", false, "with --to: load with the connecting user's full rights, e.g. for extensions only a superuser may create: a superuser then runs whatever the snapshot holds, which the backup host wrote; recorded in the audit log")
	f.IntVarP(&o.target.Jobs, "jobs", "j", 1, "with --to: parallel load jobs (pg_restore -j): helps databases with several large tables")
	f.BoolVar(&o.verify, "verify", true, "with --to: compare per-table digests after loading")
	f.IntVar(&o.canaries, "canaries", 0, "with --mask: plant this many canary customers (the rules' canaries section says where and under which domain and phone range), recorded in the audit log for coffer trace")
	f.StringVar(&o.canaryFor, "for", "", "with --canaries: who the copy is for (e.g. \"contractor Acme\"), recorded with the canaries")
	f.StringVar(&o.mask, "mask", "", "with --to: load a masked copy under the rules in this file (coffer classify writes one; docs/masking.md): no original value of a masked column reaches the target")
	addPGDataFlags(cmd, &o.pg)
	addAsOfFlag(cmd, g, "restore from")
	return cmd
}

// check refuses flags that do not go together, before anything is read.
func (o *restoreOptions) check(cmd *cobra.Command) error {
	if o.pg.dir != "" {
		if o.to != "" || o.output != "" || o.part != "" {
			return errors.New("restore: --pgdata restores a physical base backup into a data directory: not with --to, --output or --part")
		}
		return o.pg.parse()
	}
	for _, n := range []string{"target-time", "target-lsn", "target-name", "target-xid", "target-action", "target-timeline", "port", "start", "run-as", "superuser", "start-timeout", "tablespace-map"} {
		if cmd.Flags().Changed(n) {
			return fmt.Errorf("restore: --%s goes with --pgdata DIR", n)
		}
	}
	dbFlags := []string{"clean", "drop-old", "force", "globals", "owner", "trust-snapshot", "jobs", "verify", "mask", "canaries", "for"}
	if o.to == "" {
		for _, n := range dbFlags {
			if cmd.Flags().Changed(n) {
				return fmt.Errorf("restore: --%s goes with --to DATABASE", n)
			}
		}
		return nil
	}
	switch {
	case o.output != "":
		return errors.New("restore: give --output or --to, not both")
	case o.part != "":
		return errors.New("restore: --part goes with --output: --to loads the databases of the snapshot (one database per target)")
	case (o.canaries != 0 || o.canaryFor != "") && o.mask == "":
		return errors.New("restore: --canaries and --for go with --mask RULES: canaries are planted in masked copies")
	case o.canaries < 0 || o.canaries > 1000:
		return fmt.Errorf("restore: --canaries %d: give 1 to 1000", o.canaries)
	case o.canaries > 0 && o.canaryFor == "":
		return errors.New("restore: --canaries needs --for LABEL, who the copy is for (e.g. --for \"contractor Acme\"): coffer trace answers with it")
	case (o.target.DropOld || o.target.Force) && !o.target.Clean:
		return errors.New("restore: --drop-old and --force go with --clean")
	case o.target.Globals != "" && o.target.Globals != "roles" && o.target.Globals != "all":
		return fmt.Errorf("restore: --globals=%s: give --globals (or --globals=roles) to create missing roles, or --globals=all to give them SUPERUSER, REPLICATION and BYPASSRLS too", o.target.Globals)
	}
	return nil
}

func runRestore(cmd *cobra.Command, g *globals, o *restoreOptions, ref string) error {
	ctx := cmd.Context()
	if err := o.check(cmd); err != nil {
		return err
	}
	toStdout := o.output == "" || o.output == "-"
	if o.output == "" && o.to == "" && o.pg.dir == "" && isTerminal(os.Stdout) {
		return errors.New("restore: standard output is a terminal, and a snapshot's stream is data that a terminal would interpret: give --output FILE, or pipe it (--output - writes to the terminal all the same)")
	}
	repo, err := g.openRepo(ctx, true)
	if err != nil {
		return err
	}
	if o.pg.dir != "" {
		if g.json {
			return failf("--pgdata", "run it without --json", "restore --pgdata prints no JSON yet")
		}
		snap, err := pickBase(cmd, repo, ref, o.source, o.pg.target.Time)
		if err != nil {
			return err
		}
		return restorePGData(cmd, repo, snap, &o.pg)
	}
	snap, err := repo.FindSnapshot(ctx, ref, o.source)
	if err != nil {
		return err
	}
	if ref == "latest" && !g.json {
		fmt.Fprintf(cmd.ErrOrStderr(), "latest is snapshot %s of source %s on %s, taken %s\n", snap.ID().Short(),
			termsafe.String(snap.Source), termsafe.String(snap.Host), snap.Time.Local().Format(time.DateTime))
	}
	prog := newProgress(os.Stderr, "restore")
	opts := restore.Options{Progress: prog.restore}
	if o.to != "" {
		dbo := restore.DBOptions{Options: opts, Verify: o.verify}
		var mr *maskRun
		if o.mask != "" {
			if mr, err = o.masking(ctx, repo); err != nil {
				return err
			}
			o.target.Mask, dbo.Canaries = mr.masking, mr.canaries
		}
		err := restoreToDatabase(cmd, g, repo, snap, o.to, o.target, dbo, mr)
		prog.done()
		return err
	}
	part, err := restore.OutputPart(repo, snap, o.part)
	if err != nil {
		return err
	}
	opts.Range = restore.PartRange(part)
	var sum *restore.Summary
	if toStdout {
		bw := bufio.NewWriterSize(cmd.OutOrStdout(), 1<<20)
		sum, err = restore.Run(ctx, repo, snap, bw, opts)
		if err == nil {
			err = bw.Flush()
		}
	} else {
		sum, err = restoreToFile(o.output, func(w io.Writer) (*restore.Summary, error) {
			return restore.Run(ctx, repo, snap, w, opts)
		})
	}
	prog.done()
	where := o.output
	if toStdout {
		where = "stdout"
	}
	rec := repository.AuditRecord{Snapshot: snap.ID().String(), Source: snap.Source, Detail: map[string]string{"to": where}}
	what := "the whole stream"
	if part != nil {
		rec.Detail["part"] = part.Name
		what = "part " + part.Name
	}
	audit(ctx, repo, "restore", err, rec)
	if err != nil {
		if toStdout {
			return fmt.Errorf("%w\nthe output written so far is incomplete or wrong: discard it", err)
		}
		return err
	}
	if part != nil {
		what += " (every chunk checked against its id)"
	} else {
		what += " (every chunk and the stream's digest checked)"
	}
	if g.json {
		return printRestoreJSON(cmd, snap, o.output, part, sum)
	}
	if !toStdout {
		fmt.Fprintf(cmd.ErrOrStderr(), "restored %s of snapshot %s (%s) to %s in %s\n", termsafe.String(what), snap.ID().Short(),
			bytesStr(sum.Bytes), termsafe.String(o.output), sum.Duration.Round(time.Millisecond))
	}
	if part != nil {
		var others []string
		parts, _ := restore.Parts(repo, snap)
		for _, p := range parts {
			if p.Name != part.Name {
				others = append(others, termsafe.String(p.Name))
			}
		}
		if len(others) > 0 {
			fmt.Fprintf(cmd.ErrOrStderr(), "note: the snapshot also holds %s: restore them with --part NAME (coffer ls %s lists the parts)\n",
				strings.Join(others, ", "), snap.ID().Short())
		}
	}
	return nil
}

// restoreToFile runs fn into a temporary file beside path, which takes
// path's name only once complete; on failure nothing is left behind.
// A device or a named pipe (--output /dev/null: a verification of the
// snapshot that keeps nothing) is written as it is, like standard output.
func restoreToFile(path string, fn func(io.Writer) (*restore.Summary, error)) (*restore.Summary, error) {
	if fi, err := os.Stat(path); err == nil && fi.Mode()&(fs.ModeCharDevice|fs.ModeNamedPipe) != 0 {
		return restoreToDevice(path, fn)
	}
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("restore: %s already exists: choose another --output or remove it first", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("restore: the directory %s of --output %s does not exist: create it, or choose another --output", filepath.Dir(path), path)
	}
	var sum *restore.Summary
	err := atomicfile.Write(path, atomicfile.Options{NoReplace: true}, func(w io.Writer) error {
		var err error
		sum, err = fn(w)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%w\nnothing was written to %s", err, path)
	}
	return sum, nil
}

func restoreToDevice(path string, fn func(io.Writer) (*restore.Summary, error)) (*restore.Summary, error) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	sum, err := fn(bw)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return sum, nil
}
