package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/internal/agekeys"
	"github.com/coffer-backup/coffer/internal/atomicfile"
	"github.com/coffer-backup/coffer/internal/termsafe"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/storage"
)

type initOptions struct {
	recipients     []string
	recipientsFile string
	identityFile   string
	writerKeyFile  string
	lockMode       string
	lockDays       int
	chunkAvg       string
}

func newInitCmd(g *globals) *cobra.Command {
	o := &initOptions{}
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a repository, its repository key and a writer key",
		Long: `init creates a repository. Data is encrypted to a new repository key, whose
private half is stored in the repository encrypted to the operators' recipients
(--recipient, --recipients-file). With no recipient, init generates an operator
identity and writes it to --identity-file (default $COFFER_IDENTITY_FILE).

The writer key (what a backup host needs) is written to --writer-key-file
(default $COFFER_WRITER_KEY_FILE) with mode 0600. init pins the repository id and
the writer key fingerprint in the trust file (COFFER_TRUST_FILE, by default the
identity file's path plus ".trust"); an operator's machine refuses the repository
when they change (coffer key trust). Keep the fingerprint: other operators compare
it on their first open, and machines without state pin it with
COFFER_WRITER_FINGERPRINT.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runInit(cmd, g, o) },
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.recipients, "recipient", nil, "operator's age recipient (repeatable)")
	f.StringVar(&o.recipientsFile, "recipients-file", "", "file of operators' recipients, one per line")
	f.StringVar(&o.identityFile, "identity-file", "", "where to write a generated identity when no recipient is given")
	f.StringVar(&o.writerKeyFile, "writer-key-file", "", "where to write the writer key")
	f.StringVar(&o.lockMode, "lock", "", "S3 Object Lock: governance or compliance (the bucket is created with Object Lock when missing)")
	f.IntVar(&o.lockDays, "lock-days", 0, "with --lock: days every object stays locked after it was last written or reused")
	f.StringVar(&o.chunkAvg, "chunk-avg", "64K", "average chunk size, a power of two from 16K to 1M (see docs/format.md)")
	return cmd
}

type initResult struct {
	Repository  string   `json:"repository"`
	ID          string   `json:"repository_id"`
	Operators   []string `json:"operators"`
	Fingerprint string   `json:"writer_key_fingerprint"`
	WriterKey   string   `json:"writer_key_file"`
	Identity    string   `json:"identity_file,omitempty"`
	TrustFile   string   `json:"trust_file,omitempty"`
}

func runInit(cmd *cobra.Command, g *globals, o *initOptions) error {
	ctx := cmd.Context()
	if o.writerKeyFile == "" {
		o.writerKeyFile = os.Getenv("COFFER_WRITER_KEY_FILE")
	}
	if o.writerKeyFile == "" {
		return errors.New("init: where should the writer key go? pass --writer-key-file or set COFFER_WRITER_KEY_FILE")
	}
	if err := refuseExisting(o.writerKeyFile); err != nil {
		return err
	}
	rs, names, generated, err := initRecipients(o)
	if err != nil {
		return err
	}
	if generated != nil {
		if err := refuseExisting(o.identityFile); err != nil {
			return err
		}
	}
	lock, err := lockPolicy(o)
	if err != nil {
		return err
	}
	chunker, err := chunkerParams(o.chunkAvg)
	if err != nil {
		return err
	}
	be, err := g.backend(ctx, true, lock != nil)
	if err != nil {
		return err
	}
	repo, err := repository.Init(ctx, be, repository.InitOptions{Operators: rs, OperatorNames: names, Lock: lock, Chunker: chunker})
	if err != nil {
		return err
	}
	warnUnprotected(cmd, be)
	audit(ctx, repo, "init", nil, repository.AuditRecord{Detail: map[string]string{"operators": strings.Join(names, " "), "writer_key_fingerprint": repo.WriterKey().Fingerprint()}})
	wk := repo.WriterKey()
	if err := writeSecret(o.writerKeyFile, wk.Marshal()); err != nil {
		return fmt.Errorf("init: the repository was created, but writing the writer key failed: %w; recover it with `age -d -i IDENTITY keys/writer.age`", err)
	}
	res := initResult{Repository: be.Location(), ID: repo.Config().ID, Operators: names, Fingerprint: wk.Fingerprint(), WriterKey: o.writerKeyFile}
	if generated != nil {
		text := fmt.Sprintf("# coffer operator identity, created for repository %s\n# public key: %s\n%s\n", res.ID, generated.Recipient(), generated)
		if err := writeSecret(o.identityFile, []byte(text)); err != nil {
			return fmt.Errorf("init: writing the identity failed: %w", err)
		}
		res.Identity = o.identityFile
	}
	idPath := os.Getenv("COFFER_IDENTITY_FILE")
	if generated != nil {
		idPath = o.identityFile
	}
	if res.TrustFile, err = pinAtInit(repo, idPath); err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "coffer: warning: the repository was created, but pinning it failed: %v; the first open with an identity will pin it\n", err)
	}
	if g.json {
		return printJSON(cmd.OutOrStdout(), res)
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "created repository %s at %s\n", res.ID, res.Repository)
	for _, n := range names {
		fmt.Fprintf(out, "operator recipient:      %s\n", n)
	}
	if res.Identity != "" {
		fmt.Fprintf(out, "operator identity:       %s (keep it offline; it decrypts every backup)\n", res.Identity)
	}
	fmt.Fprintf(out, "writer key:              %s (for backup hosts; it cannot decrypt backups)\n", res.WriterKey)
	fmt.Fprintf(out, "writer key fingerprint:  %s\n", res.Fingerprint)
	if res.TrustFile != "" {
		fmt.Fprintf(out, "pinned in:               %s (repository id and writer key fingerprint)\n", res.TrustFile)
	} else {
		fmt.Fprintln(out, "pinned in:               nowhere yet: an operator's first open pins them; compare the fingerprint then")
	}
	return nil
}

func initRecipients(o *initOptions) ([]age.Recipient, []string, *age.X25519Identity, error) {
	ui := pluginUI()
	var rs []age.Recipient
	names := append([]string(nil), o.recipients...)
	for _, s := range o.recipients {
		r, err := agekeys.ParseRecipient(s, ui)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("init: --recipient: %w", err)
		}
		rs = append(rs, r)
	}
	if o.recipientsFile != "" {
		more, moreNames, err := agekeys.ReadRecipientsFile(o.recipientsFile, ui)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("init: %w", err)
		}
		rs, names = append(rs, more...), append(names, moreNames...)
	}
	if len(rs) > 0 {
		return rs, names, nil, nil
	}
	if o.identityFile == "" {
		o.identityFile = os.Getenv("COFFER_IDENTITY_FILE")
	}
	if o.identityFile == "" {
		return nil, nil, nil, errors.New("init: give operators' recipients (--recipient, --recipients-file), or --identity-file (or COFFER_IDENTITY_FILE) for a new identity to be written to")
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, nil, nil, err
	}
	return []age.Recipient{id.Recipient()}, []string{id.Recipient().String()}, id, nil
}

func refuseExisting(path string) error {
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("init: %s already exists: move it away or choose another path (coffer never overwrites a key)", path)
	}
	return nil
}

// writeSecret writes a key file with mode 0600, atomically, and never over
// an existing file.
func writeSecret(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(path, atomicfile.Options{NoReplace: true}, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

func lockPolicy(o *initOptions) (*repository.ObjectLock, error) {
	switch {
	case o.lockMode == "" && o.lockDays == 0:
		return nil, nil
	case o.lockMode == "" || o.lockDays <= 0:
		return nil, errors.New("init: give both --lock governance|compliance and --lock-days N (N > 0)")
	}
	l := &repository.ObjectLock{Mode: o.lockMode, Days: o.lockDays}
	if err := l.Validate(); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	return l, nil
}

// chunkerParams turns --chunk-avg into chunker parameters: the average, a
// quarter of it as minimum and four times it as maximum.
func chunkerParams(avg string) (repository.ChunkerParams, error) {
	sizes := map[string]int{"16K": 14, "32K": 15, "64K": 16, "128K": 17, "256K": 18, "512K": 19, "1M": 20}
	bits, ok := sizes[strings.ToUpper(avg)]
	if !ok {
		return repository.ChunkerParams{}, fmt.Errorf("init: --chunk-avg %q: give a power of two from 16K to 1M", avg)
	}
	return repository.ChunkerParams{Min: 1 << (bits - 2), AvgBits: bits, Max: 1 << (bits + 2)}, nil
}

// bucketProtection is what an S3 backend says about how it keeps objects.
type bucketProtection interface {
	VersioningEnabled(ctx context.Context) (bool, error)
	ObjectLockEnabled(ctx context.Context) (bool, error)
}

// warnUnprotected warns when the repository's bucket has neither
// versioning nor Object Lock: a key with PutObject (a backup host) could
// then destroy backups by overwriting them where the server cannot forbid
// it in a policy (see coffer policy --help), and nothing would bring the
// old objects back.
func warnUnprotected(cmd *cobra.Command, be storage.Backend) {
	warnBucket(cmd, be, true)
}

// warnBucket is warnUnprotected; unless unknown, it says nothing when the
// bucket's settings cannot be read (the least-privilege roles may not
// read its versioning: check runs under them).
func warnBucket(cmd *cobra.Command, be storage.Backend, unknown bool) {
	s3, protected, err := bucketProtected(cmd.Context(), be)
	w := cmd.ErrOrStderr()
	switch {
	case s3 && err == nil && !protected:
		fmt.Fprintf(w, "warning: bucket of %s has neither versioning nor Object Lock: a backup host whose S3 key may put objects could overwrite "+
			"packs and snapshots, and nothing would bring them back. Enable versioning on the bucket (mc version enable ALIAS/BUCKET, or "+
			"aws s3api put-bucket-versioning --versioning-configuration Status=Enabled), or create it with --lock; on AWS, use the policy of "+
			"`coffer policy writer`, which forbids overwrites\n", termsafe.String(be.Location()))
	case err != nil && unknown:
		fmt.Fprintf(w, "warning: could not read whether the bucket of %s is versioned or locked (%v): make sure it is one of them, "+
			"or that backup hosts cannot overwrite objects\n", termsafe.String(be.Location()), termsafe.String(err.Error()))
	}
}

// bucketProtected reports whether be is an S3 bucket, and if so whether
// it keeps old versions (versioning or Object Lock).
func bucketProtected(ctx context.Context, be storage.Backend) (s3, protected bool, err error) {
	bp, ok := storage.Find[bucketProtection](be)
	if !ok {
		return false, false, nil
	}
	lock, lerr := bp.ObjectLockEnabled(ctx)
	versioned, verr := bp.VersioningEnabled(ctx)
	if err := errors.Join(lerr, verr); err != nil {
		return true, false, err
	}
	return true, lock || versioned, nil
}
