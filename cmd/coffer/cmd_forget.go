package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/storage"
)

type forgetOptions struct {
	dryRun, prune, allowEmpty bool
	source, host              string
	policy                    policyFlags
}

func newForgetCmd(g *globals) *cobra.Command {
	o := &forgetOptions{}
	cmd := &cobra.Command{
		Use:   "forget [SNAPSHOT…] [--keep-* N…] [--source NAME] [--dry-run] [--prune]",
		Short: "Remove snapshots, by id or by a retention policy",
		Long: `forget removes the given snapshots, or applies a retention policy to every
source (and host) and removes the snapshots no rule keeps. It prints, for every
snapshot, whether it is kept and by which rule. The newest snapshot of a source is
never removed unless --allow-empty. Data goes only when prune runs (--prune runs it
right after). Snapshots under S3 Object Lock retention are left and listed. Needs
only the writer key.

Calendar rules (hourly, daily, weekly, monthly, yearly) use the time zone of
--time-zone (default: the local one): a day is a calendar day there, so DST changes
do not split or merge days; weeks are ISO weeks.`,
		RunE: func(cmd *cobra.Command, args []string) error { return runForget(cmd, g, o, args) },
	}
	f := cmd.Flags()
	f.BoolVarP(&o.dryRun, "dry-run", "n", false, "show what would be removed; change nothing")
	f.BoolVar(&o.prune, "prune", false, "run prune afterwards")
	f.BoolVar(&o.allowEmpty, "allow-empty", false, "allow a policy to remove every snapshot of a source")
	f.StringVar(&o.source, "source", "", "only this source's snapshots")
	f.StringVar(&o.host, "host", "", "only this host's snapshots")
	o.policy.register(f)
	return cmd
}

func runForget(cmd *cobra.Command, g *globals, o *forgetOptions, ids []string) error {
	ctx := cmd.Context()
	if len(ids) > 0 && o.policy.any() {
		return errors.New("forget: give snapshot ids or --keep-* rules, not both")
	}
	if len(ids) == 0 && !o.policy.any() {
		return errors.New("forget: give snapshot ids to remove, or a policy (--keep-last, --keep-daily, …)")
	}
	repo, err := g.openRepo(ctx, false)
	if err != nil {
		return err
	}
	var doomed []*repository.Snapshot
	if len(ids) > 0 {
		for _, ref := range ids {
			s, err := repo.FindSnapshot(ctx, ref, "")
			if err != nil {
				return err
			}
			doomed = append(doomed, s)
		}
	} else if doomed, err = applyPolicy(cmd, g, o, repo); err != nil {
		return err
	}
	if len(ids) > 0 && g.json {
		if err := printJSON(cmd.OutOrStdout(), forgottenJSON(doomed)); err != nil {
			return err
		}
	}
	if o.dryRun {
		return nil
	}
	var locked []string
	for _, s := range doomed {
		err := repo.DeleteSnapshot(ctx, s.ID())
		if errors.Is(err, storage.ErrLocked) {
			locked = append(locked, s.ID().Short())
			continue
		}
		audit(ctx, repo, "forget", err, repository.AuditRecord{Snapshot: s.ID().String(), Source: s.Source})
		if err != nil {
			return err
		}
	}
	if !g.json {
		fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", count(len(doomed)-len(locked), "snapshot"))
		if len(locked) > 0 {
			fmt.Fprintf(cmd.OutOrStdout(), "%s still under Object Lock retention and kept (a later forget removes them): %s\n",
				count(len(locked), "snapshot"), strings.Join(locked, ", "))
		}
	}
	if o.prune {
		return runPrune(cmd, g, false, repository.DefaultTempGrace, repackFlags{maxUnused: "10%"})
	}
	return nil
}
