package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// errorList returns the *Errors that Parse joined into err.
func errorList(t *testing.T, err error) []*Error {
	t.Helper()
	if err == nil {
		return nil
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	var out []*Error
	for _, e := range errs {
		var ce *Error
		if !errors.As(e, &ce) {
			t.Fatalf("error %q is not a *config.Error", e)
		}
		out = append(out, ce)
	}
	return out
}

// base is a minimal valid config; cases below are variations of it, so
// their line numbers are easy to count.
// withRepo adds lines to base's repository section, from line 4 on.
func withRepo(lines string) string {
	return strings.Replace(base, "writer.key\n", "writer.key\n"+lines, 1)
}

const base = `repository:
  url: /srv/backup
  writer_key_file: writer.key
sources:
  - name: shop
    postgres: postgres://backup@db1:5432/shop
    schedule: "30 2 * * *"
`

func TestErrors(t *testing.T) {
	// want lists the expected errors in order: "LINE:COL: KEY: " followed
	// by a part of the message.
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown top-level key", base + "daemom:\n  retries: 2\n",
			[]string{"8:1: daemom: unknown key: did you mean daemon?"}},
		{"unknown nested key", base + "    retention:\n      keep_dayly: 3\n",
			[]string{"9:7: sources[0].retention.keep_dayly: unknown key: did you mean keep_daily?"}},
		{"unknown key far from any", base + "    colour: blue\n",
			[]string{"8:5: sources[0].colour: unknown key: see coffer config example"}},
		{"key given twice", base + "    schedule: \"0 3 * * *\"\n",
			[]string{"8:5: sources[0].schedule: given twice: keep one"}},
		{"wrong type: scalar for a list", base + "    tags: nightly\n",
			[]string{`8:11: sources[0].tags: want a list (- item, or [a, b]), got "nightly"`}},
		{"wrong type: not a bool", base + "    all_databases: yes\n",
			[]string{`8:20: sources[0].all_databases: "yes" is not a boolean: give true or false`}},
		{"wrong type: not a number", base + "daemon:\n  retries: many\n",
			[]string{`9:12: daemon.retries: "many" is not a whole number`}},
		{"wrong type: list for a mapping", base + "daemon: [a]\n",
			[]string{`8:9: daemon: want a mapping of keys (key: value), got a list`}},
		{"wrong type: mapping for a string", base + "    exec: {run: x}\n",
			[]string{`8:11: sources[0].exec: want a single value, got a mapping`}},
		{"bad cron", strings.Replace(base, `"30 2 * * *"`, `"61 2 * * *"`, 1),
			[]string{`7:15: sources[0].schedule: "61 2 * * *" is not a cron schedule (`, `write minute hour day-of-month month day-of-week`}},
		{"cron with four fields", strings.Replace(base, `"30 2 * * *"`, `"30 2 * *"`, 1),
			[]string{`7:15: sources[0].schedule: "30 2 * *" is not a cron schedule`}},
		{"cron with a time zone", strings.Replace(base, `"30 2 * * *"`, `"TZ=UTC 30 2 * * *"`, 1),
			[]string{`7:15: sources[0].schedule: "TZ=UTC 30 2 * * *": schedules run in repository.time_zone`}},
		{"missing schedule", strings.Replace(base, "    schedule: \"30 2 * * *\"\n", "", 1),
			[]string{`5:5: sources[0].schedule: missing: give a cron schedule`}},
		{"bad duration", base + "daemon:\n  jitter: 5 minutes\n",
			[]string{`9:11: daemon.jitter: duration "5 minutes": `, "write it like 30d"}},
		{"duration with months", base + "    retention: {keep_within: 3mo}\n",
			[]string{`8:30: sources[0].retention.keep_within: duration "3mo": months and years have no fixed length`}},
		{"bad time zone", withRepo("  time_zone: Mars/Olympus\n"),
			[]string{`4:14: repository.time_zone: "Mars/Olympus" is not a known time zone: use an IANA name such as Europe/Berlin`}},
		{"source without an engine", strings.Replace(base, "    postgres: postgres://backup@db1:5432/shop\n", "", 1),
			[]string{`5:5: sources[0]: give one of postgres (URL), mysql (URL), sqlite (path) or exec (command)`}},
		{"source with two engines", base + "    sqlite: /var/lib/shop.db\n",
			[]string{`8:13: sources[0].sqlite: postgres is given too: a source has exactly one of postgres, mysql, sqlite or exec`}},
		{"inline password", base + "    password: hunter2\n",
			[]string{`8:5: sources[0].password: secrets are not written in coffer.yaml: put it in a file (password_file) or the environment (password_env)`}},
		{"inline S3 secret", withRepo("  secret_access_key: abc\n"),
			[]string{`4:3: repository.secret_access_key: secrets are not written in coffer.yaml: put it in a file (secret_access_key_file) or the environment (secret_access_key_env)`}},
		{"inline writer key", withRepo("  writer_key: abc\n"),
			[]string{`4:3: repository.writer_key: secrets are not written in coffer.yaml: put it in a file (writer_key_file)`}},
		{"password in a URL", strings.Replace(base, "backup@db1", "backup:hunter2@db1", 1),
			[]string{`6:15: sources[0].postgres: the address holds a password: remove it and put it in a file (password_file) or the environment (password_env)`}},
		{"password in a conninfo address", strings.Replace(base, "postgres://backup@db1:5432/shop", "'host=db1 dbname=shop password=hunter2'", 1),
			[]string{`6:15: sources[0].postgres: the address holds a password`}},
		{"unsupported conninfo setting", strings.Replace(base, "postgres://backup@db1:5432/shop", "'host=db1 dbname=shop service=prod'", 1),
			[]string{`6:15: sources[0].postgres: postgres address "dbname=shop host=db1 service=prod": setting "service" is not supported`}},
		{"secret in a file and the environment", base + "    password_file: pg-pass\n    password_env: PGPASS\n",
			[]string{`9:19: sources[0].password_env: sources[0].password_file is given too: give the secret in a file or in the environment, not both`}},
		{"password for a sqlite source", strings.Replace(base, "postgres: postgres://backup@db1:5432/shop", "sqlite: shop.db", 1) + "    password_env: X\n",
			[]string{`8:19: sources[0].password_env: goes with postgres or mysql: an sqlite source has no password here`}},
		{"physical for a mysql source", strings.Replace(base, "postgres: postgres://backup@db1:5432/shop", "mysql: mysql://backup@db1:3306/shop", 1) + "    physical: true\n",
			[]string{`8:15: sources[0].physical: goes with postgres (a physical base backup is of the whole server: no all_databases)`}},
		{"duplicate source names", base + "  - name: shop\n    exec: echo hi\n    schedule: \"@daily\"\n",
			[]string{`8:11: sources[1].name: "shop" is the name of an earlier source too: give each source its own name`}},
		{"drill of an unknown source", withRepo("  identity_file: op.txt\n") + "drills:\n  - sources: [shop, shpo]\n    schedule: \"@monthly\"\n    ephemeral: true\n",
			[]string{`10:21: drills[0].sources[1]: "shpo" is not a source in this file`}},
		{"drill without an identity", base + "drills:\n  - sources: [shop]\n    schedule: \"@monthly\"\n    ephemeral: true\n",
			[]string{`9:5: drills[0]: drills restore, which needs an operator identity: set repository.identity_file`}},
		{"copy without a destination", base + "copies:\n  - schedule: \"@daily\"\n",
			[]string{`9:5: copies[0].to: missing: give the repository`}},
		{"copy to the repository itself", base + "copies:\n  - to: /srv/backup\n    schedule: \"@daily\"\n",
			[]string{`9:9: copies[0].to: "/srv/backup" is the repository itself: give a second repository`}},
		{"inline copy secret", base + "copies:\n  - to: s3://offsite/p\n    schedule: \"@daily\"\n    secret_access_key: abc\n",
			[]string{`11:5: copies[0].secret_access_key: secrets are not written in coffer.yaml`}},
		{"copy with half its credentials", base + "copies:\n  - to: s3://offsite/p\n    schedule: \"@daily\"\n    access_key_id_env: K\n",
			[]string{`9:5: copies[0]: give both access_key_id_(file|env) and secret_access_key_(file|env), or neither`}},
		{"copy endpoint for a local copy", base + "copies:\n  - to: /mnt/copy\n    schedule: \"@daily\"\n    s3_endpoint: http://127.0.0.1:9000\n",
			[]string{`11:18: copies[0].s3_endpoint: goes with an s3:// repository url`}},
		{"drill without a scratch", withRepo("  identity_file: op.txt\n") + "drills:\n  - sources: [shop]\n    schedule: \"@monthly\"\n",
			[]string{`10:5: drills[0]: "shop" is a postgres source: give scratch (a server for the scratch database) or ephemeral: true`}},
		{"drill scratch of the wrong engine", withRepo("  identity_file: op.txt\n") + "drills:\n  - sources: [shop]\n    schedule: \"@monthly\"\n    scratch: mysql://drill@localhost:3306/\n",
			[]string{`12:14: drills[0].scratch: is a mysql server but "shop" is a postgres source`}},
		{"negative keep count", base + "    retention:\n      keep_daily: -3\n",
			[]string{`9:19: sources[0].retention.keep_daily: -3 is negative: give 0 or more (or -1 to keep every one)`}},
		{"retention without a rule", base + "    retention: {}\n",
			[]string{`8:16: sources[0].retention: no rule: give at least one keep_* rule`}},
		{"read data without an identity", base + "checks:\n  - schedule: \"@weekly\"\n    read_data_subset: 10%\n",
			[]string{`10:23: checks[0].read_data_subset: reading the data needs an operator identity: set repository.identity_file`}},
		{"bad subset", withRepo("  identity_file: op.txt\n") + "checks:\n  - schedule: \"@weekly\"\n    read_data_subset: 150%\n",
			[]string{`11:23: checks[0].read_data_subset: "150%": give a percentage such as 10% (more than 0, at most 100)`}},
		{"bad notification outcome", base + "notifications:\n  webhook: {url: https://h.example/x, on: [failure, sucess]}\n",
			[]string{`9:53: notifications.webhook.on[1]: "sucess": give failure or success`}},
		{"bad log format", base + "daemon:\n  log_format: yaml\n",
			[]string{`9:15: daemon.log_format: "yaml": give text or json`}},
		{"bad metrics address", base + "daemon:\n  metrics_addr: 9464\n",
			[]string{`9:17: daemon.metrics_addr: "9464": give HOST:PORT`}},
		{"missing repository", strings.Replace(base, "  url: /srv/backup\n", "", 1),
			[]string{`2:3: repository.url: missing: give the repository`}},
		{"not a mapping", "- a\n- b\n", []string{`1:1: want a mapping of keys`}},
		{"syntax error", base + "  - name: [\n", []string{`yaml: line `, "fix the YAML syntax"}},
		{"every error at once", `repository:
  url: /srv/backup
  writer_key_file: writer.key
  time_zone: Nowhere/Else
sources:
  - name: shop
    postgres: postgres://backup@db1:5432/shop
    password: x
    schedule: "30 25 * * *"
    retention: {keep_daily: -2}
  - name: shop
    schedule: "@daily"
daemon:
  retries: -1
`, []string{
			`4:14: repository.time_zone: "Nowhere/Else" is not a known time zone`,
			`8:5: sources[0].password: secrets are not written in coffer.yaml`,
			`9:15: sources[0].schedule: "30 25 * * *" is not a cron schedule`,
			`10:29: sources[0].retention.keep_daily: -2 is negative`,
			`11:5: sources[1]: give one of postgres`,
			`11:11: sources[1].name: "shop" is the name of an earlier source too`,
			`14:12: daemon.retries: -1 is negative: give 0 or more`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("coffer.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("no error; config %+v", c)
			}
			if c != nil {
				t.Errorf("a config came with the error")
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows the secret: %v", err)
			}
			got := errorList(t, err)
			if tt.name == "syntax error" {
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if tt.name != "every error at once" && len(tt.want) == 2 {
				// The second string is a further part of the one message.
				if len(got) != 1 || !strings.Contains(got[0].Error(), tt.want[1]) {
					t.Errorf("got %v, want one error containing %q", err, tt.want[1])
				}
				tt.want = tt.want[:1]
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(got), len(tt.want), err)
			}
			for i, w := range tt.want {
				if s := got[i].Error(); !strings.HasPrefix(s, "coffer.yaml:"+w) {
					t.Errorf("error %d:\n got %s\nwant coffer.yaml:%s…", i, s, w)
				}
			}
		})
	}
}

func TestExampleLoads(t *testing.T) {
	c, err := Parse("/etc/coffer/coffer.yaml", []byte(Example()))
	if err != nil {
		t.Fatalf("the example does not load:\n%v", err)
	}
	if len(c.Sources) != 4 || len(c.Checks) != 2 || len(c.Drills) != 3 {
		t.Errorf("got %d sources, %d checks, %d drills", len(c.Sources), len(c.Checks), len(c.Drills))
	}
	if c.Repository.Location.String() != "Europe/Berlin" {
		t.Errorf("location %v", c.Repository.Location)
	}
	shop := c.Source("shop")
	if e, target := shop.Engine(); e != "postgres" || target != "postgres://backup@db1:5432/shop" {
		t.Errorf("shop engine %s %s", e, target)
	}
	p := shop.Retention.Policy()
	if p.Daily != 14 || p.Within != 30*24*time.Hour || !reflect.DeepEqual(p.Tags, []string{"keep"}) || p.Validate() != nil {
		t.Errorf("shop policy %+v", p)
	}
	if c.Checks[0].Subset != 0.1 || !c.Checks[0].ReadData {
		t.Errorf("check 0: %+v", c.Checks[0])
	}
	if c.Daemon.Jitter != 5*time.Minute || c.Daemon.RetryBase != time.Minute {
		t.Errorf("daemon %+v", c.Daemon)
	}
	if !Notifies(c.Notifications.Command.On, OnSuccess) || Notifies(c.Notifications.Webhook.On, OnSuccess) {
		t.Errorf("notifications %+v", c.Notifications)
	}
}

// schemaKeys lists the key paths of t's fields, with [] for list items.
func schemaKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name := yamlName(f)
		if name == "" {
			continue
		}
		path := join(prefix, name)
		keys = append(keys, path)
		ft := f.Type
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
			keys = append(keys, schemaKeys(ft.Elem(), path+"[]")...)
		} else if ft.Kind() == reflect.Struct && ft != durationType {
			keys = append(keys, schemaKeys(ft, path)...)
		}
	}
	return keys
}

// exampleKeys maps each key path in the example to whether it has a
// comment. The items of a list share their paths ("sources[].schedule"), so
// a key is documented once, at any of its uses.
func exampleKeys(n *yaml.Node, prefix string, out map[string]bool) {
	switch n.Kind {
	case yaml.DocumentNode:
		exampleKeys(n.Content[0], prefix, out)
	case yaml.SequenceNode:
		for _, item := range n.Content {
			exampleKeys(item, prefix+"[]", out)
			// A comment above "- key: value" belongs to the item; it
			// documents the item's first key.
			if item.Kind == yaml.MappingNode && item.HeadComment != "" && len(item.Content) > 0 {
				out[join(prefix+"[]", item.Content[0].Value)] = true
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			path := join(prefix, k.Value)
			out[path] = out[path] || k.HeadComment != "" || k.LineComment != "" || v.LineComment != ""
			exampleKeys(v, path, out)
		}
	}
}

// TestExampleDocumentsEveryKey keeps the example and the schema together:
// every key the schema accepts is in the example with a comment (or, for
// the other form of a secret, as a commented-out line), and the example
// has no key the schema lacks (that is TestExampleLoads).
func TestExampleDocumentsEveryKey(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(Example()), &doc); err != nil {
		t.Fatal(err)
	}
	commented := map[string]bool{}
	exampleKeys(&doc, "", commented)
	for _, key := range schemaKeys(reflect.TypeFor[Config](), "") {
		has, ok := commented[key]
		if ok && has {
			continue
		}
		if ok {
			t.Errorf("%s is in the example without a comment saying what it does", key)
			continue
		}
		name := key[strings.LastIndexAny(key, ".]")+1:]
		if !regexp.MustCompile(`(?m)^\s*# ` + regexp.QuoteMeta(name) + `: \S.*# \S`).MatchString(Example()) {
			t.Errorf("%s is not in the example: add it, with a comment saying what it does", key)
		}
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse("coffer.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if c.Repository.TimeZone != "Local" || c.Repository.Location != time.Local {
		t.Errorf("time zone %q %v, want Local", c.Repository.TimeZone, c.Repository.Location)
	}
	want := Daemon{LogFormat: "text", Retries: 3, RetryBase: time.Minute}
	if c.Daemon != want {
		t.Errorf("daemon %+v, want %+v", c.Daemon, want)
	}
	if c.Sources[0].Retention.IsSet() || c.Prune.Schedule != "" {
		t.Errorf("retention %+v prune %+v", c.Sources[0].Retention, c.Prune)
	}
	// An explicit zero is kept, not replaced by the default.
	c, err = Parse("coffer.yaml", []byte(base+"daemon:\n  retries: 0\n  log_format:\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Daemon.Retries != 0 || c.Daemon.LogFormat != "text" {
		t.Errorf("daemon %+v", c.Daemon)
	}
	// Notifications default to failures only.
	c, err = Parse("coffer.yaml", []byte(base+"notifications:\n  command: {run: page}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Notifications.Command.On, []string{OnFailure}) || c.Notifications.Webhook.On != nil {
		t.Errorf("notifications %+v", c.Notifications)
	}
}

func TestRelativePaths(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "coffer.yaml")
	yml := base + "    password_file: secrets/pg-pass\n  - name: inv\n    sqlite: ../inv.db\n    schedule: \"@daily\"\n"
	if err := os.WriteFile(path, []byte(strings.Replace(yml, "/srv/backup", "repo", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for got, want := range map[string]string{
		c.Repository.URL:           filepath.Join(dir, "repo"),
		c.Repository.WriterKeyFile: filepath.Join(dir, "writer.key"),
		c.Sources[0].PasswordFile:  filepath.Join(dir, "secrets", "pg-pass"),
		c.Sources[1].SQLite:        filepath.Join(filepath.Dir(dir), "inv.db"),
	} {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
	if c.File != path {
		t.Errorf("File %q", c.File)
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v", err)
	}
}

func TestEmptyFile(t *testing.T) {
	_, err := Parse("coffer.yaml", []byte("# nothing yet\n"))
	if err == nil || !strings.Contains(err.Error(), "coffer config example") {
		t.Errorf("got %v", err)
	}
}

func TestAliases(t *testing.T) {
	yml := base + "    retention: &std {keep_daily: 7}\n  - name: crm\n    exec: echo\n    schedule: \"@daily\"\n    retention: *std\n"
	c, err := Parse("coffer.yaml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	if c.Sources[1].Retention.KeepDaily != 7 {
		t.Errorf("alias not followed: %+v", c.Sources[1].Retention)
	}
}

func TestSecrets(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pg-pass"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "empty"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CRM_PW": "from-env", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		name    string
		secret  Secret
		want    string
		wantErr string
	}{
		{"file, trailing newline trimmed", Secret{Key: "k", File: filepath.Join(dir, "pg-pass")}, "s3cret", ""},
		{"environment", Secret{Key: "k", Env: "CRM_PW"}, "from-env", ""},
		{"missing file", Secret{Key: "sources[0].password", File: filepath.Join(dir, "nope")}, "", "sources[0].password: open "},
		{"unset variable", Secret{Key: "k", Env: "NOPE"}, "", "the environment variable NOPE (named by k_env) is not set"},
		{"empty file", Secret{Key: "k", File: filepath.Join(dir, "empty")}, "", "k: file " + filepath.Join(dir, "empty") + " is empty"},
		{"empty variable", Secret{Key: "k", Env: "EMPTY"}, "", "k: environment variable EMPTY is empty"},
		{"not set", Secret{Key: "k"}, "", "k: not set in the config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.secret.Read(lookup)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %q, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
			if s := tt.secret.String(); strings.Contains(s, tt.want) {
				t.Errorf("String %q shows the secret", s)
			}
		})
	}
}

func TestCheckSecrets(t *testing.T) {
	dir := t.TempDir()
	yml := base + "    password_file: pg-pass\n  - name: crm\n    mysql: mysql://b@db2:3306/crm\n    password_env: CRM_PW\n    schedule: \"@daily\"\n"
	path := filepath.Join(dir, "coffer.yaml")
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	none := func(string) (string, bool) { return "", false }
	err = c.CheckSecrets(none)
	// Each error has the file, line and column of the key that names the secret.
	for _, want := range []string{path + ":8:20: sources[0].password: open " + filepath.Join(dir, "pg-pass"), path + ":11:19: sources[1].password: the environment variable CRM_PW (named by sources[1].password_env)", path + ":3:20: repository.writer_key_file: open "} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckSecrets: %v\nwant it to contain %q", err, want)
		}
	}
	for _, f := range []string{"pg-pass", "writer.key"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.CheckSecrets(func(string) (string, bool) { return "pw", true }); err != nil {
		t.Errorf("CheckSecrets: %v", err)
	}
}

// FuzzParse: no input makes Parse panic, and every error it returns is a
// *Error with a key path or a position.
func FuzzParse(f *testing.F) {
	f.Add([]byte(Example()))
	f.Add([]byte(base))
	f.Add([]byte("sources: [{name: a, retention: {keep_daily: x}}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.yaml", data)
		if (c == nil) == (err == nil) {
			t.Fatalf("config %v and error %v", c, err)
		}
	})
}
