package config

import _ "embed"

//go:embed example.yaml
var example string

// Example returns a commented coffer.yaml that uses every key, each with a
// comment saying what it does. It loads without error (a test proves it and
// that it names every key the schema has).
func Example() string { return example }
