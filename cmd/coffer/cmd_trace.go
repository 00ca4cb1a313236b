package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/internal/termsafe"
	"github.com/coffer-backup/coffer/mask"
	"github.com/coffer-backup/coffer/repository"
)

type traceJSON struct {
	Value   string            `json:"value"`
	Verdict string            `json:"verdict"` // canary, pseudonym, none
	Kind    string            `json:"kind,omitempty"`
	Copies  []mask.CanaryCopy `json:"copies,omitempty"`
}

func newTraceCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "trace VALUE",
		Short: "Say which masked copy a leaked e-mail, phone or name came from",
		Long: `trace looks a value up in the canaries that masked restores planted (recorded in
the audit log, sealed under the repository's masking key): a canary's e-mail,
phone number or name names the copy it was planted in, for whom, when, by whom
and from which snapshot. A value that is no canary but carries the keyed tag of
a coffer pseudonym (e-mails, phones, card numbers) is reported as a masked value
from this repository's masked copies, which are listed. Needs an operator
identity (COFFER_IDENTITY_FILE).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			repo, err := g.openRepo(ctx, true)
			if err != nil {
				return err
			}
			key, err := repo.MaskingKey(ctx)
			if err != nil {
				return fmt.Errorf("trace: %w: no masked copy was made from this repository", err)
			}
			recs, problems, err := repo.AuditLog(ctx)
			if err != nil {
				return err
			}
			for _, p := range problems {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: audit record %s: %s\n", p.Object, termsafe.String(p.Reason))
			}
			res := trace(mask.Key(key), recs, args[0])
			if g.json {
				return printJSON(cmd.OutOrStdout(), res)
			}
			printTrace(cmd.OutOrStdout(), res)
			return nil
		},
	}
}

// trace answers for one value from the audit log's masked restores.
func trace(key mask.Key, recs []*repository.AuditRecord, v string) traceJSON {
	res := traceJSON{Value: v, Verdict: "none"}
	var masked []mask.CanaryCopy
	opened := canaryRecords(key, recs)
	for _, r := range recs {
		cr, ok := opened[r]
		if !ok {
			continue
		}
		cp := mask.CanaryCopy{Target: r.Detail["to"], Snapshot: r.Snapshot, Time: r.Time, Actor: r.Actor}
		if cr != nil {
			cp.For, cp.Target = cr.For, cr.Target
			for _, c := range cr.Canaries {
				if c.Matches(v) {
					res.Verdict = "canary"
					res.Copies = append(res.Copies, cp)
				}
			}
		}
		masked = append(masked, cp)
	}
	if res.Verdict == "canary" {
		return res
	}
	if kind, ok := mask.NewMasker(key).Recognise(v); ok {
		res.Verdict, res.Kind, res.Copies = "pseudonym", string(kind), masked
	}
	return res
}

func printTrace(w io.Writer, res traceJSON) {
	v := termsafe.String(res.Value)
	switch res.Verdict {
	case "canary":
		for _, c := range res.Copies {
			fmt.Fprintf(w, "%s is a canary planted in the masked copy %s for %q on %s by %s (snapshot %s)\n", v, termsafe.String(c.Target),
				termsafe.String(c.For), c.Time.Format(time.RFC3339), termsafe.String(c.Actor), short(c.Snapshot))
		}
	case "pseudonym":
		fmt.Fprintf(w, "%s is not a canary: it is a masked value (a coffer pseudonym, %s) from a masked copy of this repository; masked copies made:\n", v, res.Kind)
		for _, c := range res.Copies {
			who := ""
			if c.For != "" {
				who = fmt.Sprintf(" for %q", termsafe.String(c.For))
			}
			fmt.Fprintf(w, "  %s  %s%s by %s (snapshot %s)\n", c.Time.Format(time.RFC3339), termsafe.String(c.Target), who, termsafe.String(c.Actor), short(c.Snapshot))
		}
	default:
		fmt.Fprintf(w, "%s is not a canary, and not a pseudonym coffer produced under this repository's masking key\n", v)
	}
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return strings.TrimSpace(id)
}
