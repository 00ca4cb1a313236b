// Package location turns a repository address (a path, file:///path or
// s3://BUCKET/PREFIX) into a storage.Backend.
package location

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/local"
	"github.com/coffer-backup/coffer/storage/retry"
	"github.com/coffer-backup/coffer/storage/s3"
)

// S3Options are the S3 settings that do not belong in the address.
type S3Options struct {
	Endpoint     string // e.g. http://127.0.0.1:9000; AWS when empty
	AccessKey    string
	SecretKey    string
	SessionToken string // with temporary credentials
	Region       string
	CreateBucket bool // create a missing bucket (coffer init)
	ObjectLock   bool // create it with Object Lock enabled
}

// Open opens the repository at addr. With opts.CreateBucket a missing local
// directory or bucket is created.
func Open(ctx context.Context, addr string, opts S3Options) (storage.Backend, error) {
	switch {
	case strings.HasPrefix(addr, "s3://"):
		bucket, prefix, err := ParseS3(addr)
		if err != nil {
			return nil, err
		}
		be, err := s3.Open(ctx, s3.Config{
			Endpoint: opts.Endpoint, Bucket: bucket, Prefix: prefix,
			AccessKey: opts.AccessKey, SecretKey: opts.SecretKey, SessionToken: opts.SessionToken, Region: opts.Region,
			CreateBucket: opts.CreateBucket, ObjectLock: opts.ObjectLock,
		})
		if err != nil {
			return nil, err
		}
		return retry.New(be, 5, 250*time.Millisecond), nil
	case strings.HasPrefix(addr, "file://"):
		u, err := url.Parse(addr)
		if err != nil || u.Path == "" || (u.Host != "" && u.Host != "localhost") {
			return nil, fmt.Errorf("repository %q: a file address is file:///absolute/path", addr)
		}
		return local.Open(u.Path, opts.CreateBucket)
	case strings.Contains(addr, "://"):
		return nil, fmt.Errorf("repository %q: unknown scheme; use a path, file:///path or s3://BUCKET/PREFIX", addr)
	case addr == "":
		return nil, fmt.Errorf("no repository given: set COFFER_REPO or --repo")
	}
	return local.Open(addr, opts.CreateBucket)
}

// ParseS3 splits s3://BUCKET/PREFIX.
func ParseS3(addr string) (bucket, prefix string, err error) {
	rest := strings.TrimPrefix(addr, "s3://")
	bucket, prefix, _ = strings.Cut(rest, "/")
	prefix = strings.Trim(prefix, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("repository %q: no bucket; use s3://BUCKET/PREFIX", addr)
	}
	return bucket, prefix, nil
}
