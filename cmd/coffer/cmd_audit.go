package main

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/auditlog"
	"github.com/coffer-backup/coffer/internal/termsafe"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/retention"
)

// audit appends a record to the repository's audit log. A failure to
// record is reported but does not undo or fail what was done.
func audit(ctx context.Context, repo *repository.Repo, event string, opErr error, rec repository.AuditRecord) {
	if repo == nil {
		return
	}
	rec.Event = event
	rec.Host, _ = os.Hostname()
	if u, err := user.Current(); err == nil {
		rec.Actor = u.Username
	}
	rec.Outcome = "ok"
	if opErr != nil {
		rec.Outcome = "failed"
		if rec.Detail == nil {
			rec.Detail = map[string]string{}
		}
		rec.Detail["error"] = firstLine(opErr.Error())
	}
	ctx = context.WithoutCancel(ctx)
	if err := repo.AppendAudit(ctx, &rec); err != nil {
		fmt.Fprintf(os.Stderr, "warning: could not record this %s in the audit log: %s\n", event, termsafe.Lines(err.Error()))
		return
	}
	noteWritten(ctx, repo, &rec)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func newAuditCmd(g *globals) *cobra.Command {
	var since string
	cmd := &cobra.Command{
		Use:   "audit [--since 30d|2026-01-01] | audit verify",
		Short: "List the repository's audit log: who backed up, restored, drilled, forgot, pruned",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			recs, problems, err := loadAudit(cmd, g)
			if err != nil {
				return err
			}
			from, err := parseSince(since)
			if err != nil {
				return err
			}
			var shown []*repository.AuditRecord
			for _, r := range recs {
				if !r.Time.Before(from) {
					shown = append(shown, r)
				}
			}
			if g.json {
				out := []auditJSON{}
				for _, r := range shown {
					out = append(out, toAuditJSON(r))
				}
				return printJSON(cmd.OutOrStdout(), out)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tEVENT\tOUTCOME\tWHO\tSNAPSHOT\tDETAIL")
			for _, r := range shown {
				var d []string
				for k, v := range auditlog.Detail(r.Detail) {
					d = append(d, termsafe.String(k)+"="+termsafe.String(fmt.Sprint(v)))
				}
				sort.Strings(d)
				snap := r.Snapshot
				if len(snap) > 8 {
					snap = snap[:8]
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s@%s\t%s\t%s\n", r.Time.Local().Format(time.DateTime), termsafe.String(r.Event), termsafe.String(r.Outcome), termsafe.String(r.Actor), termsafe.String(r.Host), termsafe.String(orDash(snap)), strings.Join(d, " "))
			}
			tw.Flush()
			if len(problems) > 0 {
				return &exitError{code: 1, msg: fmt.Sprintf("the audit log has %d problem(s): run coffer audit verify", len(problems))}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "only records from this long ago (30d) or this date (2026-01-01) on")
	cmd.AddCommand(newAuditVerifyCmd(g))
	return cmd
}

// auditJSON is an audit record as audit --json prints it: the stored
// record, with its id and its detail's values typed (auditlog.Detail).
type auditJSON struct {
	ID       string         `json:"id"` // the record's id, as audit verify's head names it
	Version  int            `json:"version"`
	Time     time.Time      `json:"time"`
	Event    string         `json:"event"`
	Actor    string         `json:"actor"`
	Host     string         `json:"host"`
	Outcome  string         `json:"outcome"`
	Snapshot string         `json:"snapshot,omitempty"`
	Source   string         `json:"source,omitempty"`
	Detail   map[string]any `json:"detail"`
	Prev     string         `json:"prev"`
	Signer   string         `json:"signer,omitempty"`
}

func toAuditJSON(r *repository.AuditRecord) auditJSON {
	return auditJSON{ID: r.ID().String(), Version: r.Version, Time: r.Time, Event: r.Event, Actor: r.Actor, Host: r.Host,
		Outcome: r.Outcome, Snapshot: r.Snapshot, Source: r.Source, Detail: auditlog.Detail(r.Detail), Prev: r.Prev, Signer: r.Signer}
}

func loadAudit(cmd *cobra.Command, g *globals) ([]*repository.AuditRecord, []repository.Problem, error) {
	repo, err := g.openRepo(cmd.Context(), false)
	if err != nil {
		return nil, nil, err
	}
	return repo.AuditLog(cmd.Context())
}

// parseSince reads "30d" (ago) or a date.
func parseSince(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, time.Local); err == nil {
		return t, nil
	}
	d, err := retention.ParseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--since %q: give a duration such as 30d or a date such as 2026-01-01", s)
	}
	return time.Now().Add(-d), nil
}
