// Package coffer holds the data embedded in the coffer command: the
// synthetic lists from which `coffer demo` builds its customer database.
// The command itself is in cmd/coffer.
package coffer

import "embed"

// DemoData holds testdata/demo: first and last names, streets, cities and
// products, one per line.
//
//go:embed testdata/demo/*.txt
var DemoData embed.FS
