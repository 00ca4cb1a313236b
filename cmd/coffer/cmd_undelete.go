package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/internal/termsafe"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/asof"
)

func newUndeleteCmd(g *globals) *cobra.Command {
	var o undeleteOptions
	cmd := &cobra.Command{
		Use:   "undelete --as-of TIME [--hide-newer] [--dry-run]",
		Short: "Bring back the objects deleted or overwritten in a versioned S3 bucket since TIME",
		Long: `undelete makes the repository what it was at TIME again, after objects were
deleted or overwritten in a bucket that keeps versions (S3 versioning or Object
Lock): every object whose version current at TIME is no longer current gets
that version copied back (on the server) as its current version. Nothing is
deleted: the later versions stay in the bucket's history, and objects written
since TIME (a backup taken after it, or an object planted) are left as they are
and listed, unless --hide-newer: they are then hidden behind a delete marker,
their versions kept (so an undelete --as-of a later time shows them again).
Locks, prune markers and audit records are never hidden, and locks and prune
markers are not brought back.

Before copying anything, undelete verifies the repository as of TIME as check
--as-of does (its config, keys and this machine's pins, every snapshot and index
and that their chunks are stored), and refuses a state with problems: choose
another TIME. Objects come back in a backup's order (packs, index, chunk lists,
the rest, snapshots), each step complete before the next. Run again,
it finishes what a killed run left. Run it while no prune runs (a prune could
take the packs brought back for garbage before their snapshots are back), and
--hide-newer while no backup runs (it would hide the packs a backup is writing). It needs the writer key (or an operator
identity) and an S3 key that may read old versions (s3:GetObjectVersion) and
put the repository's objects (coffer policy recovery, or the bucket owner's);
it is recorded in the audit log. TIME is compared with the bucket's clock (docs/threat-model.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runUndelete(cmd, g, o) },
	}
	addAsOfFlag(cmd, g, "bring back")
	cmd.Flags().BoolVarP(&o.dryRun, "dry-run", "n", false, "list what would be brought back; change nothing")
	cmd.Flags().BoolVar(&o.hideNewer, "hide-newer", false, "also hide the objects written since TIME behind a delete marker (their versions stay): backups taken since are hidden too")
	return cmd
}

type undeleteOptions struct{ dryRun, hideNewer bool }

type undeleteResult struct {
	AsOf      string   `json:"as_of_time"`
	DryRun    bool     `json:"dry_run"`
	Restored  []string `json:"restored"`
	Unchanged int      `json:"unchanged"`
	Newer     []string `json:"newer"`
	Hidden    bool     `json:"newer_hidden"`
}

func runUndelete(cmd *cobra.Command, g *globals, o undeleteOptions) error {
	ctx := cmd.Context()
	at := g.asOf
	if at.IsZero() {
		return errors.New("undelete: give --as-of TIME, a moment before the objects were deleted or overwritten (RFC 3339, the bucket's clock)")
	}
	then, err := verifyAsOf(ctx, g)
	if err != nil {
		return err
	}
	g.asOf = time.Time{} // from here on, the bucket as it is
	be, err := g.backend(ctx, false, false)
	if err != nil {
		return err
	}
	src, _ := storage.Find[asof.Source](be) // verifyAsOf refused a store without versions
	r, ok := storage.Find[asof.Restorer](be)
	if !ok {
		return fmt.Errorf("undelete: %s cannot restore versions", termsafe.String(be.Location()))
	}
	ch, err := asof.Compare(ctx, src, "", at)
	if err != nil {
		return fmt.Errorf("undelete: %w", err)
	}
	// Locks and prune markers belong to processes of the past (not
	// brought back) or of the present (not hidden); audit records are
	// signed, and audit verify judges them: never hidden.
	back := without(ch.Restore, "locks/", "prune/")
	newer := without(ch.Newer, "locks/", "prune/", "audit/")
	res := undeleteResult{AsOf: at.UTC().Format(time.RFC3339Nano), DryRun: o.dryRun, Unchanged: ch.Same,
		Restored: names(back), Newer: names(ch.Newer), Hidden: o.hideNewer}
	if !o.dryRun {
		err := undelete(ctx, be, r, then, back, newer, o.hideNewer)
		auditUndelete(ctx, g, res, err)
		if err != nil {
			return fmt.Errorf("undelete: %w\nnothing was lost: run undelete again to finish", err)
		}
	}
	if g.json {
		return printJSON(cmd.OutOrStdout(), res)
	}
	printUndelete(cmd, res)
	return nil
}

// undelete brings objects back in a backup's order (phases), each phase
// only once the one before it is complete, and then (with hide) hides the
// newer objects in the reverse order, so that no snapshot is ever current
// without its chunk lists, no index entry without its pack: a backup run
// in between, or a kill, finds a whole repository.
func undelete(ctx context.Context, be storage.Backend, r asof.Restorer, then *repository.Repo, back, newer []storage.Version, hide bool) error {
	retain := retainUntil(then)
	for _, p := range phases(back) {
		if err := asof.Apply(ctx, r, p, retain); err != nil {
			return err
		}
	}
	if !hide {
		return nil
	}
	h, ok := storage.Find[asof.Hider](be)
	if !ok {
		return fmt.Errorf("%s cannot hide objects", termsafe.String(be.Location()))
	}
	ps := phases(newer)
	for i := len(ps) - 1; i >= 0; i-- {
		if err := asof.HideAll(ctx, h, ps[i]); err != nil {
			return err
		}
	}
	return nil
}

// phaseOf is the step of a backup's order an object belongs to: packs
// (and WAL) first, then the index naming them, the chunk lists, the rest
// (config, keys, audit and drill records), and snapshots last.
func phaseOf(name string) int {
	for i, dirs := range [][]string{{"data/", "wal/"}, {"index/"}, {"chunklists/"}} {
		for _, d := range dirs {
			if strings.HasPrefix(name, d) {
				return i
			}
		}
	}
	if strings.HasPrefix(name, "snapshots/") {
		return 4
	}
	return 3
}

// phases groups vs by phaseOf, in order.
func phases(vs []storage.Version) [][]storage.Version {
	out := make([][]storage.Version, 5)
	for _, v := range vs {
		out[phaseOf(v.Name)] = append(out[phaseOf(v.Name)], v)
	}
	return out
}

// verifyAsOf opens the repository as of g.asOf, with the pins of this
// machine, and checks its structure: undelete brings back only a state
// that is whole.
func verifyAsOf(ctx context.Context, g *globals) (*repository.Repo, error) {
	repo, err := g.openRepo(ctx, false)
	if err != nil {
		return nil, err
	}
	rep, err := repo.Check(ctx, repository.CheckOptions{})
	if err != nil {
		return nil, err
	}
	if !rep.OK() {
		var b strings.Builder
		for _, p := range rep.Problems {
			fmt.Fprintf(&b, "\n  %s: %s", termsafe.String(p.Object), termsafe.Lines(p.Reason))
		}
		return nil, fmt.Errorf("undelete: the repository as of %s has %d problem(s) itself, so nothing was changed: choose another --as-of (coffer check --as-of lists them)%s",
			g.asOf.UTC().Format(time.RFC3339), len(rep.Problems), b.String())
	}
	return repo, nil
}

// without leaves out of vs the objects under the directories dirs.
func without(vs []storage.Version, dirs ...string) []storage.Version {
	var out []storage.Version
	for _, v := range vs {
		if !slices.ContainsFunc(dirs, func(d string) bool { return strings.HasPrefix(v.Name, d) }) {
			out = append(out, v)
		}
	}
	return out
}

// retainUntil is the retain-until date of brought-back objects under the
// Object Lock policy of the repository as it was (zero without one).
func retainUntil(repo *repository.Repo) time.Time {
	if repo.Config().Lock == nil {
		return time.Time{}
	}
	return time.Now().Add(time.Duration(repo.Config().Lock.Days) * 24 * time.Hour)
}

func auditUndelete(ctx context.Context, g *globals, res undeleteResult, opErr error) {
	repo, err := g.openRepo(ctx, false)
	if err != nil {
		return // the config or keys are still missing: the copy failed early
	}
	audit(ctx, repo, "undelete", opErr, repository.AuditRecord{Detail: map[string]string{
		"as_of": res.AsOf, "restored": fmt.Sprint(len(res.Restored)),
	}})
}

func names(vs []storage.Version) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		out = append(out, v.Name)
	}
	sort.Strings(out)
	return out
}

func printUndelete(cmd *cobra.Command, res undeleteResult) {
	w := cmd.OutOrStdout()
	verb := "brought back"
	if res.DryRun {
		verb = "would bring back"
	}
	fmt.Fprintf(w, "%s %s as of %s (%s unchanged)\n", verb, count(len(res.Restored), "object"), res.AsOf, count(res.Unchanged, "object"))
	for _, n := range res.Restored {
		fmt.Fprintf(w, "  %s\n", termsafe.String(n))
	}
	if len(res.Newer) == 0 {
		return
	}
	what := "left in place (--hide-newer hides them)"
	if res.Hidden {
		what = "hidden behind a delete marker, but for locks, prune markers and audit records"
	}
	fmt.Fprintf(w, "written since then, %s: %s\n", what, count(len(res.Newer), "object"))
	for _, n := range res.Newer {
		fmt.Fprintf(w, "  %s\n", termsafe.String(n))
	}
}
