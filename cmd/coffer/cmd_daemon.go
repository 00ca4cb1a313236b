package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/daemon"
	"github.com/coffer-backup/coffer/internal/termsafe"
)

func loadDaemon(path string) (*daemon.Daemon, *config.Config, error) {
	if path == "" {
		return nil, nil, errors.New("give --config coffer.yaml (start from `coffer config example`)")
	}
	c, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, nil)
	if c.Daemon.LogFormat == config.LogJSON {
		h = slog.NewJSONHandler(os.Stderr, nil)
	}
	d, err := daemon.New(daemon.Options{Config: c, Exe: exe, Log: slog.New(h)})
	return d, c, err
}

func newDaemonCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "daemon --config coffer.yaml",
		Short: "Run backups, retention, checks, prune and drills on their schedules",
		Long: `daemon runs the jobs of coffer.yaml on their cron schedules (in the
repository's time zone): each source's backup followed by its retention, checks,
prune and drills. Two jobs on the same source never run at once; a run missed
while the daemon was down is made up once at start (daemon.state_file); failed
jobs are retried with backoff. Metrics are served on daemon.metrics_addr; failures
(and, if asked, successes) are sent to the webhook and command of notifications.
On SIGTERM or Ctrl-C no new job starts and a running one is let finish.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, _, err := loadDaemon(path)
			if err != nil {
				return err
			}
			return d.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "the config file")
	return noJSON(cmd, "it runs until stopped and logs through daemon.log_format, which can be json")
}

type scheduleJSON struct {
	Job       string    `json:"job"`
	Time      time.Time `json:"time"`
	InSeconds float64   `json:"in_seconds"`
}

func newScheduleCmd(g *globals) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "schedule --config coffer.yaml",
		Short: "Print the next run of every job",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, c, err := loadDaemon(path)
			if err != nil {
				return err
			}
			now := time.Now()
			next, err := d.Next(now)
			if err != nil {
				return err
			}
			if g.json {
				out := make([]scheduleJSON, len(next))
				for i, p := range next {
					out[i] = scheduleJSON{Job: p.Job, Time: p.At, InSeconds: p.At.Sub(now).Seconds()}
				}
				return printJSON(cmd.OutOrStdout(), out)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "JOB\tNEXT RUN\tIN")
			for _, p := range next {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", termsafe.String(p.Job), p.At.In(c.Repository.Location).Format("2006-01-02 15:04 MST"), untilStr(p.At.Sub(now)))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "the config file")
	return cmd
}

// untilStr says how long until a run, from now to the second: a run at
// 12:05 seen at 12:03:40 is in 1m20s, not in 2m.
func untilStr(d time.Duration) string {
	if d < 0 {
		return "due"
	}
	return d.Round(time.Second).String()
}

type configCheckJSON struct {
	File    string `json:"file"`
	Valid   bool   `json:"valid"`
	Offline bool   `json:"offline"` // secrets and files were not read
	Sources int    `json:"sources"`
}

func newConfigCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Check coffer.yaml, or print a commented example"}
	var offline bool
	check := &cobra.Command{
		Use:   "check FILE [--offline]",
		Short: "Validate a config file: every error with its file, line and a hint",
		Long: `check validates a config file: its syntax, keys and values, and then that every
secret and file it names can be read (as the daemon's user, with its environment).
--offline checks only syntax, keys and values, e.g. on a workstation before the file
goes to the backup host.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := config.Load(args[0])
			if err != nil {
				return err
			}
			if !offline {
				if err := c.CheckSecrets(os.LookupEnv); err != nil {
					return err
				}
			}
			switch {
			case g.json:
				return printJSON(cmd.OutOrStdout(), configCheckJSON{File: args[0], Valid: true, Offline: offline, Sources: len(c.Sources)})
			case offline:
				fmt.Fprintf(cmd.OutOrStdout(), "%s is valid (syntax, keys and values; secrets and files not read: --offline)\n", args[0])
			default:
				fmt.Fprintf(cmd.OutOrStdout(), "%s is valid\n", args[0])
			}
			return nil
		},
	}
	check.Flags().BoolVar(&offline, "offline", false, "check syntax, keys and values only: read no secret and no file the config names")
	cmd.AddCommand(check, noJSON(&cobra.Command{
		Use:   "example",
		Short: "Print a commented example config that documents every key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprint(cmd.OutOrStdout(), config.Example())
			return nil
		},
	}, "it prints a YAML file"))
	return cmd
}
