package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"
	"filippo.io/age/plugin"
	"golang.org/x/term"

	"github.com/coffer-backup/coffer/internal/agekeys"
	"github.com/coffer-backup/coffer/internal/termsafe"
	"github.com/coffer-backup/coffer/repository"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/location"
)

// globals are the settings every command shares, from flags and the
// environment. Secrets only ever come from files or the environment.
type globals struct {
	repo string
	json bool
	asOf time.Time // --as-of: read the repository as it was then (asof.go)
}

func (g *globals) repoURL() (string, error) {
	if g.repo != "" {
		return g.repo, nil
	}
	if v := os.Getenv("COFFER_REPO"); v != "" {
		return v, nil
	}
	return "", failf("COFFER_REPO", "set COFFER_REPO or pass --repo (a path, file:///path or s3://BUCKET/PREFIX)", "no repository")
}

func (g *globals) backend(ctx context.Context, create, objectLock bool) (storage.Backend, error) {
	u, err := g.repoURL()
	if err != nil {
		return nil, err
	}
	be, err := location.Open(ctx, u, location.S3Options{
		Endpoint:     os.Getenv("COFFER_S3_ENDPOINT"),
		AccessKey:    os.Getenv("AWS_ACCESS_KEY_ID"),
		SecretKey:    os.Getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken: os.Getenv("AWS_SESSION_TOKEN"),
		Region:       os.Getenv("AWS_REGION"),
		CreateBucket: create,
		ObjectLock:   objectLock,
	})
	if err != nil || g.asOf.IsZero() {
		return be, err
	}
	return asOfView(ctx, be, g.asOf)
}

func pluginUI() *plugin.ClientUI {
	return plugin.NewTerminalUI(func(f string, v ...any) { fmt.Fprintf(os.Stderr, f+"\n", v...) },
		func(f string, v ...any) { fmt.Fprintf(os.Stderr, "warning: "+f+"\n", v...) })
}

func identities() ([]age.Identity, string, error) {
	path := os.Getenv("COFFER_IDENTITY_FILE")
	if path == "" {
		return nil, "", nil
	}
	ids, err := agekeys.LoadIdentities(path, passphrase, pluginUI())
	return ids, path, err
}

func passphrase() (string, error) {
	if f := os.Getenv("COFFER_IDENTITY_PASSPHRASE_FILE"); f != "" {
		b, err := os.ReadFile(f)
		return strings.TrimRight(string(b), "\r\n"), err
	}
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return "", errors.New("the identity file is passphrase-protected and there is no terminal to ask on: set COFFER_IDENTITY_PASSPHRASE_FILE")
	}
	fmt.Fprint(os.Stderr, "Passphrase for the identity file: ")
	b, err := term.ReadPassword(int(os.Stdin.Fd()))
	fmt.Fprintln(os.Stderr)
	return string(b), err
}

func writerKey() (*repository.WriterKey, error) {
	path := os.Getenv("COFFER_WRITER_KEY_FILE")
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &userError{msg: fmt.Sprintf("writer key: %v", err), object: path, remedy: "check COFFER_WRITER_KEY_FILE", err: err}
	}
	return repository.ParseWriterKey(b, path)
}

// openRepo opens the repository with the best key available: an operator
// identity when set (needed when read is true), else the writer key. An
// identity's open is checked against this machine's pins (checkTrust).
func (g *globals) openRepo(ctx context.Context, read bool) (*repository.Repo, error) {
	r, idPath, err := g.openUnpinned(ctx, read)
	if err != nil {
		return nil, err
	}
	if err := checkTrust(r, idPath); err != nil {
		return nil, err
	}
	return r, nil
}

// openUnpinned is openRepo without the trust file (for coffer key trust).
// It returns the identity file's path, "" when opened with the writer key.
func (g *globals) openUnpinned(ctx context.Context, read bool) (*repository.Repo, string, error) {
	be, err := g.backend(ctx, false, false)
	if err != nil {
		return nil, "", err
	}
	ids, idPath, err := identities()
	if err != nil {
		return nil, "", err
	}
	wk, err := writerKey()
	if err != nil {
		return nil, "", err
	}
	if ids != nil {
		r, err := repository.OpenRestorer(ctx, be, ids, repository.OpenOptions{WriterKey: wk, Fingerprint: os.Getenv("COFFER_WRITER_FINGERPRINT")})
		var wi *repository.WrongIdentityError
		if errors.As(err, &wi) {
			return nil, "", failf(wi.Object, "use an operator's identity", "%s is encrypted to %s; none matches the identity in %s", wi.Object, strings.Join(wi.Operators, ", "), idPath)
		}
		if err == nil {
			r.SetWarn(warnSkipped)
			r.SetIndexCache(indexCacheDir())
		}
		return r, idPath, err
	}
	if read {
		return nil, "", repository.ErrNeedIdentity
	}
	if wk == nil {
		return nil, "", failf("COFFER_WRITER_KEY_FILE", "set COFFER_WRITER_KEY_FILE (backup host, maintainer) or COFFER_IDENTITY_FILE (operator)", "no key")
	}
	r, err := repository.OpenWriter(ctx, be, wk)
	if err == nil {
		r.SetWarn(warnSkipped)
		r.SetIndexCache(indexCacheDir())
	}
	return r, "", err
}

// indexCacheDir is where the local index cache lives: COFFER_CACHE_DIR,
// else $XDG_CACHE_HOME/coffer, else ~/.cache/coffer; "" (the index in
// memory) when none can be found. COFFER_CACHE_DIR=off disables it.
func indexCacheDir() string {
	if d := os.Getenv("COFFER_CACHE_DIR"); d != "" {
		if d == "off" {
			return ""
		}
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "coffer")
	}
	if h, err := os.UserHomeDir(); err == nil && h != "" {
		return filepath.Join(h, ".cache", "coffer")
	}
	return ""
}

// warnSkipped tells of a damaged or foreign object that was skipped.
func warnSkipped(err error) {
	fmt.Fprintf(os.Stderr, "warning: skipped %s\n", termsafe.Lines(err.Error()))
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
