package s3

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/coffer-backup/coffer/storage"
)

// Put uploads data in one request (multipart only above partSize). S3
// makes the object visible only when the upload is complete; Content-MD5
// lets the server reject a body corrupted in transit.
//
// With opts.NoOverwrite the request carries If-None-Match: * and is never
// split into parts (the condition, and a policy that requires it, apply to
// one PUT): the server stores the object only if the name is free and
// answers 412 Precondition Failed otherwise, which is storage.ErrExists.
func (b *Backend) Put(ctx context.Context, name string, data []byte, opts storage.PutOptions) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	key, err := b.key(name)
	if err != nil {
		return err
	}
	po := minio.PutObjectOptions{
		ContentType:    "application/octet-stream",
		PartSize:       partSize,
		SendContentMd5: true,
	}
	if opts.NoOverwrite {
		po.SetMatchETagExcept("*")
		po.DisableMultipart = true
	}
	if !opts.RetainUntil.IsZero() {
		po.Mode = b.mode
		po.RetainUntilDate = opts.RetainUntil.UTC()
	}
	_, err = b.client.PutObject(ctx, b.bucket, key, bytes.NewReader(data), int64(len(data)), po)
	if err != nil {
		return b.wrap("put", name, err)
	}
	return nil
}

// Get requests the range and hands fn the response body. The request is
// made before fn runs, so a missing object is ErrNotFound, not a read
// error inside fn.
func (b *Backend) Get(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error {
	return b.get(ctx, name, "", offset, length, fn)
}

// get is Get of one version ("": the current one).
func (b *Backend) get(ctx context.Context, name, version string, offset, length int64, fn func(io.Reader) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	key, err := b.key(name)
	if err != nil {
		return err
	}
	opts := minio.GetObjectOptions{VersionID: version}
	if offset < 0 {
		return fmt.Errorf("get %s: negative offset %d", name, offset)
	}
	switch {
	case length > 0:
		err = opts.SetRange(offset, offset+length-1)
	case offset > 0:
		err = opts.SetRange(offset, 0) // bytes=offset-: to the end
	}
	if err != nil {
		return fmt.Errorf("get %s: %w", name, err)
	}
	body, _, _, err := b.core.GetObject(ctx, b.bucket, key, opts)
	if err != nil {
		if code(err) == "InvalidRange" && length <= 0 {
			// Reading from the end to the end: nothing, as with a file.
			return fn(bytes.NewReader(nil))
		}
		return b.wrap("get", name, err)
	}
	defer body.Close()
	return fn(body)
}

// Stat asks for the object's size and modification time.
func (b *Backend) Stat(ctx context.Context, name string) (storage.Info, error) {
	key, err := b.key(name)
	if err != nil {
		return storage.Info{}, err
	}
	oi, err := b.client.StatObject(ctx, b.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return storage.Info{}, b.wrap("stat", name, err)
	}
	return storage.Info{Name: name, Size: oi.Size, ModTime: oi.LastModified}, nil
}

// List lists every object under prefix; names come back relative to the
// backend's prefix. A failed listing is an error, never a short list:
// prune must not take a missing page for missing objects.
func (b *Backend) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	return b.list(ctx, prefix, false, func(name string, oi minio.ObjectInfo) error {
		return fn(storage.Info{Name: name, Size: oi.Size, ModTime: oi.LastModified})
	})
}

// list calls fn with every object (with versions: every version) under
// prefix and its name relative to the backend's prefix.
func (b *Backend) list(ctx context.Context, prefix string, versions bool, fn func(string, minio.ObjectInfo) error) error {
	root := ""
	if b.prefix != "" {
		root = b.prefix + "/"
	}
	opts := minio.ListObjectsOptions{Prefix: root + prefix, Recursive: true, WithVersions: versions}
	for oi := range b.client.ListObjectsIter(ctx, b.bucket, opts) {
		if oi.Err != nil {
			op := "list"
			if versions {
				op = "list versions of"
			}
			return b.wrap(op, fmt.Sprintf("%q", prefix), oi.Err)
		}
		name := strings.TrimPrefix(oi.Key, root)
		if name == "" || strings.HasSuffix(name, "/") {
			continue // a folder marker made by some S3 tools
		}
		if err := fn(name, oi); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Delete removes every version of the object. In a versioned bucket (any
// bucket with Object Lock is one) a plain DELETE only hides the object
// behind a delete marker and keeps paying for it, and never meets the
// lock; deleting the versions frees the space and reports a version still
// under retention as storage.ErrLocked. A missing object is not an error.
func (b *Backend) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	key, err := b.key(name)
	if err != nil {
		return err
	}
	versions, err := b.versions(ctx, key)
	if err != nil {
		return b.wrap("delete", name, err)
	}
	if len(versions) == 0 {
		versions = []string{""} // unversioned store, or nothing to list
	}
	for _, v := range versions {
		err := b.client.RemoveObject(ctx, b.bucket, key, minio.RemoveObjectOptions{VersionID: v})
		if err != nil && code(err) != "NoSuchKey" && code(err) != "NoSuchVersion" {
			return b.wrap("delete", name, err)
		}
	}
	return nil
}

// versions lists the version IDs stored under exactly key ("" for the
// unversioned "null" version). Stores without version listing return none.
func (b *Backend) versions(ctx context.Context, key string) ([]string, error) {
	var out []string
	opts := minio.ListObjectsOptions{Prefix: key, Recursive: true, WithVersions: true}
	for oi := range b.client.ListObjectsIter(ctx, b.bucket, opts) {
		if oi.Err != nil {
			if code(oi.Err) == "NotImplemented" {
				return nil, nil
			}
			return nil, oi.Err
		}
		if oi.Key != key {
			continue // a longer name sharing the prefix
		}
		v := oi.VersionID
		if v == "null" {
			v = ""
		}
		out = append(out, v)
	}
	return out, ctx.Err()
}
