package s3

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/coffer-backup/coffer/storage"
)

// code is the S3 error code of err, or "" when the server did not answer
// with an S3 error (a network failure, a timeout).
func code(err error) string {
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		return er.Code
	}
	return ""
}

func alreadyOwned(err error) bool {
	return code(err) == "BucketAlreadyOwnedByYou"
}

// credentialCodes are the answers to a request whose credentials are
// missing, wrong or lack a permission.
var credentialCodes = map[string]bool{
	"AccessDenied": true, "InvalidAccessKeyId": true, "SignatureDoesNotMatch": true,
	"ExpiredToken": true, "InvalidToken": true, "InvalidClientTokenId": true,
}

// openError explains why Open could not use the bucket.
func (b *Backend) openError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("open bucket %s at %s: %w", b.bucket, b.endpoint, ctx.Err())
	}
	c := code(err)
	switch {
	case credentialCodes[c]:
		return fmt.Errorf("S3 endpoint %s refused access to bucket %s: %w: check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY", b.endpoint, b.bucket, err)
	case c == "":
		return fmt.Errorf("cannot reach S3 endpoint %s: %w: check COFFER_S3_ENDPOINT and that the server is running", b.endpoint, err)
	}
	return fmt.Errorf("S3 endpoint %s, bucket %s: %w", b.endpoint, b.bucket, err)
}

// wrap names the operation and object and maps the answers callers act
// on to the storage sentinels.
func (b *Backend) wrap(op, name string, err error) error {
	c := code(err)
	switch {
	case c == "NoSuchKey" || c == "NoSuchVersion":
		return fmt.Errorf("%s: %w", name, storage.ErrNotFound)
	case c == "PreconditionFailed" && op == "put":
		return fmt.Errorf("put %s in %s: %w (the server refused to replace it)", name, b.Location(), storage.ErrExists)
	case lockRefusal(err):
		return fmt.Errorf("%s %s in %s: %w (%v)", op, name, b.Location(), storage.ErrLocked, err)
	case c == "NoSuchBucket":
		return fmt.Errorf("%s %s: bucket %s does not exist at %s: create it or run coffer init: %w", op, name, b.bucket, b.endpoint, err)
	case credentialCodes[c]:
		return fmt.Errorf("%s %s in %s: %w: check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and the key's permissions", op, name, b.Location(), err)
	case c == "" && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s %s: S3 endpoint %s: %w", op, name, b.endpoint, err)
	}
	return fmt.Errorf("%s %s in %s: %w", op, name, b.Location(), err)
}

// lockRefusal recognises a refusal caused by Object Lock retention. S3
// answers AccessDenied ("... protected by object lock"), MinIO
// InvalidRequest ("Object is WORM protected ..."); a plain AccessDenied is
// a permission problem, not a lock.
func lockRefusal(err error) bool {
	c := code(err)
	if c != "AccessDenied" && c != "InvalidRequest" {
		return false
	}
	var er minio.ErrorResponse
	errors.As(err, &er)
	msg := strings.ToLower(er.Message)
	for _, w := range []string{"worm", "object lock", "object-lock", "retention", "locked"} {
		if strings.Contains(msg, w) {
			return true
		}
	}
	return false
}
