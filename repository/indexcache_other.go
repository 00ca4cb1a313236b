//go:build !unix

package repository

import "errors"

func privateCacheDir(root, sub string) (string, error) {
	return "", errors.New("a private cache directory cannot be checked on this system")
}

func lockFile(path string) (func(), error) { return nil, errors.New("no file locks") }

func tryLockFile(path string) (func(), error) { return nil, errors.New("no file locks") }
