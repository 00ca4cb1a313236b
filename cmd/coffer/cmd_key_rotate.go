package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/internal/termsafe"
	"github.com/coffer-backup/coffer/repository"
)

type rotateResult struct {
	Rotate    *repository.RotateReport    `json:"rotate,omitempty"`
	Reencrypt *repository.ReencryptReport `json:"reencrypt,omitempty"`
	WriterKey string                      `json:"writer_key_file,omitempty"`
	TrustFile string                      `json:"trust_file,omitempty"`
}

func newKeyRotateCmd(g *globals) *cobra.Command {
	var out string
	var reencrypt bool
	var jobs int
	cmd := &cobra.Command{
		Use:   "rotate --writer-key-out FILE [--reencrypt]",
		Short: "Make new repository and writer keys; with --reencrypt, rewrite everything stored to them",
		Long: `rotate makes a new generation of the repository's keys: a new repository key,
a new metadata key and MAC key (the writer key), encrypted to the current
operators. It needs an operator's identity and a repository nothing else writes
to: it refuses while a backup runs or a prune is unfinished.

From then on a backup host with the old writer key is refused: install the new
one, written to --writer-key-out (mode 0600), on every backup host as
COFFER_WRITER_KEY_FILE. Other operators' machines refuse the new writer key
until they run ` + "`coffer key trust`" + ` and compare its fingerprint with the one printed
here. Every metadata object is sealed again to the new keys under its old name,
so snapshot ids and the audit log stay as they were.

Data stays encrypted to the old repository key until --reencrypt (or, later,
` + "`coffer key reencrypt`" + `) rewrites every pack and private part to the new key, lets
prune remove the old packs, and deletes the old key objects. To stop a removed
operator reading anything: ` + "`coffer key remove`" + ` first, then ` + "`coffer key rotate --reencrypt`" + `.
A rotation that was interrupted is finished by running rotate again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runKeyRotate(cmd, g, out, reencrypt, jobs) },
	}
	cmd.Flags().StringVar(&out, "writer-key-out", "", "where to write the new writer key (never over an existing file)")
	cmd.Flags().BoolVar(&reencrypt, "reencrypt", false, "then rewrite every pack and private part to the new key and delete the old keys")
	cmd.Flags().IntVar(&jobs, "jobs", 4, "packs rewritten at once with --reencrypt")
	return cmd
}

func newKeyReencryptCmd(g *globals) *cobra.Command {
	var jobs int
	cmd := &cobra.Command{
		Use:   "reencrypt",
		Short: "Finish re-encrypting to the newest keys what an earlier rotation left encrypted to older ones",
		Long: `reencrypt rewrites every pack and private part still encrypted to an earlier
generation of the repository key, lets prune remove the old packs (after the
backups that might reuse them finish) and, once nothing indexed needs them,
deletes the earlier generations' key objects. Run it again when it says packs
are left. It needs an operator's identity.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			repo, err := g.openRepo(cmd.Context(), true)
			if err != nil {
				return err
			}
			res := rotateResult{}
			err = reencryptStep(cmd, repo, jobs, &res)
			return printRotate(cmd, g, res, err)
		},
	}
	cmd.Flags().IntVar(&jobs, "jobs", 4, "packs rewritten at once")
	return cmd
}

func newKeyExportWriterCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "export-writer FILE",
		Short: "Write the repository's current writer key to FILE (mode 0600), for a backup host",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			repo, err := g.openRepo(cmd.Context(), true)
			if err != nil {
				return err
			}
			if err := refuseExisting(args[0]); err != nil {
				return err
			}
			if err := writeSecret(args[0], repo.WriterKey().Marshal()); err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), struct {
					File        string `json:"writer_key_file"`
					Fingerprint string `json:"writer_key_fingerprint"`
					Generation  int    `json:"generation"`
				}{args[0], repo.WriterKey().Fingerprint(), repo.Config().Gen()})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote the writer key (fingerprint %s, generation %d) to %s\n", repo.WriterKey().Fingerprint(), repo.Config().Gen(), termsafe.String(args[0]))
			return nil
		},
	}
}

func runKeyRotate(cmd *cobra.Command, g *globals, out string, reencrypt bool, jobs int) error {
	ctx := cmd.Context()
	repo, idPath, err := g.openPinned(ctx)
	if err != nil {
		return err
	}
	resuming := repo.Config().Carried != nil && repo.Config().Carried.Pending
	if out == "" && !resuming {
		return errors.New("key rotate: where should the new writer key go? pass --writer-key-out FILE (backup hosts need it)")
	}
	if out != "" {
		if err := refuseExisting(out); err != nil {
			return err
		}
	}
	rs, err := parseRecipients(repo.Config().Operators)
	if err != nil {
		return err
	}
	rep, err := repo.Rotate(ctx, repository.RotateOptions{Operators: rs})
	res := rotateResult{Rotate: rep}
	if rep != nil && rep.Fingerprint != "" && !rep.Resumed {
		// The new writer key first: without it, no backup host could write.
		if out != "" {
			if werr := writeSecret(out, repo.WriterKey().Marshal()); werr != nil {
				return fmt.Errorf("key rotate: the keys were rotated, but writing the new writer key failed: %w; write it with `coffer key export-writer FILE`", werr)
			}
			res.WriterKey = out
		}
		if f := trustFile(idPath); f != nil && os.Getenv("COFFER_WRITER_FINGERPRINT") == "" {
			if _, perr := f.Pin(trustEntry(repo)); perr != nil {
				return fmt.Errorf("key rotate: the keys were rotated, but pinning the new writer key failed: %w; run `coffer key trust`", perr)
			}
			res.TrustFile = f.Path
		}
	}
	detail := map[string]string{"change": "rotate"}
	if rep != nil && rep.AuditDetail != nil {
		detail = rep.AuditDetail
	}
	if rep == nil || !rep.Resumed {
		audit(ctx, repo, "key-change", err, repository.AuditRecord{Detail: detail})
	}
	if err == nil && reencrypt {
		err = reencryptStep(cmd, repo, jobs, &res)
	}
	return printRotate(cmd, g, res, err)
}

// openPinned opens with an identity, checked against this machine's pins.
func (g *globals) openPinned(ctx context.Context) (*repository.Repo, string, error) {
	r, idPath, err := g.openUnpinned(ctx, true)
	if err != nil {
		return nil, "", err
	}
	if err := checkTrust(r, idPath); err != nil {
		return nil, "", err
	}
	return r, idPath, nil
}

func reencryptStep(cmd *cobra.Command, repo *repository.Repo, jobs int, res *rotateResult) error {
	host, _ := os.Hostname()
	p := newProgress(os.Stderr, "re-encrypting")
	rep, err := repo.Reencrypt(cmd.Context(), repository.ReencryptOptions{Jobs: jobs, Prune: repository.PruneOptions{Host: host, Now: clock()},
		Progress: func(done, total int) { p.line(fmt.Sprintf("%d of %d packs", done, total)) }})
	p.done()
	res.Reencrypt = rep
	audit(cmd.Context(), repo, "key-change", err, repository.AuditRecord{Detail: map[string]string{"change": "reencrypt"}})
	return err
}

func printRotate(cmd *cobra.Command, g *globals, res rotateResult, opErr error) error {
	w := cmd.OutOrStdout()
	if g.json {
		if err := printJSON(w, res); err != nil {
			return err
		}
		return opErr
	}
	if r := res.Rotate; r != nil {
		printRotateReport(w, r, res)
	}
	if r := res.Reencrypt; r != nil {
		printReencryptReport(w, r)
	}
	return opErr
}

func printRotateReport(w io.Writer, r *repository.RotateReport, res rotateResult) {
	if r.Resumed {
		fmt.Fprintf(w, "finished the interrupted rotation to generation %d: %d metadata objects sealed again\n", r.Generation, r.Carried)
		return
	}
	if r.Fingerprint == "" {
		return
	}
	fmt.Fprintf(w, "rotated the repository's keys to generation %d\n", r.Generation)
	fmt.Fprintf(w, "new writer key fingerprint:  %s\n", r.Fingerprint)
	if res.WriterKey != "" {
		fmt.Fprintf(w, "new writer key:              %s\n", termsafe.String(res.WriterKey))
	}
	if res.TrustFile != "" {
		fmt.Fprintf(w, "pinned in:                   %s\n", termsafe.String(res.TrustFile))
	}
	fmt.Fprintf(w, "metadata sealed again:       %d objects (snapshot ids and the audit log are unchanged)\n", r.Carried)
	for _, p := range r.Skipped {
		fmt.Fprintf(w, "not carried:                 %s: %s\n", termsafe.String(p.Object), p.Reason)
	}
	fmt.Fprintln(w, "next: install the new writer key on every backup host (COFFER_WRITER_KEY_FILE); the old one is refused from now on")
	fmt.Fprintln(w, "      other operators run `coffer key trust` and compare the fingerprint above")
	if res.Reencrypt == nil {
		fmt.Fprintln(w, "      data stays encrypted to the old key until `coffer key reencrypt`")
	}
}

func printReencryptReport(w io.Writer, r *repository.ReencryptReport) {
	fmt.Fprintf(w, "re-encrypted %d private parts and %d packs (%s)\n", r.Private, r.Packs, bytesStr(r.PackBytes))
	if p := r.Prune; p != nil && len(p.WaitingFor) > 0 {
		fmt.Fprintf(w, "the old packs are removed once these finish (run `coffer key reencrypt` again then): %s\n", termsafe.String(fmt.Sprint(p.WaitingFor)))
	} else if p != nil {
		fmt.Fprintf(w, "removed %d old packs (%s)\n", p.Deleted, bytesStr(p.DeletedBytes))
	}
	switch {
	case r.OldPacks > 0:
		fmt.Fprintf(w, "%d packs of earlier key generations are still indexed: the old keys stay stored until they are gone\n", r.OldPacks)
	case len(r.Retired) > 0:
		fmt.Fprintf(w, "deleted the keys of generation(s) %v: nothing stored is encrypted to them any more\n", r.Retired)
	}
	for _, k := range r.KeysRetained {
		fmt.Fprintf(w, "could not delete %s (Object Lock?): it stays encrypted to the operators until its retention ends\n", k)
	}
}
