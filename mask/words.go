package mask

import (
	"embed"
	"strings"
)

//go:embed words/*.txt
var wordFS embed.FS

// words are the synthetic lists pseudonyms are made from.
var words = struct {
	first, last, streets, text []string
	lowerFirst, lowerLast      []string // in lower case, for e-mails
}{
	first:   wordList("first.txt"),
	last:    wordList("last.txt"),
	streets: wordList("streets.txt"),
	text:    wordList("text.txt"),
}

func init() {
	words.lowerFirst, words.lowerLast = lower(words.first), lower(words.last)
}

func lower(list []string) []string {
	out := make([]string, len(list))
	for i, w := range list {
		out[i] = strings.ToLower(w)
	}
	return out
}

func wordList(name string) []string {
	b, err := wordFS.ReadFile("words/" + name)
	if err != nil {
		panic("mask: embedded word list " + name + ": " + err.Error())
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// FakeNames are the first and last names pseudonyms are made of, for tests
// that must tell a pseudonym from an original.
func FakeNames() (first, last []string) {
	return append([]string(nil), words.first...), append([]string(nil), words.last...)
}
