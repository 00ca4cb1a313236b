package termsafe

import (
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "customers", "customers"},
		{"unicode", "Müller 東京 Zoë O'Brien 🎉", "Müller 東京 Zoë O'Brien 🎉"},
		{"osc title", "t\x1b]0;pwned\x07\x1b[2J", `t\x1b]0;pwned\x07\x1b[2J`},
		{"c1 csi", "a\u009b2Jb", `a\u009b2Jb`},
		{"bidi override", "invoice\u202egpj.exe", `invoice\u202egpj.exe`},
		{"bidi isolates", "\u2066x\u2069", `\u2066x\u2069`},
		{"marks", "a\u200fb", `a\u200fb`},
		{"newline and tab", "a\nb\tc\r", `a\x0ab\x09c\x0d`},
		{"del", "a\x7f", `a\x7f`},
		{"not utf-8", "a\xffb\xc3", `a\xffb\xc3`},
		{"line separator", "a\u2028b", `a\u2028b`},
		{"bom", "\ufeffx", `\ufeffx`},
		{"private use", "\U000f0000", `\U000f0000`},
		{"nbsp kept", "a\u00a0b", "a\u00a0b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := String(tc.in)
			if got != tc.want {
				t.Fatalf("String(%q) = %q, want %q", tc.in, got, tc.want)
			}
			for _, r := range got {
				if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || bidi(r) {
					t.Fatalf("String(%q) still holds %U", tc.in, r)
				}
			}
		})
	}
}

func TestLines(t *testing.T) {
	in := "restore into x: failed\nthe old database \x1b[31mshop\x1b[0m is untouched"
	want := "restore into x: failed\nthe old database \\x1b[31mshop\\x1b[0m is untouched"
	if got := Lines(in); got != want {
		t.Fatalf("Lines = %q, want %q", got, want)
	}
	if strings.Contains(String(in), "\n") {
		t.Fatal("String kept a line break")
	}
}

func FuzzString(f *testing.F) {
	f.Add("t\x1b]0;x\x07")
	f.Add("Müller\u202e")
	f.Fuzz(func(t *testing.T, s string) {
		for _, r := range Lines(s) {
			if (r < 0x20 && r != '\n') || r == 0x7f || (r >= 0x80 && r < 0xa0) || bidi(r) {
				t.Fatalf("Lines(%q) holds %U", s, r)
			}
		}
		if String(s) == s && !safe(s, false) {
			t.Fatalf("String(%q) changed nothing but the input is unsafe", s)
		}
	})
}
