package s3

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/coffer-backup/coffer/storage"
)

// ListVersions calls fn for every version and delete marker of every
// object under prefix, names relative to the backend's prefix, with the
// modification times the server recorded. On a bucket that never had
// versioning each object has one version, "null". A failed listing is an
// error, never a short list.
func (b *Backend) ListVersions(ctx context.Context, prefix string, fn func(storage.Version) error) error {
	return b.list(ctx, prefix, true, func(name string, oi minio.ObjectInfo) error {
		v := storage.Version{Name: name, ID: oi.VersionID, Size: oi.Size, ModTime: oi.LastModified,
			ETag: oi.ETag, Deleted: oi.IsDeleteMarker, Latest: oi.IsLatest}
		if v.ID == "" {
			v.ID = "null"
		}
		return fn(v)
	})
}

// GetVersion is Get of one version of the object.
func (b *Backend) GetVersion(ctx context.Context, name, version string, offset, length int64, fn func(io.Reader) error) error {
	if version == "" {
		return fmt.Errorf("get %s: no version id", name)
	}
	return b.get(ctx, name, version, offset, length, fn)
}

// RestoreVersion makes a copy of one version of the object its current
// version, on the server (no byte passes through coffer). The version
// copied from, and every other, stays. With retainUntil set the copy is
// written under Object Lock retention until then.
func (b *Backend) RestoreVersion(ctx context.Context, name, version string, retainUntil time.Time) error {
	if version == "" {
		return fmt.Errorf("restore %s: no version id", name)
	}
	key, err := b.key(name)
	if err != nil {
		return err
	}
	dst := minio.CopyDestOptions{Bucket: b.bucket, Object: key}
	if !retainUntil.IsZero() {
		dst.Mode = b.mode
		dst.RetainUntilDate = retainUntil.UTC()
	}
	src := minio.CopySrcOptions{Bucket: b.bucket, Object: key, VersionID: version}
	if _, err := b.client.CopyObject(ctx, dst, src); err != nil {
		return b.wrap("restore version "+version+" of", name, err)
	}
	return nil
}

// Hide puts a delete marker in front of the object: it is absent from
// then on, while every version stays in the bucket's history (and an
// older moment still shows it). On a bucket without versioning this
// deletes the object.
func (b *Backend) Hide(ctx context.Context, name string) error {
	key, err := b.key(name)
	if err != nil {
		return err
	}
	if err := b.client.RemoveObject(ctx, b.bucket, key, minio.RemoveObjectOptions{}); err != nil && code(err) != "NoSuchKey" {
		return b.wrap("hide", name, err)
	}
	return nil
}
