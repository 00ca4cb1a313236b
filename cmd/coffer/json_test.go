package main_test

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
)

// commandTree lists every runnable command of the coffer binary, as
// `coffer … --help` shows them ("key add", "audit verify", …): a command
// added to the binary is in it without any change here.
func commandTree(t *testing.T) map[string]bool {
	t.Helper()
	tree := map[string]bool{}
	var walk func(path []string)
	walk = func(path []string) {
		out, err := runTool(cofferBin, append(append([]string{}, path...), "--help")...)
		if err != nil {
			t.Fatalf("coffer %s --help: %v\n%s", strings.Join(path, " "), err, out)
		}
		runnable := false
		for _, l := range section(out, "Usage:") {
			runnable = runnable || !strings.HasSuffix(l, "[command]")
		}
		if runnable && len(path) > 0 {
			tree[strings.Join(path, " ")] = true
		}
		for _, l := range section(out, "Available Commands:") {
			if name := strings.Fields(l); len(name) > 0 {
				walk(append(append([]string{}, path...), name[0]))
			}
		}
	}
	walk(nil)
	return tree
}

// section returns the lines of a help text's section, up to a blank line.
func section(help, title string) []string {
	_, rest, ok := strings.Cut(help, "\n"+title+"\n")
	if !ok {
		return nil
	}
	var out []string
	for _, l := range strings.Split(rest, "\n") {
		if strings.TrimSpace(l) == "" {
			break
		}
		out = append(out, strings.TrimSpace(l))
	}
	return out
}

// commandPath is the command args run: its leading words that name one.
func commandPath(tree map[string]bool, args []string) string {
	path := ""
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			break
		}
		next := strings.TrimSpace(path + " " + a)
		if !tree[next] && !hasPrefixIn(tree, next+" ") {
			break
		}
		path = next
	}
	return path
}

func hasPrefixIn(tree map[string]bool, p string) bool {
	for k := range tree {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// jsonRun runs commands with --json and checks their output against
// docs/json.md, noting which commands it has seen.
type jsonRun struct {
	t       *testing.T
	doc     *jsonDoc
	tree    map[string]bool
	covered map[string]bool
}

type jsonCase struct {
	schema   string    // the block; default: the command's path
	stdin    io.Reader // default: none
	code     int       // the exit status wanted; -1: any
	onStderr bool      // the JSON is on standard error (restore to standard output)
	lines    string    // each value but the last is of this block (drill --events)
}

// run runs coffer with args (which include --json) and returns the JSON
// values it printed, each checked against its schema.
func (j *jsonRun) run(c *cli, jc jsonCase, args ...string) []any {
	j.t.Helper()
	path := commandPath(j.tree, args)
	if jc.schema == "" {
		jc.schema = path
	}
	r := c.run(jc.stdin, args...)
	if jc.code >= 0 && r.code != jc.code {
		j.t.Fatalf("coffer %s: exit %d, want %d\nstdout: %.2000s\nstderr: %.2000s", strings.Join(args, " "), r.code, jc.code, r.stdout, r.stderr)
	}
	out := r.stdout
	if jc.onStderr {
		out = r.stderr
	}
	vs, err := decodeAll([]byte(out))
	if err != nil {
		j.t.Fatalf("coffer %s: its output is not JSON: %v\n%.3000s", strings.Join(args, " "), err, out)
	}
	if jc.lines == "" && len(vs) != 1 {
		j.t.Errorf("coffer %s printed %d JSON values, want 1", strings.Join(args, " "), len(vs))
	}
	for i, v := range vs {
		name := jc.schema
		if jc.lines != "" && i < len(vs)-1 {
			name = jc.lines
		}
		for _, e := range j.doc.validate(name, v) {
			j.t.Errorf("coffer %s: against `schema %s`: %s", strings.Join(args, " "), name, e)
		}
	}
	j.covered[path] = true
	return vs
}

// refused runs a command that refuses --json, and checks its JSON error.
func (j *jsonRun) refused(c *cli, args ...string) {
	j.t.Helper()
	path := commandPath(j.tree, args)
	r := c.run(nil, args...)
	errs := j.errorLine(r, args)
	if !strings.Contains(errs["error"].(string), "prints no JSON") {
		j.t.Errorf("coffer %s: %s, want a refusal", strings.Join(args, " "), errs["error"])
	}
	// A refusal by a group (completion) covers its commands.
	j.covered[path], j.covered[strings.Fields(path)[0]] = true, true
}

// errorLine checks that a failed command printed one JSON error line on
// standard error, and returns it.
func (j *jsonRun) errorLine(r result, args []string) map[string]any {
	j.t.Helper()
	if r.code == 0 || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 || r.stdout != "" {
		j.t.Fatalf("coffer %s: exit %d, stdout %q, stderr %q: want a failure and one line of JSON on standard error", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	vs, err := decodeAll([]byte(r.stderr))
	if err != nil {
		j.t.Fatalf("coffer %s: standard error is not JSON: %v\n%s", strings.Join(args, " "), err, r.stderr)
	}
	for _, e := range j.doc.validate("error", vs[0]) {
		j.t.Errorf("coffer %s: against `schema error`: %s", strings.Join(args, " "), e)
	}
	return vs[0].(map[string]any)
}

func str(v any, key string) string {
	s, _ := v.(map[string]any)[key].(string)
	return s
}

// TestJSONEveryCommand runs every command of the binary with --json against
// real servers and decodes what each prints against docs/json.md; a command
// with no case here, or no schema there, fails it.
func TestJSONEveryCommand(t *testing.T) {
	doc := loadJSONDoc(t)
	j := &jsonRun{t: t, doc: doc, tree: commandTree(t), covered: map[string]bool{}}
	src := createDB(t, "h_json")
	genShop(t, src, 200, 11)
	dir := t.TempDir()
	c := newCLI(t, filepath.Join(dir, "repo"))
	w := c.without("COFFER_IDENTITY_FILE")
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	j.run(c, jsonCase{}, "init", "--json")
	snap := str(j.run(w, jsonCase{}, "backup", "--json", "--source", "shop", "--postgres", pgURL+src)[0], "snapshot")
	notes := str(j.run(w, jsonCase{stdin: strings.NewReader("a note\n")}, "backup", "--json", "--source", "notes", "--stdin")[0], "snapshot")
	j.run(w, jsonCase{}, "snapshots", "--json")
	j.run(c, jsonCase{}, "ls", snap, "--json")
	j.run(c, jsonCase{}, "restore", snap, "--json", "--output", filepath.Join(dir, "shop.pgdump"))
	j.run(c, jsonCase{onStderr: true}, "restore", snap, "--json", "--part", "globals.sql")
	j.run(c, jsonCase{schema: "restore --to"}, "restore", snap, "--json", "--to", pgURL+src+"_copy")
	rules := file("rules.yaml", shopRules)
	j.run(c, jsonCase{schema: "restore --to"}, "restore", snap, "--json", "--to", pgURL+src+"_masked", "--mask", rules, "--canaries", "2", "--for", "json test")
	j.run(c, jsonCase{}, "trace", "nobody@example.com", "--json")
	j.run(c, jsonCase{}, "classify", snap, "--json")
	j.run(w, jsonCase{}, "check", "--json")
	j.run(c, jsonCase{}, "check", "--json", "--read-data")
	j.run(w, jsonCase{}, "stats", "--json")

	state, reports := filepath.Join(dir, "state"), filepath.Join(dir, "reports")
	drill := []string{"drill", "--json", "--source", "shop", "--scratch", pgURL, "--state-dir", state, "--report-dir", reports}
	rep := j.run(c, jsonCase{}, drill...)[0]
	events := j.run(c, jsonCase{lines: "drill --events"}, append(drill, "--events")...)
	kinds := map[string]int{}
	for _, e := range events[:len(events)-1] {
		kinds[str(e, "event")]++
	}
	if kinds["snapshot_start"] != 1 || kinds["snapshot_end"] != 1 || kinds["phase_start"] < 3 || kinds["phase_start"] != kinds["phase_end"] {
		t.Errorf("drill --events: events %v, want one snapshot's start and end and every phase's", kinds)
	}
	j.run(c, jsonCase{schema: "drill --cleanup"}, "drill", "--cleanup", "--json", "--state-dir", state)
	b, err := os.ReadFile(filepath.Join(reports, "drill-"+str(rep, "drill")+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if vs, err := decodeAll(b); err != nil || len(doc.validate("drill", vs[0])) > 0 {
		t.Errorf("the drill's report file: %v %v", err, doc.validate("drill", vs[0]))
	}
	j.run(w, jsonCase{}, "drills", "--json")
	j.run(c, jsonCase{schema: "drills --full"}, "drills", "--full", "--json")

	audit := j.run(w, jsonCase{}, "audit", "--json")[0].([]any)
	j.run(c, jsonCase{}, "audit", "verify", "--json")
	checkAuditDetail(t, audit)
	checkAuditText(t, w.ok(nil, "audit"))
	j.run(w, jsonCase{code: -1}, "status", "--json")

	cfg := file("coffer.yaml", "repository:\n  url: "+filepath.Join(dir, "repo")+"\n  writer_key_file: "+filepath.Join(c.dir, "writer.key")+
		"\n  time_zone: UTC\nsources:\n  - name: notes\n    exec: \"cat /dev/null\"\n    schedule: \"@daily\"\n")
	sched := j.run(w, jsonCase{}, "schedule", "--json", "--config", cfg)[0].([]any)
	checkScheduleFromNow(t, sched)
	// The text's IN column says the same, to the second.
	text := strings.Split(strings.TrimSpace(w.ok(nil, "schedule", "--config", cfg)), "\n")
	in, _ := sched[0].(map[string]any)["in_seconds"].(json.Number).Float64()
	fields := strings.Fields(text[len(text)-1])
	if d, err := time.ParseDuration(fields[len(fields)-1]); err != nil || d.Seconds()-in > 2 || in-d.Seconds() > 2 {
		t.Errorf("schedule: IN column %q, want %.0fs from now", text[len(text)-1], in)
	}
	j.run(w, jsonCase{}, "config", "check", cfg, "--json")
	j.run(w, jsonCase{}, "config", "check", cfg, "--offline", "--json")
	j.run(w, jsonCase{}, "copy", "--json", "--to", filepath.Join(dir, "copy"))
	// undelete needs a versioned bucket: one snapshot, then it is deleted.
	_, _, vc := versionedRepo(t)
	vc.backup(strings.NewReader("night one\n"), "--source", "notes", "--stdin")
	at := moment()
	j.run(vc, jsonCase{}, "undelete", "--as-of", at, "--dry-run", "--json")
	j.run(vc, jsonCase{}, "undelete", "--as-of", at, "--json")
	j.run(w, jsonCase{}, "unlock", "--json")
	j.run(w, jsonCase{}, "forget", notes, "--json")
	j.run(w, jsonCase{}, "forget", "--json", "--keep-last", "1", "--dry-run")
	j.run(w, jsonCase{}, "prune", "--json", "--dry-run")
	j.run(w, jsonCase{}, "prune", "--json")
	j.run(c, jsonCase{code: -1}, "wal-status", "--json", "--postgres", pgURL+"postgres")
	j.run(c, jsonCase{}, "version", "--json")
	j.run(c.with("COFFER_REPO=s3://coffer-json/prefix"), jsonCase{}, "policy", "writer", "--json")

	j.run(w, jsonCase{}, "key", "list", "--json")
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	j.run(c, jsonCase{}, "key", "add", id.Recipient().String(), "--json")
	j.run(c, jsonCase{}, "key", "remove", id.Recipient().String(), "--json")
	j.run(c, jsonCase{}, "key", "trust", "--yes", "--json")
	j.run(c, jsonCase{}, "key", "export-writer", filepath.Join(dir, "exported.key"), "--json")
	newKey := filepath.Join(dir, "rotated.key")
	j.run(c, jsonCase{}, "key", "rotate", "--writer-key-out", newKey, "--json")
	j.run(c.with("COFFER_WRITER_KEY_FILE="+newKey), jsonCase{}, "key", "reencrypt", "--json")

	j.refused(c, "daemon", "--json", "--config", cfg)
	j.refused(c, "demo", "--json")
	j.refused(c, "wal-push", "--json", "pg_wal/000000010000000000000001")
	j.refused(c, "wal-fetch", "--json", "000000010000000000000001", filepath.Join(dir, "wal"))
	j.refused(c, "config", "example", "--json")
	j.refused(c, "help", "--json")
	j.refused(c, "completion", "bash", "--json")

	// An error: what it is about, and what to do, as fields.
	e := j.errorLine(c.without("COFFER_REPO").run(nil, "snapshots", "--json"), []string{"snapshots", "--json"})
	if e["object"] != "COFFER_REPO" || !strings.Contains(e["remedy"].(string), "COFFER_REPO") {
		t.Errorf("no repository: %v, want object COFFER_REPO and a remedy", e)
	}
	e = j.errorLine(w.run(nil, "ls", snap, "--json"), []string{"ls", "--json"})
	if e["object"] != "COFFER_IDENTITY_FILE" || e["remedy"] == "" {
		t.Errorf("ls with the writer key: %v, want object COFFER_IDENTITY_FILE and a remedy", e)
	}

	// A report, then an error naming the damaged pack: check on a pack
	// with a byte flipped.
	packs, _ := filepath.Glob(filepath.Join(dir, "repo", "data", "*", "*"))
	if len(packs) == 0 {
		t.Fatal("no pack in the repository")
	}
	pack, _ := os.ReadFile(packs[0])
	pack[len(pack)/2] ^= 1
	if err := os.WriteFile(packs[0], pack, 0o600); err != nil {
		t.Fatal(err)
	}
	rotated := c.with("COFFER_WRITER_KEY_FILE=" + newKey)
	r := rotated.run(nil, "check", "--read-data", "--json")
	vs, err := decodeAll([]byte(r.stdout))
	if r.code != 1 || err != nil || len(doc.validate("check", vs[0])) > 0 {
		t.Fatalf("check of a damaged pack: exit %d, %v %v\n%s", r.code, err, doc.validate("check", vs[0]), r.stdout)
	}
	r.stdout = ""
	e = j.errorLine(r, []string{"check", "--read-data", "--json"})
	if want := "data/" + filepath.Base(filepath.Dir(packs[0])) + "/" + filepath.Base(packs[0]); e["object"] != want || e["remedy"] == "" {
		t.Errorf("check of a damaged pack: %v, want object %s and a remedy", e, want)
	}

	j.checkCoverage()
}

// checkScheduleFromNow checks that schedule's in_seconds counts from now:
// the time of the next run less in_seconds is this moment, not the start
// of this minute.
func checkScheduleFromNow(t *testing.T, sched []any) {
	t.Helper()
	if len(sched) == 0 {
		t.Fatal("schedule --json lists no job")
	}
	for _, p := range sched {
		at, err := time.Parse(time.RFC3339Nano, str(p, "time"))
		in, _ := p.(map[string]any)["in_seconds"].(json.Number).Float64()
		if off := time.Until(at).Seconds() - in; err != nil || off > 2 || off < -2 {
			t.Errorf("schedule: %v runs at %s, in %.0fs: %.0fs from now", err, at, in, off)
		}
	}
}

// checkAuditText checks the text DETAIL column: key=value pairs in sorted
// order on every line, under the names --json uses.
func checkAuditText(t *testing.T, text string) {
	t.Helper()
	for _, want := range []string{" size_bytes=", " stored_bytes=", " rto_seconds=", " verified=true"} {
		if !strings.Contains(text, want) {
			t.Errorf("audit: no %q in\n%s", want, text)
		}
	}
	for _, l := range strings.Split(text, "\n") {
		var keys []string
		for _, f := range strings.Fields(l) {
			if k, _, ok := strings.Cut(f, "="); ok {
				keys = append(keys, k)
			}
		}
		if !sort.StringsAreSorted(keys) {
			t.Errorf("audit: DETAIL keys out of order: %q", l)
		}
	}
}

// checkAuditDetail checks that the audit log's numbers are numbers.
func checkAuditDetail(t *testing.T, recs []any) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range recs {
		d, _ := r.(map[string]any)["detail"].(map[string]any)
		for k, v := range d {
			_, isNum := v.(json.Number)
			if (strings.HasSuffix(k, "_bytes") || strings.HasSuffix(k, "_seconds")) && !isNum {
				t.Errorf("audit detail %s = %v (%T), want a number", k, v, v)
			}
			if k == "verified" {
				if _, ok := v.(bool); !ok {
					t.Errorf("audit detail verified = %v (%T), want a boolean", v, v)
				}
			}
			seen[k] = true
		}
	}
	for _, k := range []string{"size_bytes", "stored_bytes", "rto_seconds", "verified"} {
		if !seen[k] {
			t.Errorf("no audit record has %q in its detail", k)
		}
	}
}

// checkCoverage fails for every command that ran with no --json case, and
// every command with no schema in docs/json.md.
func (j *jsonRun) checkCoverage() {
	var missing []string
	for path := range j.tree {
		_, documented := j.doc.schemas[path]
		switch {
		case j.doc.refused[path] || j.doc.refused[strings.Fields(path)[0]]:
			if !j.covered[path] && !j.covered[strings.Fields(path)[0]] {
				missing = append(missing, path+" (refused, but never run with --json here)")
			}
		case !documented:
			missing = append(missing, path+" (no `schema "+path+"` block in docs/json.md)")
		case !j.covered[path]:
			missing = append(missing, path+" (no --json case in TestJSONEveryCommand)")
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		j.t.Errorf("coffer %s", m)
	}
	if len(j.tree) < 30 {
		j.t.Errorf("the command tree has %d commands: the walk of --help went wrong: %v", len(j.tree), j.tree)
	}
}
