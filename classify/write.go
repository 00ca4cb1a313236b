package classify

import (
	"fmt"
	"io"
	"strings"
)

// WriteRules writes proposals as a rules file: default: fail, one rule per
// column with the reason as a comment, and a canaries section to fill in.
func WriteRules(w io.Writer, snapshot string, ps []Proposal) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Masking rules proposed by `coffer classify` for snapshot %s.\n", snapshot)
	b.WriteString("# Review every rule: the proposals come from column names and sampled values.\n")
	b.WriteString("# default: fail refuses a snapshot with a column this file does not name.\n")
	b.WriteString("version: 1\ndefault: fail\n")
	b.WriteString("# canaries:\n#   table: public.customers\n#   domain: canary.example.net   # a domain whose mail you read\n#   phone_prefix: \"+1-555-0199\"  # a number range you watch\n")
	b.WriteString("tables:\n")
	table := ""
	for _, p := range ps {
		if p.Table != table {
			table = p.Table
			fmt.Fprintf(&b, "  %s:\n", yamlKey(table))
		}
		comment := p.Reason
		if p.Share > 0 {
			comment += fmt.Sprintf(" (%.0f%% of sampled values)", 100*p.Share)
		}
		fmt.Fprintf(&b, "    %s: %s  # %s: %s\n", yamlKey(p.Name), p.Rule, p.Class, oneLine(comment))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// yamlKey quotes a name unless it is plain: names come from the snapshot.
func yamlKey(s string) string {
	plain := s != ""
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			plain = false
		}
	}
	if plain {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteRune(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, "\\x%02x", c)
		default:
			b.WriteRune(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
