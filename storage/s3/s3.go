// Package s3 keeps a repository's objects in an S3-compatible bucket
// (AWS S3, MinIO, and others) through minio-go.
//
// S3 never shows a partial object under its final name, so Put is atomic
// without temporary objects. Where the bucket has Object Lock, objects can
// be written with a retain-until date (see Put and SetRetention).
package s3

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// probeTimeout bounds the reachability check in Open: a wrong endpoint
// should fail in seconds, not after minio-go's retries with backoff.
const probeTimeout = 10 * time.Second

// partSize is the multipart part size. Repository objects are at most a
// few tens of MiB, so most are sent as one PUT, which S3 checks against
// its Content-MD5 as a whole.
const partSize = 64 << 20

// Lock modes for objects written with a retain-until date.
const (
	// Governance retention can be lifted by a user with the
	// s3:BypassGovernanceRetention permission.
	Governance = "governance"
	// Compliance retention cannot be lifted by anyone, root included.
	Compliance = "compliance"
)

// Config says where the bucket is and how to reach it.
type Config struct {
	// Endpoint is a URL such as http://127.0.0.1:9000. Empty means AWS
	// (https://s3.amazonaws.com). A bare host:port is taken as https.
	Endpoint string
	Bucket   string
	Prefix   string // object names are Prefix + "/" + name; may be empty
	// AccessKey and SecretKey are static credentials. When both are empty
	// the minio-go chain is used: AWS_* and MINIO_* environment variables,
	// ~/.aws/credentials, then the EC2/ECS instance role.
	AccessKey, SecretKey string
	// SessionToken goes with temporary credentials (STS, AWS_SESSION_TOKEN).
	SessionToken string
	Region       string
	// CreateBucket makes a missing bucket (coffer init) instead of failing.
	CreateBucket bool
	// ObjectLock creates the bucket with Object Lock enabled (only when
	// Open creates it; Object Lock cannot be added later on most stores).
	ObjectLock bool
	// LockMode is the retention mode for objects put with a retain-until
	// date: Governance (the default) or Compliance.
	LockMode string
}

// Backend stores objects in one bucket under a prefix.
type Backend struct {
	client   *minio.Client
	core     minio.Core // eager GET, so a missing object fails before fn runs
	endpoint string     // as given, for messages
	bucket   string
	prefix   string // without leading or trailing "/"
	mode     minio.RetentionMode
}

// Open connects to the bucket and checks, within about ten seconds, that
// the endpoint answers, the credentials are accepted and the bucket
// exists. With cfg.CreateBucket a missing bucket is created.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	if cfg.Bucket == "" {
		return nil, fmt.Errorf("no S3 bucket given: use s3://BUCKET/PREFIX")
	}
	mode, err := lockMode(cfg.LockMode)
	if err != nil {
		return nil, err
	}
	host, secure, shown, err := parseEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	opts := &minio.Options{Creds: creds(cfg), Secure: secure, Region: cfg.Region}
	client, err := minio.New(host, opts)
	if err != nil {
		return nil, fmt.Errorf("S3 endpoint %s: %w", shown, err)
	}
	client.SetAppInfo("coffer", "1")
	b := &Backend{
		client: client, core: minio.Core{Client: client}, endpoint: shown,
		bucket: cfg.Bucket, prefix: strings.Trim(cfg.Prefix, "/"), mode: mode,
	}
	if err := b.probe(ctx, host, cfg); err != nil {
		return nil, err
	}
	return b, nil
}

// SetLockMode changes the retention mode used by Put and SetRetention:
// Governance or Compliance. An unknown mode is an error.
func (b *Backend) SetLockMode(mode string) error {
	m, err := lockMode(mode)
	if err != nil {
		return err
	}
	b.mode = m
	return nil
}

func lockMode(s string) (minio.RetentionMode, error) {
	switch strings.ToLower(s) {
	case "", Governance:
		return minio.Governance, nil
	case Compliance:
		return minio.Compliance, nil
	}
	return "", fmt.Errorf("object lock mode %q: use %q or %q", s, Governance, Compliance)
}

// parseEndpoint turns the configured endpoint into what minio-go wants (a
// host and whether to use TLS) and the URL to show in messages.
func parseEndpoint(ep string) (host string, secure bool, shown string, err error) {
	if ep == "" {
		return "s3.amazonaws.com", true, "https://s3.amazonaws.com", nil
	}
	if !strings.Contains(ep, "://") {
		ep = "https://" + ep
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return "", false, "", fmt.Errorf("S3 endpoint %q: want a URL such as http://127.0.0.1:9000 or https://s3.eu-west-1.amazonaws.com, without a path", ep)
	}
	switch u.Scheme {
	case "http", "https":
	default:
		return "", false, "", fmt.Errorf("S3 endpoint %q: the scheme must be http or https", ep)
	}
	return u.Host, u.Scheme == "https", u.Scheme + "://" + u.Host, nil
}

func creds(cfg Config) *credentials.Credentials {
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		return credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)
	}
	return credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{},
		&credentials.EnvMinio{},
		&credentials.FileAWSCredentials{},
		&credentials.IAM{},
	})
}

// probe checks the bucket with a client that does not retry, under a short
// timeout, so that an unreachable endpoint fails fast; the Backend's own
// client keeps minio-go's retries for the transient failures of real work.
func (b *Backend) probe(ctx context.Context, host string, cfg Config) error {
	pc, err := minio.New(host, &minio.Options{
		Creds: creds(cfg), Secure: strings.HasPrefix(b.endpoint, "https:"), Region: cfg.Region, MaxRetries: 1,
	})
	if err != nil {
		return fmt.Errorf("S3 endpoint %s: %w", b.endpoint, err)
	}
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	ok, err := pc.BucketExists(pctx, b.bucket)
	if err != nil && minio.ToErrorResponse(err).Code == "AccessDenied" {
		// A least-privilege role may list only the repository's prefix
		// (coffer policy): probe that instead of the whole bucket.
		ok, err = b.probePrefix(pctx, pc)
	}
	if err != nil {
		return b.openError(ctx, err)
	}
	if ok {
		return nil
	}
	if !cfg.CreateBucket {
		return fmt.Errorf("bucket %s does not exist at %s: create it or run coffer init", b.bucket, b.endpoint)
	}
	err = pc.MakeBucket(pctx, b.bucket, minio.MakeBucketOptions{Region: cfg.Region, ObjectLocking: cfg.ObjectLock})
	if err != nil && !alreadyOwned(err) {
		return fmt.Errorf("create bucket %s at %s: %w", b.bucket, b.endpoint, b.openError(ctx, err))
	}
	return nil
}

// Location is s3://bucket/prefix.
func (b *Backend) Location() string {
	if b.prefix == "" {
		return "s3://" + b.bucket
	}
	return "s3://" + b.bucket + "/" + b.prefix
}

// key is the object key of a repository name.
func (b *Backend) key(name string) (string, error) {
	if name == "" || strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("invalid object name %q", name)
	}
	if b.prefix == "" {
		return name, nil
	}
	return b.prefix + "/" + name, nil
}

// ObjectLockEnabled reports whether the bucket has Object Lock enabled.
func (b *Backend) ObjectLockEnabled(ctx context.Context) (bool, error) {
	enabled, _, _, _, err := b.client.GetObjectLockConfig(ctx, b.bucket)
	if err != nil {
		if code(err) == "ObjectLockConfigurationNotFoundError" {
			return false, nil
		}
		return false, b.wrap("object lock configuration of", "bucket "+b.bucket, err)
	}
	return enabled == "Enabled", nil
}

// VersioningEnabled reports whether the bucket keeps every version of an
// object (versioning enabled; Object Lock buckets always are), so that an
// overwritten or deleted object can be recovered from its older version.
func (b *Backend) VersioningEnabled(ctx context.Context) (bool, error) {
	v, err := b.client.GetBucketVersioning(ctx, b.bucket)
	if err != nil {
		return false, b.wrap("versioning configuration of", "bucket "+b.bucket, err)
	}
	return v.Enabled(), nil
}

// probePrefix checks access by listing one object under the prefix.
func (b *Backend) probePrefix(ctx context.Context, pc *minio.Client) (bool, error) {
	prefix := b.prefix
	if prefix != "" {
		prefix += "/"
	}
	for o := range pc.ListObjects(ctx, b.bucket, minio.ListObjectsOptions{Prefix: prefix, MaxKeys: 1}) {
		if o.Err != nil {
			if minio.ToErrorResponse(o.Err).Code == "NoSuchBucket" {
				return false, nil
			}
			return false, o.Err
		}
		break
	}
	return true, nil
}
