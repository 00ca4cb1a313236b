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
}{
	first:   wordList("first.txt"),
	last:    wordList("last.txt"),
	streets: wordList("streets.txt"),
	text:    wordList("text.txt"),
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
