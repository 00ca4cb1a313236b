package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/coffer-backup/coffer/internal/termsafe"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/retention"
)

// policyFlags are forget's --keep-* rules.
type policyFlags struct {
	p        retention.Policy
	within   string
	timeZone string
}

func (f *policyFlags) register(fs *pflag.FlagSet) {
	fs.IntVar(&f.p.Last, "keep-last", 0, "keep the N newest snapshots (-1: all)")
	fs.IntVar(&f.p.Hourly, "keep-hourly", 0, "keep the newest snapshot of each of the last N hours")
	fs.IntVar(&f.p.Daily, "keep-daily", 0, "keep the newest snapshot of each of the last N days")
	fs.IntVar(&f.p.Weekly, "keep-weekly", 0, "keep the newest snapshot of each of the last N ISO weeks")
	fs.IntVar(&f.p.Monthly, "keep-monthly", 0, "keep the newest snapshot of each of the last N months")
	fs.IntVar(&f.p.Yearly, "keep-yearly", 0, "keep the newest snapshot of each of the last N years")
	fs.StringVar(&f.within, "keep-within", "", "keep snapshots within this duration of the newest, e.g. 30d, 2w, 36h")
	fs.StringArrayVar(&f.p.Tags, "keep-tag", nil, "keep snapshots with this tag (repeatable)")
	fs.StringVar(&f.timeZone, "time-zone", "Local", "time zone of the calendar rules, e.g. Europe/Berlin")
}

func (f *policyFlags) any() bool {
	p := f.p
	return p.Last != 0 || p.Hourly != 0 || p.Daily != 0 || p.Weekly != 0 || p.Monthly != 0 || p.Yearly != 0 ||
		f.within != "" || len(p.Tags) > 0
}

type forgetJSON struct {
	Source string         `json:"source"`
	Host   string         `json:"host"`
	Items  []decisionJSON `json:"snapshots"`
}

type decisionJSON struct {
	ID      string    `json:"snapshot"`
	Time    time.Time `json:"time"`
	Keep    bool      `json:"keep"`
	Reasons []string  `json:"reasons"`
}

// forgottenJSON is forget SNAPSHOT…'s --json: the snapshots given, by
// source and host, as a policy's decisions are printed.
func forgottenJSON(doomed []*repository.Snapshot) []forgetJSON {
	out := []forgetJSON{}
	at := map[[2]string]int{}
	for _, s := range doomed {
		k := [2]string{s.Source, s.Host}
		i, ok := at[k]
		if !ok {
			i, at[k] = len(out), len(out)
			out = append(out, forgetJSON{Source: s.Source, Host: s.Host})
		}
		out[i].Items = append(out[i].Items, decisionJSON{ID: s.ID().String(), Time: s.Time.UTC(), Keep: false, Reasons: []string{"given"}})
	}
	return out
}

// applyPolicy decides and prints; it returns the snapshots to remove.
func applyPolicy(cmd *cobra.Command, g *globals, o *forgetOptions, repo *repository.Repo) ([]*repository.Snapshot, error) {
	p := o.policy.p
	p.AllowEmpty = o.allowEmpty
	if o.policy.within != "" {
		d, err := retention.ParseDuration(o.policy.within)
		if err != nil {
			return nil, fmt.Errorf("forget: --keep-within: %w", err)
		}
		p.Within = d
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("forget: %w", err)
	}
	loc, err := time.LoadLocation(o.policy.timeZone)
	if err != nil {
		return nil, fmt.Errorf("forget: --time-zone %q: %w (use an IANA name such as Europe/Berlin, or UTC)", o.policy.timeZone, err)
	}
	all, err := repo.Snapshots(cmd.Context())
	if err != nil {
		return nil, err
	}
	byID := map[string]*repository.Snapshot{}
	var in []retention.Snapshot
	for _, s := range all {
		if (o.source == "" || s.Source == o.source) && (o.host == "" || s.Host == o.host) {
			byID[s.ID().String()] = s
			in = append(in, retention.Snapshot{ID: s.ID().String(), Time: s.Time, Source: s.Source, Host: s.Host, Tags: s.Tags})
		}
	}
	if len(in) == 0 && (o.source != "" || o.host != "") {
		return nil, fmt.Errorf("forget: no snapshots of source %q host %q: list them with `coffer snapshots`", o.source, o.host)
	}
	groups := retention.Apply(in, p, loc)
	var empty []string
	for _, gr := range groups {
		if gr.ForgetsAll() && !o.allowEmpty {
			empty = append(empty, gr.Source+" on "+gr.Host)
		}
	}
	if len(empty) > 0 {
		return nil, fmt.Errorf("forget: the policy keeps no snapshot of %s by its rules: refusing; pass --allow-empty if that is what you want", strings.Join(empty, ", "))
	}
	printDecisions(cmd, g, groups, o.dryRun)
	var doomed []*repository.Snapshot
	for _, gr := range groups {
		for _, d := range gr.Decisions {
			if !d.Keep {
				doomed = append(doomed, byID[d.Snapshot.ID])
			}
		}
	}
	return doomed, nil
}

func printDecisions(cmd *cobra.Command, g *globals, groups []retention.Group, dryRun bool) {
	if g.json {
		out := []forgetJSON{}
		for _, gr := range groups {
			fj := forgetJSON{Source: gr.Source, Host: gr.Host}
			for _, d := range gr.Decisions {
				r := d.Reasons
				if r == nil {
					r = []string{}
				}
				fj.Items = append(fj.Items, decisionJSON{ID: d.Snapshot.ID, Time: d.Snapshot.Time.UTC(), Keep: d.Keep, Reasons: r})
			}
			out = append(out, fj)
		}
		printJSON(cmd.OutOrStdout(), out)
		return
	}
	w := cmd.OutOrStdout()
	verb := "forget"
	if dryRun {
		verb = "would forget"
	}
	for _, gr := range groups {
		fmt.Fprintf(w, "source %s on %s:\n", termsafe.String(gr.Source), termsafe.String(gr.Host))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, d := range gr.Decisions {
			what := "keep (" + termsafe.String(strings.Join(d.Reasons, ", ")) + ")"
			if !d.Keep {
				what = verb
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", d.Snapshot.ID[:8], d.Snapshot.Time.Local().Format(time.DateTime), what)
		}
		tw.Flush()
	}
}
