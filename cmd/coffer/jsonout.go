package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/internal/termsafe"
)

// jsonVersion is the version of coffer's JSON vocabulary (docs/json.md).
// Every object a command prints at the top level, and every element of a
// top-level list, carries it as "json_version", its first key.
const jsonVersion = 1

// printJSON prints v as indented JSON, with "json_version" first in the
// top-level object or in each object of a top-level list.
func printJSON(w io.Writer, v any) error {
	b, err := versioned(v)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}

// printJSONLine prints v as one line of JSON (an event of a stream), with
// "json_version" first.
func printJSONLine(w io.Writer, v any) error {
	b, err := versioned(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// versioned encodes v with its json_version, and with every rune a
// terminal would interpret escaped (termsafe.JSON): names from snapshots
// may hold them, and JSON is read on terminals too.
func versioned(v any) ([]byte, error) {
	b, err := versionedRaw(v)
	return termsafe.JSON(b), err
}

func versionedRaw(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	switch {
	case len(b) > 0 && b[0] == '{':
		return withVersion(b), nil
	case len(b) > 0 && b[0] == '[':
		var items []json.RawMessage
		if err := json.Unmarshal(b, &items); err != nil {
			return nil, err
		}
		for i, it := range items {
			if len(it) > 0 && it[0] == '{' {
				items[i] = withVersion(it)
			}
		}
		if items == nil {
			items = []json.RawMessage{}
		}
		return json.Marshal(items)
	}
	return nil, fmt.Errorf("internal error: JSON output %T is neither an object nor a list", v)
}

// withVersion puts "json_version" first into the encoded object b.
func withVersion(b []byte) []byte {
	head := fmt.Sprintf(`{"json_version":%d`, jsonVersion)
	if bytes.Equal(bytes.TrimSpace(b), []byte("{}")) {
		return []byte(head + "}")
	}
	return append([]byte(head+","), b[1:]...)
}

// errorJSON is an error as JSON mode prints it, on standard error.
type errorJSON struct {
	Error  string `json:"error"`
	Object string `json:"object"` // what the error is about: a file, an object, a flag; "" when it names none
	Remedy string `json:"remedy"` // what to do; "" when the error says no more
}

// objectError and remedyError are errors that say what they are about and
// what to do, as fields rather than words of their message.
type objectError interface{ ErrorObject() string }
type remedyError interface{ ErrorRemedy() string }

// describe builds the JSON form of err from the first error in its tree
// that names an object and the first that gives a remedy.
func describe(msg string, err error) errorJSON {
	e := errorJSON{Error: msg}
	walkErrors(err, func(x error) {
		if oe, ok := x.(objectError); ok && e.Object == "" {
			e.Object = oe.ErrorObject()
		}
		if re, ok := x.(remedyError); ok && e.Remedy == "" {
			e.Remedy = re.ErrorRemedy()
		}
	})
	return e
}

// walkErrors calls fn on err and every error it wraps, depth first.
func walkErrors(err error, fn func(error)) {
	if err == nil {
		return
	}
	fn(err)
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		walkErrors(u.Unwrap(), fn)
	case interface{ Unwrap() []error }:
		for _, x := range u.Unwrap() {
			walkErrors(x, fn)
		}
	}
}

// userError is an error of coffer's own making that names its object and
// its remedy; Error() is the sentence the terminal shows.
type userError struct {
	msg, object, remedy string
	err                 error // the cause, if any
}

func (e *userError) Unwrap() error { return e.err }

func (e *userError) Error() string {
	if e.remedy == "" {
		return e.msg
	}
	return e.msg + ": " + e.remedy
}
func (e *userError) ErrorObject() string { return e.object }
func (e *userError) ErrorRemedy() string { return e.remedy }

// failf is a userError about object, with a remedy.
func failf(object, remedy, format string, args ...any) error {
	return &userError{msg: fmt.Sprintf(format, args...), object: object, remedy: remedy}
}

// noJSON marks a command that cannot print JSON: with --json it is
// refused, saying why, before it runs.
func noJSON(cmd *cobra.Command, why string) *cobra.Command {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations["no-json"] = why
	return cmd
}

// refuseJSON is the root's check of noJSON commands.
func refuseJSON(g *globals) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		if !g.json {
			return nil
		}
		for c := cmd; c != nil; c = c.Parent() {
			if why, ok := c.Annotations["no-json"]; ok {
				name := strings.TrimPrefix(cmd.CommandPath(), "coffer ")
				return failf("--json", "run it without --json", "coffer %s prints no JSON (%s)", name, why)
			}
		}
		return nil
	}
}
