package storage

import "time"

// Version is one stored version of an object in a store that keeps them
// (an S3 bucket with versioning or Object Lock): a content the object had,
// or a delete marker, which says the object was absent from ModTime on.
type Version struct {
	Name    string    // object name, relative to the repository root
	ID      string    // the store's version id ("null" for one written before versioning)
	Size    int64     // bytes; 0 for a delete marker
	ModTime time.Time // when the store wrote this version, by its own clock
	ETag    string    // the store's tag of the content (an MD5 for a single-part upload)
	Deleted bool      // a delete marker
	Latest  bool      // the current version
}
