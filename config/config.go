// Package config reads coffer.yaml, the one config file of the coffer
// daemon: the repository, the sources with their schedules and retention,
// the check, prune and drill plans, notifications and the daemon's own
// settings. Example returns a commented example of every key.
//
// Loading is strict: an unknown key, a value of the wrong type or a bad
// value is an *Error that names the file, line, column and key path and
// says what to do, and Load reports every error at once (errors.Join).
//
// Secrets are never written in the file: a secret key comes in two forms,
// KEY_file (a file holding the secret) and KEY_env (an environment variable
// holding it), and is read only when used, through Secret.Read. Relative
// paths in the file are relative to the file's directory.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/coffer-backup/coffer/retention"
)

// Config is a loaded coffer.yaml.
type Config struct {
	Repository    Repository    `yaml:"repository"`
	Sources       []Source      `yaml:"sources"`
	Checks        []Check       `yaml:"checks"`
	Prune         Prune         `yaml:"prune"`
	Drills        []Drill       `yaml:"drills"`
	Copies        []Copy        `yaml:"copies"`
	Notifications Notifications `yaml:"notifications"`
	Daemon        Daemon        `yaml:"daemon"`

	// File is the path the config was loaded from.
	File string `yaml:"-"`
	// pos is where each key path's value is in File, for the errors of
	// later checks (CheckSecrets).
	pos map[string]position
}

// Repository says where the backups are and which keys open them.
type Repository struct {
	URL                    string         `yaml:"url"`
	S3Endpoint             string         `yaml:"s3_endpoint"`
	S3Region               string         `yaml:"s3_region"`
	AccessKeyIDFile        string         `yaml:"access_key_id_file"`
	AccessKeyIDEnv         string         `yaml:"access_key_id_env"`
	SecretAccessKeyFile    string         `yaml:"secret_access_key_file"`
	SecretAccessKeyEnv     string         `yaml:"secret_access_key_env"`
	WriterKeyFile          string         `yaml:"writer_key_file"`
	WriterFingerprint      string         `yaml:"writer_fingerprint"`
	IdentityFile           string         `yaml:"identity_file"`
	IdentityPassphraseFile string         `yaml:"identity_passphrase_file"`
	IdentityPassphraseEnv  string         `yaml:"identity_passphrase_env"`
	TimeZone               string         `yaml:"time_zone"`
	Location               *time.Location `yaml:"-"` // TimeZone, loaded
}

// AccessKeyID is the S3 access key id.
func (r Repository) AccessKeyID() Secret {
	return Secret{Key: "repository.access_key_id", File: r.AccessKeyIDFile, Env: r.AccessKeyIDEnv}
}

// SecretAccessKey is the S3 secret access key.
func (r Repository) SecretAccessKey() Secret {
	return Secret{Key: "repository.secret_access_key", File: r.SecretAccessKeyFile, Env: r.SecretAccessKeyEnv}
}

// IdentityPassphrase is the passphrase of a passphrase-protected identity.
func (r Repository) IdentityPassphrase() Secret {
	return Secret{Key: "repository.identity_passphrase", File: r.IdentityPassphraseFile, Env: r.IdentityPassphraseEnv}
}

// Source is one thing to back up: a database or a command's output.
// Exactly one of Postgres, MySQL, SQLite and Exec is set.
type Source struct {
	Name         string `yaml:"name"`
	Postgres     string `yaml:"postgres"`
	MySQL        string `yaml:"mysql"`
	SQLite       string `yaml:"sqlite"`
	Exec         string `yaml:"exec"`
	AllDatabases bool   `yaml:"all_databases"`
	// Physical makes a postgres source's backups physical base backups
	// (point-in-time recovery with the WAL archive), and the daemon then
	// watches the server's WAL archiving every minute (metrics).
	Physical     bool      `yaml:"physical"`
	PasswordFile string    `yaml:"password_file"`
	PasswordEnv  string    `yaml:"password_env"`
	Tags         []string  `yaml:"tags"`
	Schedule     string    `yaml:"schedule"`
	Retention    Retention `yaml:"retention"`

	path string // sources[i], for messages
}

// Engines lists the source kinds, in the order of Source's fields.
var Engines = []string{"postgres", "mysql", "sqlite", "exec"}

// Engine is "postgres", "mysql", "sqlite" or "exec", and Target the URL,
// path or command that goes with it.
func (s Source) Engine() (engine, target string) {
	for i, t := range s.targets() {
		if t != "" {
			return Engines[i], t
		}
	}
	return "", ""
}

func (s Source) targets() []string { return []string{s.Postgres, s.MySQL, s.SQLite, s.Exec} }

// Password is the database password, for postgres and mysql sources.
func (s Source) Password() Secret {
	return Secret{Key: s.path + ".password", File: s.PasswordFile, Env: s.PasswordEnv}
}

// Retention is a source's forget policy, applied after each backup. A
// count of -1 keeps every bucket of its kind, as with coffer forget.
type Retention struct {
	KeepLast    int           `yaml:"keep_last"`
	KeepHourly  int           `yaml:"keep_hourly"`
	KeepDaily   int           `yaml:"keep_daily"`
	KeepWeekly  int           `yaml:"keep_weekly"`
	KeepMonthly int           `yaml:"keep_monthly"`
	KeepYearly  int           `yaml:"keep_yearly"`
	KeepWithin  time.Duration `yaml:"keep_within"`
	KeepTags    []string      `yaml:"keep_tags"`
}

// IsSet reports whether the policy has a rule; a source without one keeps
// every snapshot.
func (r Retention) IsSet() bool { return !reflect.ValueOf(r).IsZero() }

// Policy is r as retention.Apply takes it.
func (r Retention) Policy() retention.Policy {
	return retention.Policy{Last: r.KeepLast, Hourly: r.KeepHourly, Daily: r.KeepDaily, Weekly: r.KeepWeekly,
		Monthly: r.KeepMonthly, Yearly: r.KeepYearly, Within: r.KeepWithin, Tags: r.KeepTags}
}

// Check is a scheduled coffer check.
type Check struct {
	Schedule       string  `yaml:"schedule"`
	ReadData       bool    `yaml:"read_data"`
	ReadDataSubset string  `yaml:"read_data_subset"`
	Subset         float64 `yaml:"-"` // ReadDataSubset as a fraction in (0, 1]; 0 reads all (with ReadData)
}

// Prune is the schedule of coffer prune; an empty Schedule never prunes.
type Prune struct {
	Schedule string `yaml:"schedule"`
}

// Drill is a scheduled restore drill of some sources.
type Drill struct {
	Sources             []string `yaml:"sources"`
	Schedule            string   `yaml:"schedule"`
	Scratch             string   `yaml:"scratch"`
	ScratchPasswordFile string   `yaml:"scratch_password_file"`
	ScratchPasswordEnv  string   `yaml:"scratch_password_env"`
	Ephemeral           bool     `yaml:"ephemeral"`
	Assertions          string   `yaml:"assertions"`
	Sample              int      `yaml:"sample"`
	ReportDir           string   `yaml:"report_dir"`

	path string // drills[i], for messages
}

// ScratchPassword is the password for the Scratch server.
func (d Drill) ScratchPassword() Secret {
	return Secret{Key: d.path + ".scratch_password", File: d.ScratchPasswordFile, Env: d.ScratchPasswordEnv}
}

// Copy is a scheduled coffer copy of the repository (or of some of its
// sources) into a second repository, with that repository's own
// credentials.
type Copy struct {
	To                  string   `yaml:"to"`
	Schedule            string   `yaml:"schedule"`
	Sources             []string `yaml:"sources"`
	S3Endpoint          string   `yaml:"s3_endpoint"`
	S3Region            string   `yaml:"s3_region"`
	AccessKeyIDFile     string   `yaml:"access_key_id_file"`
	AccessKeyIDEnv      string   `yaml:"access_key_id_env"`
	SecretAccessKeyFile string   `yaml:"secret_access_key_file"`
	SecretAccessKeyEnv  string   `yaml:"secret_access_key_env"`

	path string // copies[i], for messages
}

// AccessKeyID is the destination's S3 access key id.
func (c Copy) AccessKeyID() Secret {
	return Secret{Key: c.path + ".access_key_id", File: c.AccessKeyIDFile, Env: c.AccessKeyIDEnv}
}

// SecretAccessKey is the destination's S3 secret access key.
func (c Copy) SecretAccessKey() Secret {
	return Secret{Key: c.path + ".secret_access_key", File: c.SecretAccessKeyFile, Env: c.SecretAccessKeyEnv}
}

// Notifications say whom to tell when a job fails or succeeds.
type Notifications struct {
	Webhook Webhook `yaml:"webhook"`
	Command Command `yaml:"command"`
}

// Event kinds for the On lists of notifications.
const (
	OnFailure = "failure"
	OnSuccess = "success"
)

// Webhook is a URL that gets a JSON POST per job outcome listed in On.
type Webhook struct {
	URL string   `yaml:"url"`
	On  []string `yaml:"on"`
}

// Command is a shell command run per job outcome listed in On.
type Command struct {
	Run string   `yaml:"run"`
	On  []string `yaml:"on"`
}

// Notifies reports whether on lists the outcome (OnFailure or OnSuccess).
func Notifies(on []string, outcome string) bool { return slices.Contains(on, outcome) }

// Log formats.
const (
	LogText = "text"
	LogJSON = "json"
)

// Daemon holds the settings of coffer daemon itself.
type Daemon struct {
	MetricsAddr string        `yaml:"metrics_addr"`
	LogFormat   string        `yaml:"log_format"`
	Jitter      time.Duration `yaml:"jitter"`
	Retries     int           `yaml:"retries"`
	RetryBase   time.Duration `yaml:"retry_base"`
	StateFile   string        `yaml:"state_file"`
}

// defaults is the config before the file is read: what a key left out
// means.
func defaults() Config {
	return Config{
		Repository: Repository{TimeZone: "Local"},
		Daemon:     Daemon{LogFormat: LogText, Retries: 3, RetryBase: time.Minute},
	}
}

// Load reads and checks the config file at path. Its error joins an *Error
// for every problem found.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, b)
}

// Parse reads and checks a config file's contents; name is the file's path,
// for messages and to resolve relative paths.
func Parse(name string, data []byte) (*Config, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: name, Msg: "the file is empty: start from the output of coffer config example"}
		}
		return nil, &Error{File: name, Msg: fmt.Sprintf("%v: fix the YAML syntax", err)}
	}
	c := defaults()
	d := &decoder{file: name, pos: map[string]position{}}
	root := doc.Content[0]
	d.decode(root, reflect.ValueOf(&c).Elem(), "")
	v := &validator{decoder: d, c: &c, decodeErrs: len(d.errs)}
	v.validate()
	if len(d.errs) > 0 {
		slices.SortStableFunc(d.errs, func(a, b *Error) int {
			if a.Line != b.Line {
				return a.Line - b.Line
			}
			return a.Column - b.Column
		})
		errs := make([]error, len(d.errs))
		for i, e := range d.errs {
			errs[i] = e
		}
		return nil, errors.Join(errs...)
	}
	c.File, c.pos = name, d.pos
	c.resolvePaths(filepath.Dir(name))
	return &c, nil
}

// resolvePaths makes the file paths in c absolute, relative to dir.
func (c *Config) resolvePaths(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
		if a, err := filepath.Abs(*p); err == nil && *p != "" {
			*p = a
		}
	}
	r := &c.Repository
	if !strings.Contains(r.URL, "://") {
		abs(&r.URL)
	}
	for _, p := range []*string{&r.AccessKeyIDFile, &r.SecretAccessKeyFile, &r.WriterKeyFile, &r.IdentityFile,
		&r.IdentityPassphraseFile, &c.Daemon.StateFile} {
		abs(p)
	}
	for i := range c.Sources {
		abs(&c.Sources[i].SQLite)
		abs(&c.Sources[i].PasswordFile)
	}
	for i := range c.Drills {
		d := &c.Drills[i]
		for _, p := range []*string{&d.ScratchPasswordFile, &d.Assertions, &d.ReportDir} {
			abs(p)
		}
	}
	for i := range c.Copies {
		cp := &c.Copies[i]
		if !strings.Contains(cp.To, "://") {
			abs(&cp.To)
		}
		abs(&cp.AccessKeyIDFile)
		abs(&cp.SecretAccessKeyFile)
	}
}

// Source returns the source with the name, or nil.
func (c *Config) Source(name string) *Source {
	for i := range c.Sources {
		if c.Sources[i].Name == name {
			return &c.Sources[i]
		}
	}
	return nil
}
