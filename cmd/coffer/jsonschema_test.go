package main_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// jsonDoc is docs/json.md as the tests read it: the schema blocks by name
// and the commands that refuse --json.
type jsonDoc struct {
	schemas map[string]any
	refused map[string]bool
}

var (
	schemaBlock  = regexp.MustCompile("(?s)```schema ([^\n]+)\n(.*?)\n[ \t]*```")
	refusedBlock = regexp.MustCompile("(?s)```refused\n(.*?)\n```")
)

func loadJSONDoc(t *testing.T) *jsonDoc {
	t.Helper()
	b, err := os.ReadFile("../../docs/json.md")
	if err != nil {
		t.Fatal(err)
	}
	d, err := parseJSONDoc(b)
	if err != nil {
		t.Fatalf("docs/json.md: %v", err)
	}
	return d
}

func parseJSONDoc(b []byte) (*jsonDoc, error) {
	d := &jsonDoc{schemas: map[string]any{}, refused: map[string]bool{}}
	for _, m := range schemaBlock.FindAllSubmatch(b, -1) {
		name := strings.TrimSpace(string(m[1]))
		var s any
		if err := json.Unmarshal(m[2], &s); err != nil {
			return nil, fmt.Errorf("schema %q: %v", name, err)
		}
		if _, dup := d.schemas[name]; dup {
			return nil, fmt.Errorf("schema %q given twice", name)
		}
		d.schemas[name] = s
	}
	for _, m := range refusedBlock.FindAllSubmatch(b, -1) {
		for _, l := range strings.Split(string(m[1]), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				d.refused[l] = true
			}
		}
	}
	if len(d.schemas) == 0 {
		return nil, errors.New("no schema block")
	}
	return d, nil
}

// decodeAll decodes every JSON value in b, numbers as json.Number.
func decodeAll(b []byte) ([]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out []any
	for {
		var v any
		err := dec.Decode(&v)
		if err == io.EOF {
			break
		}
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, errors.New("no JSON value")
	}
	return out, nil
}

// validate checks a command's top-level value v against schema name: its
// shape, and json_version 1 in each top-level object.
func (d *jsonDoc) validate(name string, v any) []string {
	s, ok := d.schemas[name]
	if !ok {
		return []string{fmt.Sprintf("docs/json.md has no block `schema %s`", name)}
	}
	errs := d.check("$", v, s)
	tops := []any{v}
	if l, ok := v.([]any); ok {
		tops = l
	}
	for i, o := range tops {
		if m, ok := o.(map[string]any); !ok || m["json_version"] != json.Number("1") {
			errs = append(errs, fmt.Sprintf("top-level object %d has no \"json_version\": 1", i))
		}
	}
	return errs
}

func (d *jsonDoc) check(path string, v, s any) []string {
	switch s := s.(type) {
	case string:
		if ref, ok := strings.CutPrefix(s, "ref:"); ok {
			rs, ok := d.schemas[ref]
			if !ok {
				return []string{fmt.Sprintf("%s: no schema %q to refer to", path, ref)}
			}
			return d.check(path, v, rs)
		}
		for _, alt := range strings.Split(s, "|") {
			if leafOK(alt, v) {
				return nil
			}
		}
		return []string{fmt.Sprintf("%s: %s, want %s", path, short(v), s)}
	case []any:
		l, ok := v.([]any)
		if !ok || len(s) != 1 {
			return []string{fmt.Sprintf("%s: %s, want a list", path, short(v))}
		}
		var errs []string
		for i, x := range l {
			errs = append(errs, d.check(fmt.Sprintf("%s[%d]", path, i), x, s[0])...)
		}
		return errs
	case map[string]any:
		m, ok := v.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %s, want an object", path, short(v))}
		}
		return d.checkObject(path, m, s)
	}
	return []string{fmt.Sprintf("%s: the schema %v is neither a type, a list nor an object", path, s)}
}

func (d *jsonDoc) checkObject(path string, m, s map[string]any) []string {
	var errs []string
	known := map[string]bool{}
	for k, ks := range s {
		name, optional := strings.CutSuffix(k, "?")
		known[name] = true
		if name == "*" {
			continue
		}
		x, present := m[name]
		switch {
		case !present && !optional:
			errs = append(errs, fmt.Sprintf("%s: no key %q", path, name))
		case present:
			errs = append(errs, d.check(path+"."+name, x, ks)...)
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch {
		case known[k]:
		case s["*"] != nil:
			errs = append(errs, d.check(path+"."+k, m[k], s["*"])...)
		default:
			errs = append(errs, fmt.Sprintf("%s: key %q is not in docs/json.md", path, k))
		}
	}
	return errs
}

func leafOK(typ string, v any) bool {
	switch typ {
	case "any":
		return true
	case "string":
		_, ok := v.(string)
		return ok
	case "time":
		s, ok := v.(string)
		if !ok {
			return false
		}
		_, err := time.Parse(time.RFC3339Nano, s)
		return err == nil
	case "bool":
		_, ok := v.(bool)
		return ok
	case "number":
		_, ok := v.(json.Number)
		return ok
	case "int":
		n, ok := v.(json.Number)
		return ok && !strings.ContainsAny(string(n), ".eE")
	}
	return false
}

func short(v any) string {
	if v == nil {
		return "null"
	}
	b, _ := json.Marshal(v)
	if len(b) > 80 {
		b = append(b[:80], "…"...)
	}
	return fmt.Sprintf("%T %s", v, b)
}

// TestJSONSchemaValidator shows that the validator TestJSONEveryCommand
// relies on refuses what docs/json.md does not allow.
func TestJSONSchemaValidator(t *testing.T) {
	doc, err := parseJSONDoc([]byte("```schema x\n" +
		`{"json_version": "int", "n": "int", "f": "number", "t": "time", "l": ["string"], "o?": {"b": "bool"}, "r": "ref:y", "d": {"*": "int|string"}}` +
		"\n```\n```schema y\n{\"s\": \"string\"}\n```\n```refused\ndaemon\n```\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !doc.refused["daemon"] {
		t.Fatal("the refused block was not read")
	}
	good := `{"json_version": 1, "n": 3, "f": 1.5, "t": "2026-12-02T12:00:00Z", "l": [], "r": {"s": "x"}, "d": {"a": 1, "b": "c"}}`
	for _, tc := range []struct {
		name, doc string
		ok        bool
	}{
		{"as documented", good, true},
		{"optional object present", strings.Replace(good, `"l": []`, `"l": [], "o": {"b": true}`, 1), true},
		{"a number as a string", strings.Replace(good, `"n": 3`, `"n": "3"`, 1), false},
		{"a float for an int", strings.Replace(good, `"n": 3`, `"n": 3.5`, 1), false},
		{"no json_version", strings.Replace(good, `"json_version": 1, `, ``, 1), false},
		{"json_version 2", strings.Replace(good, `"json_version": 1`, `"json_version": 2`, 1), false},
		{"an undocumented key", strings.Replace(good, `"n": 3`, `"n": 3, "size": 9`, 1), false},
		{"a missing key", strings.Replace(good, `"f": 1.5, `, ``, 1), false},
		{"not a time", strings.Replace(good, `2026-12-02T12:00:00Z`, `2.236s`, 1), false},
		{"null for a list", strings.Replace(good, `"l": []`, `"l": null`, 1), false},
		{"a bool in the map", strings.Replace(good, `"a": 1`, `"a": true`, 1), false},
		{"a ref's key missing", strings.Replace(good, `{"s": "x"}`, `{}`, 1), false},
	} {
		vs, err := decodeAll([]byte(tc.doc))
		if err != nil {
			t.Fatal(err)
		}
		errs := doc.validate("x", vs[0])
		if (len(errs) == 0) != tc.ok {
			t.Errorf("%s: errors %v, want ok=%v", tc.name, errs, tc.ok)
		}
	}
}
