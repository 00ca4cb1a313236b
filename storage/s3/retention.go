package s3

import (
	"context"
	"time"

	"github.com/minio/minio-go/v7"
)

// SetRetention extends the object's retain-until date to until, in the
// backend's lock mode. It reads the current date first and leaves a later
// one alone: retention only ever grows, and S3 refuses (governance) or
// cannot undo (compliance) a shortening anyway.
func (b *Backend) SetRetention(ctx context.Context, name string, until time.Time) error {
	cur, err := b.Retention(ctx, name)
	if err != nil {
		return err
	}
	if !cur.IsZero() && !cur.Before(until) {
		return nil
	}
	key, err := b.key(name)
	if err != nil {
		return err
	}
	mode := b.mode
	u := until.UTC()
	err = b.client.PutObjectRetention(ctx, b.bucket, key, minio.PutObjectRetentionOptions{Mode: &mode, RetainUntilDate: &u})
	if err != nil {
		return b.wrap("set retention of", name, err)
	}
	return nil
}

// Retention returns the object's retain-until date, zero when it has none.
func (b *Backend) Retention(ctx context.Context, name string) (time.Time, error) {
	key, err := b.key(name)
	if err != nil {
		return time.Time{}, err
	}
	_, until, err := b.client.GetObjectRetention(ctx, b.bucket, key, "")
	if err != nil {
		if code(err) == "NoSuchObjectLockConfiguration" {
			return time.Time{}, nil
		}
		return time.Time{}, b.wrap("read retention of", name, err)
	}
	if until == nil {
		return time.Time{}, nil
	}
	return *until, nil
}
