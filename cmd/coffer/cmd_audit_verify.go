package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/auditlog"
	"github.com/coffer-backup/coffer/internal/termsafe"
	"github.com/coffer-backup/coffer/repository"
)

func newAuditVerifyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "Check that no audit record was altered, forged or removed, and say what that proves",
		Long: `verify authenticates every record with the writer key and follows the chain
from each record to the one before it. With an operator's identity it also
checks the operators' signatures (restores, drills, key changes and init must
be signed: a backup host cannot forge them), and compares the log with what
this machine saw: the head it verified last must still be there, unchanged,
with the same records before it, and every newer record must extend it; the
records this machine wrote since must be there. Every snapshot that names the
audit head it saw must find that record and its own backup record. The head is
then advanced (kept beside the identity file). verify prints what it proved and
what it cannot prove (docs/format.md, "Signed audit records and heads").`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runAuditVerify(cmd, g) },
	}
}

func runAuditVerify(cmd *cobra.Command, g *globals) error {
	ctx := cmd.Context()
	repo, err := g.openRepo(ctx, false)
	if err != nil {
		return err
	}
	recs, problems, err := repo.AuditLog(ctx)
	if err != nil {
		return err
	}
	snaps, err := repo.Snapshots(ctx)
	var damaged *repository.DamagedError
	if err != nil && !errors.As(err, &damaged) {
		return err
	}
	in := auditlog.Input{Records: recs, Problems: problems, Snapshots: snaps}
	var st *auditlog.State
	var pin *auditlog.Pin
	path := auditStatePath()
	if repo.CanRead() {
		if in.Key, err = repo.AuditPublicKey(); err != nil {
			return err
		}
		if path != "" {
			if st, err = auditlog.LoadState(path); err != nil {
				return err
			}
			if pin, err = pinAuditKey(ctx, st, repo, path, recs); err != nil {
				return err
			}
			in.Pin = pin
			if pin.Head == nil && len(pin.Written) == 0 {
				in.Pin = nil // pinned just now: a first verification
			}
		}
	}
	rep := auditlog.Verify(in)
	now := time.Now().UTC()
	saved := false
	if len(rep.Problems) == 0 && st != nil {
		if pin.FirstVerified.IsZero() {
			pin.FirstVerified = now
		}
		if rep.Head != nil {
			rep.Head.Verified = now
		}
		pin.Head, pin.Written = rep.Head, nil
		if err := st.Save(path); err != nil {
			return err
		}
		saved = true
	}
	w := cmd.OutOrStdout()
	if g.json {
		if err := printJSON(w, rep); err != nil {
			return err
		}
	} else {
		printAuditReport(w, rep, pin, path, saved)
	}
	if len(rep.Problems) > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("the audit log was tampered with: %d problem(s); the head this machine verified is kept as it was", len(rep.Problems)),
			object: rep.Problems[0].Object, remedy: "find out who could write the repository's audit/ objects; the problems above name the records"}
	}
	return nil
}

func printAuditReport(w io.Writer, rep *auditlog.Report, pin *auditlog.Pin, path string, saved bool) {
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "error: %s: %s\n", termsafe.String(p.Object), termsafe.Lines(p.Reason))
	}
	if len(rep.Problems) > 0 {
		return
	}
	head := "none"
	if rep.Head != nil {
		head = rep.Head.ID
	}
	fmt.Fprintf(w, "%d records, chain intact; newest record %s\n", rep.Records, head)
	fmt.Fprintln(w, "proven:")
	fmt.Fprintln(w, "  - every record is authenticated by the writer key and names one that exists")
	if p := rep.Previous; p != nil {
		fmt.Fprintf(w, "  - chain intact from the head you verified on %s (%.8s, %d records), unchanged and with the same records before it; %d records since, all extending it\n",
			p.Verified.Local().Format(time.DateTime), p.ID, p.Count, rep.Since)
	}
	if rep.Written > 0 {
		fmt.Fprintf(w, "  - the %d record(s) this machine wrote since are all present\n", rep.Written)
	}
	if rep.SignaturesChecked {
		key := fmt.Sprintf("the operators' audit key %.16s…", rep.AuditKey)
		if rep.Rotations > 0 {
			key = fmt.Sprintf("the operators' audit key of their time (now %.16s…, after %d rotation(s), each endorsed by the key before it)", rep.AuditKey, rep.Rotations)
		}
		fmt.Fprintf(w, "  - %d records signed by %s; every init, restore, drill and key change since signing began is signed\n", rep.Signed, key)
	}
	if rep.Witnessed > 0 {
		fmt.Fprintf(w, "  - %d snapshot(s) name the audit head they saw: each of those records, and each snapshot's backup record, is in the log\n", rep.Witnessed)
	}
	fmt.Fprintln(w, "cannot prove:")
	switch {
	case pin == nil:
		fmt.Fprintln(w, "  - anything against an earlier state: without an operator's identity (COFFER_IDENTITY_FILE) no head is kept and no signature checked; removing the newest records, or the whole log, leaves no trace here")
	case rep.Previous == nil:
		fmt.Fprintln(w, "  - that no record was deleted before now: this is this machine's first verification of this log; from now on, a deletion, rollback or fork before this head is detected")
	default:
		fmt.Fprintf(w, "  - that no record was deleted before your first verification on %s\n", pin.FirstVerified.Local().Format(time.DateTime))
	}
	fmt.Fprintln(w, "  - that no record newer than the head you verified, and written by another machine, was deleted, unless a later snapshot witnessed it (under S3 Object Lock, records cannot be deleted while retained)")
	fmt.Fprintln(w, "  - who wrote an unsigned record (backup, and forget or prune run with the writer key): any writer-key holder can write one")
	if rep.Legacy > 0 {
		fmt.Fprintf(w, "  - who wrote the %d operator record(s) from before signing began: they are authenticated by the writer key only\n", rep.Legacy)
	}
	if saved {
		fmt.Fprintf(w, "head advanced to %.8s (%d records), kept in %s\n", head, rep.Records, path)
	}
}
