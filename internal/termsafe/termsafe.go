// Package termsafe makes text from untrusted places (table, database,
// source, host, tag and part names from snapshots) safe to print on a
// terminal: a name is data, and must not be able to move the cursor, set
// the window title, clear the screen, or reorder what the operator reads.
package termsafe

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// String returns s with every rune a terminal would interpret, rather
// than show, replaced by a visible escape: C0 and C1 control characters
// and DEL (so every ESC sequence loses its ESC) as \xNN or \uNNNN,
// Unicode bidirectional overrides, embeddings, isolates and marks as
// \uNNNN, other non-printable runes (format characters, line and
// paragraph separators, unassigned code points) likewise, and bytes that
// are not UTF-8 as \xNN. Printable text, ordinary spaces and every script
// ("Müller", "東京") are left as they are. Backslashes are not escaped:
// the output is for eyes, not for parsing (use --json for that).
func String(s string) string {
	if safe(s, false) {
		return s
	}
	return escape(s, false)
}

// Lines is String for text of several lines (an error message): line
// breaks are kept, everything else is escaped as String does.
func Lines(s string) string {
	if safe(s, true) {
		return s
	}
	return escape(s, true)
}

// Strings applies String to each element, in a new slice.
func Strings(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = String(s)
	}
	return out
}

func safe(s string, lines bool) bool {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !printable(r, n, lines) {
			return false
		}
		i += n
	}
	return true
}

func escape(s string, lines bool) string {
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case printable(r, n, lines):
			b.WriteString(s[i : i+n])
		case r == utf8.RuneError && n == 1, r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
		i += n
	}
	return b.String()
}

// printable reports whether rune r (n bytes long in the input) can reach
// a terminal as it is.
func printable(r rune, n int, lines bool) bool {
	switch {
	case r == utf8.RuneError && n == 1: // not UTF-8
		return false
	case r == ' ':
		return true
	case r == '\n':
		return lines
	case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0: // C0, DEL, C1
		return false
	case bidi(r):
		return false
	}
	// Letters, marks, numbers, punctuation, symbols and spaces; not
	// format characters (Cf), separators of lines or paragraphs, private
	// use or unassigned code points.
	return unicode.IsGraphic(r)
}

// bidi reports the runes that change the order in which text is shown.
func bidi(r rune) bool {
	switch {
	case r >= 0x202a && r <= 0x202e: // LRE, RLE, PDF, LRO, RLO
		return true
	case r >= 0x2066 && r <= 0x2069: // LRI, RLI, FSI, PDI
		return true
	case r == 0x200e, r == 0x200f, r == 0x061c: // LRM, RLM, ALM
		return true
	}
	return false
}

// JSON returns the encoded JSON b with every rune that String would escape
// written as a JSON escape (\u009b, \u202e): it decodes to the same value,
// and shows nothing a terminal would interpret. Outside its strings, JSON
// holds only printable ASCII and white space, which stay as they are.
func JSON(b []byte) []byte {
	if safe(string(b), true) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		switch {
		case printable(r, n, true), r == '\t', r == '\r':
			out = append(out, b[i:i+n]...)
		case r > 0xffff:
			hi, lo := utf16Pair(r)
			out = fmt.Appendf(out, `\u%04x\u%04x`, hi, lo)
		default:
			out = fmt.Appendf(out, `\u%04x`, r)
		}
		i += n
	}
	return out
}

func utf16Pair(r rune) (rune, rune) {
	r -= 0x10000
	return 0xd800 + (r>>10)&0x3ff, 0xdc00 + r&0x3ff
}
