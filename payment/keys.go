package payment

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Key file names inside KEYS_DIR (keys/README.md).
const (
	AppPrivateKeyFile     = "app_private_key.pem"
	AppPublicKeyFile      = "app_public_key.pem"
	AlipayPublicKeyFile   = "alipay_public_key.pem"
	SandboxPrivateKeyFile = "sandbox/alipay_private_key.pem"
)

// ParsePrivateKey reads an RSA private key in PKCS#1 ("RSA PRIVATE KEY") or PKCS#8
// ("PRIVATE KEY") PEM, the two forms Alipay's key tool produces.
func ParsePrivateKey(pemBytes []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("neither PKCS#1 nor PKCS#8: %w", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an RSA key")
	}
	return rk, nil
}

// ParsePublicKey reads an RSA public key in PKIX ("PUBLIC KEY") PEM.
func ParsePublicKey(pemBytes []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	rk, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("not an RSA key")
	}
	return rk, nil
}

// EncodePrivateKey returns k as PKCS#8 PEM.
func EncodePrivateKey(k *rsa.PrivateKey) []byte {
	der, _ := x509.MarshalPKCS8PrivateKey(k) // cannot fail for an RSA key
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// EncodePublicKey returns k as PKIX PEM, the form Alipay's console shows and takes.
func EncodePublicKey(k *rsa.PublicKey) []byte {
	der, _ := x509.MarshalPKIXPublicKey(k) // cannot fail for an RSA key
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// EnsureLocalKeys creates, in dir, the key files local mode needs when they are
// missing: the app's pair and the emulator's pair (whose public half is
// alipay_public_key.pem, so each side verifies the other). Existing keys are kept.
// It returns the files it wrote.
func EnsureLocalKeys(dir string) ([]string, error) {
	var wrote []string
	pairs := []struct{ priv, pub string }{
		{AppPrivateKeyFile, AppPublicKeyFile},
		{SandboxPrivateKeyFile, AlipayPublicKeyFile},
	}
	for _, p := range pairs {
		privPath, pubPath := filepath.Join(dir, p.priv), filepath.Join(dir, p.pub)
		var key *rsa.PrivateKey
		if b, err := os.ReadFile(privPath); err == nil {
			if key, err = ParsePrivateKey(b); err != nil {
				return wrote, fmt.Errorf("%s: %w", privPath, err)
			}
		} else if errors.Is(err, os.ErrNotExist) {
			if key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
				return wrote, err
			}
			created, err := CreateFile(privPath, EncodePrivateKey(key), 0o600)
			if err != nil {
				return wrote, err
			}
			if !created { // another process starting at the same moment made it first: use its key
				b, err := os.ReadFile(privPath)
				if err == nil {
					key, err = ParsePrivateKey(b)
				}
				if err != nil {
					return wrote, fmt.Errorf("%s: %w", privPath, err)
				}
			} else {
				wrote = append(wrote, privPath)
			}
		} else {
			return wrote, err
		}
		if _, err := os.Stat(pubPath); errors.Is(err, os.ErrNotExist) {
			if created, err := CreateFile(pubPath, EncodePublicKey(&key.PublicKey), 0o644); err != nil {
				return wrote, err
			} else if created {
				wrote = append(wrote, pubPath)
			}
		}
	}
	return wrote, nil
}

// WriteFile writes data to path atomically (temp file + rename) with perm, creating
// the directory; a crash never leaves half a key behind.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// CreateFile writes data to path only if path does not exist yet, atomically: the file
// appears whole or not at all, and of several processes creating it at once exactly one
// succeeds (created true); the others find the winner's file and should read it.
func CreateFile(path string, data []byte, perm os.FileMode) (created bool, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return false, err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return false, err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return false, err
	}
	if err := f.Close(); err != nil {
		return false, err
	}
	// link, unlike rename, fails if path exists.
	if err := os.Link(f.Name(), path); errors.Is(err, os.ErrExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return true, nil
}
