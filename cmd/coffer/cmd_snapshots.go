package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/internal/termsafe"
	"github.com/coffer-backup/coffer/replicate"
	"github.com/coffer-backup/coffer/repository"
)

// snapshotFilter picks snapshots as restic's snapshots does.
type snapshotFilter struct {
	source, host string
	tags         []string // each a comma-separated set a snapshot must all have; any set will do
	latest       int      // the N newest of each source and host; 0: all
}

func (f *snapshotFilter) flags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.source, "source", "", "only this source's snapshots")
	fl.StringVar(&f.host, "host", "", "only snapshots taken on this host")
	fl.StringArrayVar(&f.tags, "tag", nil, "only snapshots with these tags (a,b: both; repeat --tag for either)")
	fl.IntVar(&f.latest, "latest", 0, "only the N newest snapshots of each source and host")
}

func (f *snapshotFilter) match(s *repository.Snapshot) bool {
	if f.source != "" && s.Source != f.source || f.host != "" && s.Host != f.host {
		return false
	}
	if len(f.tags) == 0 {
		return true
	}
	for _, set := range f.tags {
		all := true
		for _, t := range strings.Split(set, ",") {
			all = all && slices.Contains(s.Tags, t)
		}
		if all {
			return true
		}
	}
	return false
}

// apply keeps the matching snapshots of all, oldest first as given.
func (f *snapshotFilter) apply(all []*repository.Snapshot) []*repository.Snapshot {
	var out []*repository.Snapshot
	kept := map[[2]string]int{}
	for i := len(all) - 1; i >= 0; i-- {
		s := all[i]
		k := [2]string{s.Source, s.Host}
		if !f.match(s) || f.latest > 0 && kept[k] >= f.latest {
			continue
		}
		kept[k]++
		out = append(out, s)
	}
	slices.Reverse(out)
	return out
}

func newSnapshotsCmd(g *globals) *cobra.Command {
	var filter snapshotFilter
	cmd := &cobra.Command{
		Use:   "snapshots [--source NAME] [--host HOST] [--tag T[,T…]]… [--latest N]",
		Short: "List snapshots (works with the writer key alone)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			repo, err := g.openRepo(cmd.Context(), false)
			if err != nil {
				return err
			}
			all, damaged := repo.Snapshots(cmd.Context())
			var de *repository.DamagedError
			if damaged != nil && !errors.As(damaged, &de) {
				return damaged
			}
			if filter.latest < 0 {
				return fmt.Errorf("snapshots: --latest %d: give a positive number", filter.latest)
			}
			var list []snapshotJSON
			for _, s := range filter.apply(all) {
				list = append(list, toSnapshotJSON(s))
			}
			if g.json {
				if list == nil {
					list = []snapshotJSON{}
				}
				if err := printJSON(cmd.OutOrStdout(), list); err != nil {
					return err
				}
				return damaged
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTIME\tSOURCE\tHOST\tENGINE\tDATABASE\tSIZE\tSTORED\tTAGS")
			for _, s := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", termsafe.String(s.ID[:min(8, len(s.ID))]), s.Time.Local().Format(time.DateTime), termsafe.String(s.Source),
					termsafe.String(s.Host), termsafe.String(s.Engine), orDash(strings.Join(termsafe.Strings(s.Databases), ",")), bytesStr(s.Size), bytesStr(s.Stored), orDash(strings.Join(termsafe.Strings(s.Tags), ",")))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			printCopyOf(cmd.Context(), cmd.OutOrStdout(), repo)
			return damaged
		},
	}
	filter.flags(cmd)
	addAsOfFlag(cmd, g, "list")
	return cmd
}

type snapshotJSON struct {
	ID          string    `json:"snapshot"`
	Time        time.Time `json:"time"`
	Source      string    `json:"source"`
	Host        string    `json:"host"`
	Tags        []string  `json:"tags"`
	Engine      string    `json:"engine"`
	Format      string    `json:"format"`
	Server      string    `json:"server_version,omitempty"`
	Databases   []string  `json:"databases,omitempty"`
	Size        int64     `json:"size_bytes"`
	Stored      int64     `json:"stored_bytes"`
	ChunksTotal int       `json:"chunks_total"`
	ChunksNew   int       `json:"chunks_new"`
	Tool        string    `json:"tool"`
	// Physical is what a base backup records for recovery, once checked.
	Physical *repository.PhysicalInfo `json:"physical,omitempty"`
}

func toSnapshotJSON(s *repository.Snapshot) snapshotJSON {
	tags := s.Tags
	if tags == nil {
		tags = []string{}
	}
	return snapshotJSON{ID: s.ID().String(), Time: s.Time, Source: s.Source, Host: s.Host, Tags: tags,
		Engine: s.Engine, Format: s.Format, Server: s.ServerVersion, Databases: s.Databases, Size: s.Size, Stored: s.Stored,
		ChunksTotal: s.ChunksTotal, ChunksNew: s.ChunksNew, Tool: s.Tool, Physical: checkedPhysical(s)}
}

func checkedPhysical(s *repository.Snapshot) *repository.PhysicalInfo {
	if s.Physical == nil {
		return nil
	}
	if _, err := s.Physical.Check("snapshots/" + s.ID().String()); err != nil {
		return nil
	}
	return s.Physical
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printCopyOf says, below the listing, when the repository is a copy made
// by `coffer copy` (its copies/ records), of what and when last.
func printCopyOf(ctx context.Context, w io.Writer, repo *repository.Repo) {
	rec, err := replicate.LastCopy(ctx, repo)
	switch {
	case err != nil:
		fmt.Fprintf(w, "(could not read the copy records: %s)\n", termsafe.Lines(err.Error()))
	case rec != nil:
		fmt.Fprintf(w, "this repository is a copy of %s (repository %s), last copied %s by %s\n",
			termsafe.String(rec.Source), repo.Config().ID, rec.Time.Local().Format(time.DateTime), termsafe.String(rec.Host))
	}
}
