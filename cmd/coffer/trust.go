package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/internal/termsafe"
	"github.com/coffer-backup/coffer/internal/trust"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/storage"
)

// trustFile is where this operator's pins live: COFFER_TRUST_FILE, else
// beside the identity (identity + ".trust"), so that each identity has its
// own pins and a machine without an identity has none. It is nil when
// there is neither.
func trustFile(identityPath string) *trust.File {
	if p := os.Getenv("COFFER_TRUST_FILE"); p != "" {
		return &trust.File{Path: p}
	}
	if identityPath == "" {
		return nil
	}
	return &trust.File{Path: identityPath + ".trust"}
}

// trustLocation names a repository in the trust file: its address, and for
// S3 the endpoint too, since one bucket name exists at many providers.
func trustLocation(be storage.Backend) string {
	loc := be.Location()
	if strings.HasPrefix(loc, "s3://") {
		ep := strings.TrimRight(os.Getenv("COFFER_S3_ENDPOINT"), "/")
		if ep == "" {
			ep = "AWS"
		}
		loc += " (endpoint " + ep + ")"
	}
	return loc
}

func trustEntry(r *repository.Repo) trust.Entry {
	return trust.Entry{Location: trustLocation(r.Backend()), RepositoryID: r.Config().ID, Fingerprint: r.WriterKey().Fingerprint()}
}

// checkTrust refuses a repository opened with an identity whose id or
// writer key is not the one pinned, and pins it on first use. A writer-key
// open needs no pin: the local writer key is the anchor, and config is
// authenticated by it. COFFER_WRITER_FINGERPRINT, when set, is the pin
// (checked by OpenRestorer) and the trust file is not used.
func checkTrust(r *repository.Repo, identityPath string) error {
	if !r.CanRead() || os.Getenv("COFFER_WRITER_FINGERPRINT") != "" {
		return nil
	}
	f := trustFile(identityPath)
	e := trustEntry(r)
	res, err := f.Check(e)
	if err != nil {
		return err
	}
	if res == trust.Pinned {
		fmt.Fprintf(os.Stderr, "coffer: first open of repository %s with this identity: trusting repository id %s and writer key fingerprint %s, pinned in %s. Compare the fingerprint with the one `coffer init` printed.\n",
			e.Location, e.RepositoryID, e.Fingerprint, f.Path)
	}
	return nil
}

// pinAtInit records a repository that init has just created: init is the
// one moment its keys are known to be the operator's own. It returns the
// trust file, or "" when init knows of none.
func pinAtInit(r *repository.Repo, identityPath string) (string, error) {
	f := trustFile(identityPath)
	if f == nil {
		return "", nil
	}
	old, err := f.Pin(trustEntry(r))
	if err != nil {
		return "", err
	}
	if old != nil {
		fmt.Fprintf(os.Stderr, "coffer: %s replaces the pin of an earlier repository at %s (id %s, writer key fingerprint %s)\n",
			f.Path, old.Location, old.RepositoryID, old.Fingerprint)
	}
	return f.Path, nil
}

type keyTrustResult struct {
	Repository string       `json:"repository"`
	TrustFile  string       `json:"trust_file"`
	Found      trust.Entry  `json:"found"`
	Pinned     *trust.Entry `json:"pinned,omitempty"` // the pin found contradicts
	Operators  []string     `json:"operators"`
	Generation int          `json:"generation"`
	// Rotation is set when the pinned writer key is an earlier generation
	// of the found repository's keys.
	Rotation     bool `json:"rotation_of_pinned"`
	Changed      bool `json:"changed"`
	AlreadyKnown bool `json:"already_trusted"`
}

func newKeyTrustCmd(g *globals) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "trust [--yes]",
		Short: "Show the pinned and the found writer key fingerprints, and pin the found one",
		Long: `An operator's machine pins each repository's id and writer key fingerprint the
first time an identity opens it (in COFFER_TRUST_FILE, by default the identity
file's path plus ".trust"), and refuses it when they change: whoever can write the
storage could have replaced the repository's keys with their own.

key trust shows the pinned and the found fingerprints and the operators the found
keys are encrypted to. Confirm the new fingerprint with whoever created or rotated
the keys, then accept it with --yes (or by typing yes on a terminal).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runKeyTrust(cmd, g, yes) },
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "pin the found writer key without asking")
	return cmd
}

func runKeyTrust(cmd *cobra.Command, g *globals, yes bool) error {
	r, idPath, err := g.openUnpinned(cmd.Context(), true)
	if err != nil {
		return err
	}
	f := trustFile(idPath)
	res := keyTrustResult{Repository: r.Backend().Location(), TrustFile: f.Path, Found: trustEntry(r), Operators: r.Config().Operators, Generation: r.Config().Gen()}
	out := cmd.OutOrStdout()
	switch v, err := f.Check(res.Found); {
	case err == nil:
		res.AlreadyKnown, res.Changed = v == trust.Trusted, v == trust.Pinned
		if g.json {
			return printJSON(out, res)
		}
		printTrust(out, res)
		if res.Changed {
			fmt.Fprintf(out, "pinned in %s (no earlier pin)\n", f.Path)
		} else {
			fmt.Fprintln(out, "already trusted: nothing changed")
		}
		return nil
	default:
		var me *trust.MismatchError
		if !errors.As(err, &me) {
			return err
		}
		res.Pinned = &me.Pinned
		res.Rotation = slices.Contains(r.PreviousFingerprints(), me.Pinned.Fingerprint)
	}
	if !g.json {
		printTrust(out, res)
	}
	if !yes {
		if !isTerminal(os.Stdin) || !isTerminal(os.Stderr) {
			if g.json {
				printJSON(out, res)
			}
			return errors.New("key trust: nothing changed: confirm the found fingerprint with whoever created or rotated the repository's keys, then run `coffer key trust --yes`")
		}
		fmt.Fprintf(os.Stderr, "Trust writer key %s for %s from now on? Type yes: ", res.Found.Fingerprint, res.Found.Location)
		line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		if strings.TrimSpace(line) != "yes" {
			return errors.New("key trust: nothing changed")
		}
	}
	if _, err := f.Pin(res.Found); err != nil {
		return err
	}
	res.Changed = true
	if g.json {
		return printJSON(out, res)
	}
	fmt.Fprintf(out, "pinned writer key fingerprint %s for %s in %s (it replaces %s)\n", res.Found.Fingerprint, res.Found.Location, f.Path, res.Pinned.Fingerprint)
	return nil
}

func printTrust(w io.Writer, res keyTrustResult) {
	fmt.Fprintf(w, "repository:               %s\n", res.Found.Location)
	fmt.Fprintf(w, "trust file:               %s\n", res.TrustFile)
	if p := res.Pinned; p != nil {
		at := ""
		if p.Location != res.Found.Location {
			at = " at " + p.Location
		}
		fmt.Fprintf(w, "pinned writer key:        %s (repository id %s%s, since %s)\n", p.Fingerprint, p.RepositoryID, at, p.Pinned.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "found writer key:         %s (repository id %s, key generation %d)\n", res.Found.Fingerprint, res.Found.RepositoryID, res.Generation)
	if res.Rotation {
		fmt.Fprintln(w, "the found keys are a rotation of the pinned ones (the pinned writer key is stored as an earlier generation);")
		fmt.Fprintln(w, "whoever kept the old keys could make such a rotation too: confirm the new fingerprint with whoever rotated")
	}
	for _, o := range res.Operators {
		fmt.Fprintf(w, "keys encrypted to:        %s\n", termsafe.String(o))
	}
}
