package mask

// Copy is what a masked copy is made under: the rules, and the Masker
// that carries them out under the repository's masking key. Engines take
// one for a masked load.
type Copy struct {
	Rules  *Rules
	Masker *Masker
}
