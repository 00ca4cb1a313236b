package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/coffer-backup/coffer/engine/pgaddr"
)

// validator checks the values of a decoded config, pointing each error at
// the key it is about (or, for a missing key, at the nearest enclosing key
// that is there).
type validator struct {
	*decoder
	c          *Config
	decodeErrs int // the first decodeErrs of errs are the decoder's
}

// reported reports whether decoding already reported an error about path, a key
// inside it, or a key enclosing it: checks of values skip those, which
// would only repeat the problem (a missing value that was misspelt).
func (v *validator) reported(path string) bool {
	for _, e := range v.errs[:v.decodeErrs] {
		if related(e.Key, path) {
			return true
		}
	}
	return false
}

// at reports a problem with the key at path.
func (v *validator) at(path, format string, args ...any) {
	if v.reported(path) {
		return
	}
	p, ok := v.pos[path]
	for q := path; !ok && q != ""; {
		q = parent(q)
		p, ok = v.pos[q]
	}
	v.errs = append(v.errs, &Error{File: v.file, Line: p.line, Column: p.col, Key: path, Msg: fmt.Sprintf(format, args...)})
}

// parent strips the last element of a key path: a.b[1].c → a.b[1] → a.b.
func parent(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

func (v *validator) has(path string) bool { _, ok := v.pos[path]; return ok }

func (v *validator) validate() {
	v.repository()
	names := map[string]bool{}
	for i := range v.c.Sources {
		s := &v.c.Sources[i]
		s.path = fmt.Sprintf("sources[%d]", i)
		v.source(s, names)
	}
	for i := range v.c.Checks {
		v.check(&v.c.Checks[i], fmt.Sprintf("checks[%d]", i))
	}
	if v.has("prune.schedule") || v.has("prune") {
		v.schedule("prune.schedule", v.c.Prune.Schedule)
	}
	for i := range v.c.Drills {
		d := &v.c.Drills[i]
		d.path = fmt.Sprintf("drills[%d]", i)
		v.drill(d)
	}
	for i := range v.c.Copies {
		cp := &v.c.Copies[i]
		cp.path = fmt.Sprintf("copies[%d]", i)
		v.copy(cp)
	}
	v.notifications()
	v.daemon()
}

func (v *validator) repository() {
	r := &v.c.Repository
	v.location("repository.url", r.URL, "repository.s3_endpoint", r.S3Endpoint)
	v.secret("repository.access_key_id", r.AccessKeyIDFile, r.AccessKeyIDEnv)
	v.secret("repository.secret_access_key", r.SecretAccessKeyFile, r.SecretAccessKeyEnv)
	v.secret("repository.identity_passphrase", r.IdentityPassphraseFile, r.IdentityPassphraseEnv)
	if r.AccessKeyID().IsSet() != r.SecretAccessKey().IsSet() {
		v.at("repository", "give both access_key_id_(file|env) and secret_access_key_(file|env), or neither")
	}
	if r.IdentityPassphrase().IsSet() && r.IdentityFile == "" {
		v.at("repository.identity_passphrase_file", "goes with identity_file")
	}
	if len(v.c.Sources) > 0 && r.WriterKeyFile == "" && r.IdentityFile == "" {
		v.at("repository", "backups need a key: give writer_key_file (or identity_file)")
	}
	if fp := r.WriterFingerprint; fp != "" {
		h := strings.ReplaceAll(fp, "-", "")
		if _, err := strconv.ParseUint(h[:min(len(h), 16)], 16, 64); err != nil || len(h) != 32 {
			v.at("repository.writer_fingerprint", "%q is not a fingerprint: give the 32 hex digits coffer init printed", fp)
		}
	}
	loc, err := time.LoadLocation(r.TimeZone)
	if err != nil {
		v.at("repository.time_zone", "%q is not a known time zone: use an IANA name such as Europe/Berlin, or UTC or Local", r.TimeZone)
	}
	r.Location = loc
}

// secret checks that a secret is given in at most one form.
func (v *validator) secret(key, file, env string) {
	if file != "" && env != "" {
		v.at(key+"_env", "%s_file is given too: give the secret in a file or in the environment, not both", key)
	}
}

func (v *validator) source(s *Source, names map[string]bool) {
	p := s.path
	switch {
	case s.Name == "":
		v.at(p+".name", "missing: name the source, e.g. customers-db; snapshots are filed under it")
	case strings.TrimSpace(s.Name) != s.Name || strings.ContainsAny(s.Name, "\n\t"):
		v.at(p+".name", "%q has spaces around it or a control character: remove them", s.Name)
	case names[s.Name]:
		v.at(p+".name", "%q is the name of an earlier source too: give each source its own name", s.Name)
	}
	names[s.Name] = true

	var given []string
	for i, t := range s.targets() {
		if t != "" {
			given = append(given, Engines[i])
		}
	}
	switch {
	case len(given) == 0:
		v.at(p, "give one of postgres (URL), mysql (URL), sqlite (path) or exec (command): what to back up")
	case len(given) > 1:
		v.at(p+"."+given[1], "%s is given too: a source has exactly one of postgres, mysql, sqlite or exec; make another source for this one", given[0])
	}
	engine, target := s.Engine()
	if engine == "postgres" || engine == "mysql" {
		v.databaseURL(p+"."+engine, target, engine, p+".password")
	}
	if s.AllDatabases && engine != "postgres" && engine != "mysql" {
		v.at(p+".all_databases", "goes with postgres or mysql")
	}
	if s.Physical && (engine != "postgres" || s.AllDatabases) {
		v.at(p+".physical", "goes with postgres (a physical base backup is of the whole server: no all_databases)")
	}
	v.secret(p+".password", s.PasswordFile, s.PasswordEnv)
	if s.Password().IsSet() && engine != "postgres" && engine != "mysql" && len(given) > 0 {
		key := p + ".password_file"
		if s.PasswordFile == "" {
			key = p + ".password_env"
		}
		v.at(key, "goes with postgres or mysql: an %s source has no password here", engine)
	}
	for i, t := range s.Tags {
		if strings.TrimSpace(t) == "" {
			v.at(fmt.Sprintf("%s.tags[%d]", p, i), "empty tag: give a word, or remove it")
		}
	}
	v.schedule(p+".schedule", s.Schedule)
	if v.has(p + ".retention") {
		v.retention(p+".retention", s.Retention)
	}
}

// databaseURL checks a server address, which must not hold the password:
// for postgres any form libpq takes (a URL, conninfo or a database name),
// for mysql a mysql:// URL.
func (v *validator) databaseURL(key, raw, engine, passwordKey string) {
	if engine == "postgres" {
		if _, err := pgaddr.Parse(raw, os.Getenv); err != nil {
			msg := err.Error()
			if strings.Contains(msg, "holds a password") {
				msg = fmt.Sprintf("the address holds a password: remove it and put it in a file (%s_file) or the environment (%s_env)", lastKey(passwordKey), lastKey(passwordKey))
			}
			v.at(key, "%s", msg)
		}
		return
	}
	u, err := url.Parse(raw)
	schemes := map[string][]string{"postgres": {"postgres", "postgresql"}, "mysql": {"mysql", "mariadb"}}[engine]
	if err != nil || (u.Host == "" && u.Query().Get("socket") == "") || (u.Scheme != schemes[0] && u.Scheme != schemes[1]) {
		v.at(key, "%q: give a URL such as %s://USER@HOST:PORT/DATABASE", redactURL(raw), engine)
		return
	}
	if _, ok := u.User.Password(); ok {
		v.at(key, "the URL holds a password: remove it and put it in a file (%s_file) or the environment (%s_env)",
			lastKey(passwordKey), lastKey(passwordKey))
	}
}

func lastKey(path string) string { return path[strings.LastIndex(path, ".")+1:] }

// redactURL hides a password in a URL that is quoted in an error.
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return u.Redacted()
		}
	}
	return raw
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func (v *validator) schedule(key, spec string) {
	switch {
	case spec == "":
		v.at(key, `missing: give a cron schedule such as "30 2 * * *" (02:30 every day, in repository.time_zone)`)
		return
	case strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ="):
		v.at(key, "%q: schedules run in repository.time_zone; remove the TZ= prefix", spec)
		return
	}
	if _, err := cronParser.Parse(spec); err != nil {
		v.at(key, "%q is not a cron schedule (%v): write minute hour day-of-month month day-of-week, e.g. \"30 2 * * *\", or @daily", spec, err)
	}
}

func (v *validator) retention(key string, r Retention) {
	counts := []struct {
		name string
		n    int
	}{
		{"keep_last", r.KeepLast}, {"keep_hourly", r.KeepHourly}, {"keep_daily", r.KeepDaily},
		{"keep_weekly", r.KeepWeekly}, {"keep_monthly", r.KeepMonthly}, {"keep_yearly", r.KeepYearly},
	}
	for _, c := range counts {
		if c.n < -1 {
			v.at(key+"."+c.name, "%d is negative: give 0 or more (or -1 to keep every one)", c.n)
		}
	}
	for i, t := range r.KeepTags {
		if strings.TrimSpace(t) == "" {
			v.at(fmt.Sprintf("%s.keep_tags[%d]", key, i), "empty tag: give a word, or remove it")
		}
	}
	if !r.IsSet() {
		v.at(key, "no rule: give at least one keep_* rule, or remove retention to keep every snapshot")
	}
}

func (v *validator) check(c *Check, p string) {
	v.schedule(p+".schedule", c.Schedule)
	if c.ReadDataSubset != "" {
		f, err := parseSubset(c.ReadDataSubset)
		if err != nil {
			v.at(p+".read_data_subset", "%q: give a percentage such as 10%% (more than 0, at most 100)", c.ReadDataSubset)
		}
		c.Subset, c.ReadData = f, true
	}
	if c.ReadData && v.c.Repository.IdentityFile == "" {
		key := p + ".read_data"
		if !v.has(key) {
			key = p + ".read_data_subset"
		}
		v.at(key, "reading the data needs an operator identity: set repository.identity_file")
	}
}

// parseSubset reads "10%" or "0.1" as a fraction in (0, 1].
func parseSubset(s string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err == nil && strings.HasSuffix(s, "%") {
		f /= 100
	}
	if err != nil || !(f > 0 && f <= 1) {
		return 0, fmt.Errorf("bad subset %q", s)
	}
	return f, nil
}

func (v *validator) drill(d *Drill) {
	p := d.path
	if len(d.Sources) == 0 {
		v.at(p+".sources", "missing: list the sources to drill, e.g. [shop]")
	}
	engines := map[string]string{} // engine -> a source of it
	seen := map[string]bool{}
	for i, name := range d.Sources {
		key := fmt.Sprintf("%s.sources[%d]", p, i)
		s := v.c.Source(name)
		switch {
		case seen[name]:
			v.at(key, "%q is listed twice", name)
		case s == nil:
			v.at(key, "%q is not a source in this file: give the name of one of the sources", name)
		default:
			engine, _ := s.Engine()
			if engine == "exec" {
				v.at(key, "%q is an exec source: drills restore postgres, mysql and sqlite sources only", name)
			} else if engine != "" {
				engines[engine] = name
			}
		}
		seen[name] = true
	}
	v.schedule(p+".schedule", d.Schedule)
	if v.c.Repository.IdentityFile == "" {
		v.at(p, "drills restore, which needs an operator identity: set repository.identity_file")
	}
	if d.Sample < 0 {
		v.at(p+".sample", "%d is negative: give 0 or more older snapshots to drill besides the latest", d.Sample)
	}
	v.secret(p+".scratch_password", d.ScratchPasswordFile, d.ScratchPasswordEnv)
	switch {
	case d.Scratch != "" && d.Ephemeral:
		v.at(p+".ephemeral", "scratch is given too: give a scratch server or ephemeral: true, not both")
	case d.Scratch != "":
		scheme, _, _ := strings.Cut(d.Scratch, "://")
		engine := map[string]string{"postgres": "postgres", "postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}[scheme]
		if engine == "" {
			v.at(p+".scratch", "%q: give a server URL such as postgres://USER@HOST:5432/ or mysql://USER@HOST:3306/", redactURL(d.Scratch))
			break
		}
		v.databaseURL(p+".scratch", d.Scratch, engine, p+".scratch_password")
		for e, name := range engines {
			if e != engine && e != "sqlite" {
				v.at(p+".scratch", "is a %s server but %q is a %s source: drill it in another drill with a %s scratch", engine, name, e, e)
			}
		}
	case d.Ephemeral:
		if name, ok := engines["mysql"]; ok {
			v.at(p+".ephemeral", "ephemeral servers are PostgreSQL, but %q is a mysql source: give it a scratch server", name)
		}
	default:
		for _, e := range []string{"postgres", "mysql"} {
			if name, ok := engines[e]; ok {
				v.at(p, "%q is a %s source: give scratch (a server for the scratch database) or ephemeral: true", name, e)
				break
			}
		}
	}
	if d.ScratchPassword().IsSet() && d.Scratch == "" {
		v.at(p+".scratch_password_file", "goes with scratch")
	}
}

func (v *validator) notifications() {
	n := &v.c.Notifications
	if v.has("notifications.webhook") {
		if u, err := url.Parse(n.Webhook.URL); n.Webhook.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.at("notifications.webhook.url", "%q: give the http:// or https:// URL to POST to", n.Webhook.URL)
		}
		n.Webhook.On = v.on("notifications.webhook.on", n.Webhook.On)
	}
	if v.has("notifications.command") {
		if strings.TrimSpace(n.Command.Run) == "" {
			v.at("notifications.command.run", "missing: give the command to run")
		}
		n.Command.On = v.on("notifications.command.on", n.Command.On)
	}
}

// on checks an on list and returns it, or the default [failure].
func (v *validator) on(key string, on []string) []string {
	if len(on) == 0 {
		return []string{OnFailure}
	}
	for i, o := range on {
		if o != OnFailure && o != OnSuccess {
			v.at(fmt.Sprintf("%s[%d]", key, i), "%q: give failure or success", o)
		}
	}
	return on
}

func (v *validator) daemon() {
	dm := &v.c.Daemon
	if dm.MetricsAddr != "" {
		_, port, err := net.SplitHostPort(dm.MetricsAddr)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
			v.at("daemon.metrics_addr", "%q: give HOST:PORT, e.g. 127.0.0.1:9464 (or :9464 for every interface)", dm.MetricsAddr)
		}
	}
	if dm.LogFormat != LogText && dm.LogFormat != LogJSON {
		v.at("daemon.log_format", "%q: give text or json", dm.LogFormat)
	}
	if dm.Retries < 0 {
		v.at("daemon.retries", "%d is negative: give 0 or more", dm.Retries)
	}
	if dm.Retries > 0 && dm.RetryBase <= 0 {
		v.at("daemon.retry_base", "give a wait before the first retry, such as 1m")
	}
}

// location checks a repository address (key) and the S3 endpoint that
// goes with it (endpointKey).
func (v *validator) location(key, addr, endpointKey, endpoint string) {
	switch {
	case addr == "":
		v.at(key, "missing: give the repository, a path or s3://BUCKET/PREFIX")
	case strings.HasPrefix(addr, "s3://"):
		if u, err := url.Parse(addr); err != nil || u.Host == "" || u.User != nil {
			v.at(key, "%q: write s3://BUCKET/PREFIX, with the credentials in access_key_id_file and secret_access_key_file (or _env)", addr)
		}
	case strings.HasPrefix(addr, "file://"):
	case strings.Contains(addr, "://"):
		v.at(key, "%q: give a path, file:///PATH or s3://BUCKET/PREFIX", addr)
	}
	if endpoint != "" {
		if !strings.HasPrefix(addr, "s3://") {
			v.at(endpointKey, "goes with an s3:// repository url")
		}
		if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			v.at(endpointKey, "%q: give the server's address as http://HOST:PORT or https://HOST", endpoint)
		}
	}
}

// copy checks one entry of copies.
func (v *validator) copy(c *Copy) {
	p := c.path
	v.location(p+".to", c.To, p+".s3_endpoint", c.S3Endpoint)
	if c.To != "" && (c.To == v.c.Repository.URL) {
		v.at(p+".to", "%q is the repository itself: give a second repository", c.To)
	}
	v.schedule(p+".schedule", c.Schedule)
	v.secret(p+".access_key_id", c.AccessKeyIDFile, c.AccessKeyIDEnv)
	v.secret(p+".secret_access_key", c.SecretAccessKeyFile, c.SecretAccessKeyEnv)
	if c.AccessKeyID().IsSet() != c.SecretAccessKey().IsSet() {
		v.at(p, "give both access_key_id_(file|env) and secret_access_key_(file|env), or neither")
	}
	for i, s := range c.Sources {
		if s == "" {
			v.at(fmt.Sprintf("%s.sources[%d]", p, i), "empty: name a source whose snapshots to copy")
		}
	}
}
