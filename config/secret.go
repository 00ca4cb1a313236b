package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Secret says where a secret is kept: in a file or in an environment
// variable, never in coffer.yaml. It is read only when used, by Read, so
// that a rotated secret is picked up without reloading the config, and its
// String form names the place, never the value: a Secret can be logged.
type Secret struct {
	Key  string // the config key, such as sources[0].password
	File string // from the key's _file form, an absolute path
	Env  string // from the key's _env form
}

// IsSet reports whether the config names a place for the secret.
func (s Secret) IsSet() bool { return s.File != "" || s.Env != "" }

// String names where the secret is, as in "file /etc/coffer/pg-pass".
func (s Secret) String() string {
	switch {
	case s.File != "":
		return "file " + s.File
	case s.Env != "":
		return "environment variable " + s.Env
	}
	return "none"
}

// ErrNoSecret is returned by Read for a secret the config does not set.
var ErrNoSecret = errors.New("not set in the config")

// Read returns the secret: the file's contents without the trailing line
// break, or the environment variable's value, looked up with lookupEnv
// (os.LookupEnv, in a program). An empty secret is an error. Errors name
// the key and the place, never the contents.
func (s Secret) Read(lookupEnv func(string) (string, bool)) (string, error) {
	var v string
	switch {
	case s.File != "":
		b, err := os.ReadFile(s.File)
		if err != nil {
			return "", fmt.Errorf("%s: %w (the file named by %s_file)", s.Key, err, s.Key)
		}
		v = strings.TrimRight(string(b), "\r\n")
	case s.Env != "":
		var ok bool
		if v, ok = lookupEnv(s.Env); !ok {
			return "", fmt.Errorf("%s: the environment variable %s (named by %s_env) is not set: set it in the daemon's environment, e.g. with systemd's EnvironmentFile=", s.Key, s.Env, s.Key)
		}
	default:
		return "", fmt.Errorf("%s: %w", s.Key, ErrNoSecret)
	}
	if v == "" {
		return "", fmt.Errorf("%s: %s is empty", s.Key, s)
	}
	return v, nil
}

// Secrets lists every secret the config names, for a check that they can
// all be read before the daemon needs them.
func (c *Config) Secrets() []Secret {
	all := []Secret{c.Repository.AccessKeyID(), c.Repository.SecretAccessKey(), c.Repository.IdentityPassphrase()}
	for i := range c.Sources {
		all = append(all, c.Sources[i].Password())
	}
	for i := range c.Drills {
		all = append(all, c.Drills[i].ScratchPassword())
	}
	var set []Secret
	for _, s := range all {
		if s.IsSet() {
			set = append(set, s)
		}
	}
	return set
}

// CheckSecrets reads every secret the config names and every file it
// points to (writer key, identity, assertions) and reports all that cannot
// be read. It returns no secret.
func (c *Config) CheckSecrets(lookupEnv func(string) (string, bool)) error {
	var errs []error
	for _, s := range c.Secrets() {
		if _, err := s.Read(lookupEnv); err != nil {
			key := s.Key + "_env"
			if s.File != "" {
				key = s.Key + "_file"
			}
			errs = append(errs, c.at(key, s.Key, err))
		}
	}
	files := []struct{ key, path string }{
		{"repository.writer_key_file", c.Repository.WriterKeyFile},
		{"repository.identity_file", c.Repository.IdentityFile},
	}
	for i, d := range c.Drills {
		files = append(files, struct{ key, path string }{fmt.Sprintf("drills[%d].assertions", i), d.Assertions})
	}
	for _, f := range files {
		if f.path == "" {
			continue
		}
		fh, err := os.Open(f.path)
		if err != nil {
			errs = append(errs, c.at(f.key, f.key, fmt.Errorf("%s: %w", f.key, err)))
			continue
		}
		fh.Close()
	}
	return errors.Join(errs...)
}

// at places err, about the value of key path (whose messages start with
// name), at its file, line and column.
func (c *Config) at(key, name string, err error) error {
	p, ok := c.pos[key]
	if !ok {
		return err
	}
	return &Error{File: c.File, Line: p.line, Column: p.col, Key: name, Msg: strings.TrimPrefix(err.Error(), name+": ")}
}
