package sandbox

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Certificate mode (公钥证书). Alipay hands a merchant three files: its root CA bundle,
// Alipay's own certificate and the app's certificate, both issued by that root. Every
// request then carries app_cert_sn and alipay_root_cert_sn; every signed answer and
// notify carries alipay_cert_sn. The emulator can issue the three files from a root of
// its own (IssueCerts) and check them (Config.Certs).

// File names as Alipay's console hands them out.
const (
	RootCertFile      = "alipayRootCert.crt"
	AlipayCertFile    = "alipayCertPublicKey_RSA2.crt"
	AppCertFile       = "appCertPublicKey.crt"
	rootKeyFile       = "sandbox/alipay_root_key.pem"
	certValidityYears = 10
)

// CertConfig holds the three certificates (PEM) of certificate mode.
type CertConfig struct {
	AppCertPEM    []byte // appCertPublicKey.crt: the app's public key, issued by the root
	AlipayCertPEM []byte // alipayCertPublicKey_RSA2.crt: the emulator's signing key, issued by the root
	RootCertPEM   []byte // alipayRootCert.crt: the root bundle (its RSA certificates make the root SN)
}

// LoadCertConfig reads the three certificate files from dir.
func LoadCertConfig(dir string) (*CertConfig, error) {
	var c CertConfig
	for _, f := range []struct {
		name string
		dst  *[]byte
	}{{AppCertFile, &c.AppCertPEM}, {AlipayCertFile, &c.AlipayCertPEM}, {RootCertFile, &c.RootCertPEM}} {
		b, err := os.ReadFile(filepath.Join(dir, f.name))
		if err != nil {
			return nil, fmt.Errorf("sandbox: certificate: %w", err)
		}
		*f.dst = b
	}
	return &c, nil
}

// certSN is smartwalle's (and Alipay's SDKs') certificate SN: the hex MD5 of the issuer's
// distinguished name followed by the serial number in decimal.
func certSN(c *x509.Certificate) string {
	sum := md5.Sum([]byte(c.Issuer.String() + c.SerialNumber.String()))
	return hex.EncodeToString(sum[:])
}

// rootCertSN joins, with "_", the SNs of the RSA-signed certificates of a root bundle in
// file order (other algorithms, such as the bundle's ECC root, do not count).
func rootCertSN(bundle []byte) (string, error) {
	certs, err := parseCerts(bundle)
	if err != nil {
		return "", err
	}
	var sns []string
	for _, c := range certs {
		if c.SignatureAlgorithm == x509.SHA256WithRSA || c.SignatureAlgorithm == x509.SHA1WithRSA {
			sns = append(sns, certSN(c))
		}
	}
	if len(sns) == 0 {
		return "", errors.New("root bundle has no RSA certificate")
	}
	return strings.Join(sns, "_"), nil
}

func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no certificate in PEM")
	}
	return out, nil
}

func parseCert(data []byte) (*x509.Certificate, error) {
	cs, err := parseCerts(data)
	if err != nil {
		return nil, err
	}
	return cs[0], nil
}

// certMode is Config.Certs, parsed and cross-checked.
type certMode struct {
	appSN, rootSN, alipaySN string
	appKey                  *rsa.PublicKey
}

func loadCertMode(c *CertConfig, alipayKey *rsa.PrivateKey) (*certMode, error) {
	app, err := parseCert(c.AppCertPEM)
	if err != nil {
		return nil, fmt.Errorf("app certificate: %w", err)
	}
	ali, err := parseCert(c.AlipayCertPEM)
	if err != nil {
		return nil, fmt.Errorf("alipay certificate: %w", err)
	}
	roots, err := parseCerts(c.RootCertPEM)
	if err != nil {
		return nil, fmt.Errorf("root certificate: %w", err)
	}
	rootSN, err := rootCertSN(c.RootCertPEM)
	if err != nil {
		return nil, fmt.Errorf("root certificate: %w", err)
	}
	for _, leaf := range []struct {
		name string
		c    *x509.Certificate
	}{{"app", app}, {"alipay", ali}} {
		ok := false
		for _, r := range roots {
			if leaf.c.CheckSignatureFrom(r) == nil {
				ok = true
			}
		}
		if !ok {
			return nil, fmt.Errorf("%s certificate is not issued by the root bundle", leaf.name)
		}
	}
	appKey, ok := app.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("app certificate: not an RSA key")
	}
	aliKey, ok := ali.PublicKey.(*rsa.PublicKey)
	if !ok || !aliKey.Equal(&alipayKey.PublicKey) {
		return nil, errors.New("alipay certificate does not hold the emulator's signing key")
	}
	return &certMode{appSN: certSN(app), rootSN: rootSN, alipaySN: certSN(ali), appKey: appKey}, nil
}

// IssueCerts writes, into dir, the certificates of certificate mode when they are
// missing: alipayRootCert.crt (the emulator's own root CA bundle; the root's private
// key is kept in dir/sandbox/alipay_root_key.pem, mode 0600), alipayCertPublicKey_RSA2.crt
// (the emulator's signing public key, issued by that root) and appCertPublicKey.crt (the
// app's public key, issued by that root). Existing files are kept; a certificate whose key
// no longer matches (the app key or the emulator key changed) is issued again, and so are
// both when the root has to be made anew.
func IssueCerts(dir string, appPublicKeyPEM, alipayPrivateKeyPEM []byte) error {
	appKey, err := parsePublicKey(appPublicKeyPEM)
	if err != nil {
		return fmt.Errorf("sandbox: app %w", err)
	}
	aliKey, err := parsePrivateKey(alipayPrivateKeyPEM)
	if err != nil {
		return fmt.Errorf("sandbox: emulator %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "sandbox"), 0o700); err != nil {
		return err
	}
	rootCert, rootKey, err := loadRoot(dir)
	if err != nil {
		if rootCert, rootKey, err = newRoot(dir); err != nil {
			return err
		}
	}
	for _, leaf := range []struct {
		file, cn string
		key      *rsa.PublicKey
	}{
		{AlipayCertFile, "Alipay Sandbox Public Key (local emulator)", &aliKey.PublicKey},
		{AppCertFile, "App Public Key (local emulator)", appKey},
	} {
		if leafValid(filepath.Join(dir, leaf.file), rootCert, leaf.key) {
			continue
		}
		der, err := issue(leafTemplate(leaf.cn), rootCert, leaf.key, rootKey)
		if err != nil {
			return err
		}
		if err := writeFileAtomic(filepath.Join(dir, leaf.file), pemCert(der), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// loadRoot reads the root bundle and its key; it fails when either is missing or they
// don't belong together.
func loadRoot(dir string) (*x509.Certificate, *rsa.PrivateKey, error) {
	keyPEM, err := os.ReadFile(filepath.Join(dir, rootKeyFile))
	if err != nil {
		return nil, nil, err
	}
	key, err := parsePrivateKey(keyPEM)
	if err != nil {
		return nil, nil, err
	}
	bundle, err := os.ReadFile(filepath.Join(dir, RootCertFile))
	if err != nil {
		return nil, nil, err
	}
	certs, err := parseCerts(bundle)
	if err != nil {
		return nil, nil, err
	}
	for _, c := range certs {
		if pk, ok := c.PublicKey.(*rsa.PublicKey); ok && pk.Equal(&key.PublicKey) {
			return c, key, nil
		}
	}
	return nil, nil, errors.New("root key does not match the root bundle")
}

// newRoot makes the emulator's root bundle like Alipay's: the RSA root that issues the
// certificates, a second RSA root (so the root SN is two SNs joined by "_", as Alipay's
// is) and an ECC root that does not count towards the SN.
func newRoot(dir string) (*x509.Certificate, *rsa.PrivateKey, error) {
	var bundle bytes.Buffer
	var issuer *x509.Certificate
	var issuerKey *rsa.PrivateKey
	for i, cn := range []string{"Sandbox Alipay Root CA R1 (local emulator)", "Sandbox Alipay Root CA R2 (local emulator)"} {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, nil, err
		}
		tmpl := rootTemplate(cn)
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			return nil, nil, err
		}
		bundle.Write(pemCert(der))
		if i == 0 {
			if issuer, err = x509.ParseCertificate(der); err != nil {
				return nil, nil, err
			}
			issuerKey = key
		}
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := rootTemplate("Sandbox Alipay Root CA ECC (local emulator)")
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ec.PublicKey, ec)
	if err != nil {
		return nil, nil, err
	}
	bundle.Write(pemCert(der))
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(issuerKey)})
	if err := writeFileAtomic(filepath.Join(dir, rootKeyFile), keyPEM, 0o600); err != nil {
		return nil, nil, err
	}
	if err := writeFileAtomic(filepath.Join(dir, RootCertFile), bundle.Bytes(), 0o644); err != nil {
		return nil, nil, err
	}
	// A new root makes the old leaves worthless.
	for _, f := range []string{AlipayCertFile, AppCertFile} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, nil, err
		}
	}
	return issuer, issuerKey, nil
}

// leafValid: the file exists, holds key and was issued by root.
func leafValid(path string, root *x509.Certificate, key *rsa.PublicKey) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	c, err := parseCert(b)
	if err != nil || c.CheckSignatureFrom(root) != nil {
		return false
	}
	pk, ok := c.PublicKey.(*rsa.PublicKey)
	return ok && pk.Equal(key)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return n.Add(n, big.NewInt(1))
}

func rootTemplate(cn string) *x509.Certificate {
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Country: []string{"CN"}, Organization: []string{"Local Alipay Emulator"}, OrganizationalUnit: []string{"Certification Authority"}, CommonName: cn},
		NotBefore:    now.Add(-time.Hour), NotAfter: now.AddDate(2*certValidityYears, 0, 0),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
}

func leafTemplate(cn string) *x509.Certificate {
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Country: []string{"CN"}, Organization: []string{"Local Alipay Emulator"}, OrganizationalUnit: []string{"Alipay Open Platform"}, CommonName: cn},
		NotBefore:    now.Add(-time.Hour), NotAfter: now.AddDate(certValidityYears, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
}

func issue(tmpl, root *x509.Certificate, pub *rsa.PublicKey, rootKey *rsa.PrivateKey) ([]byte, error) {
	return x509.CreateCertificate(rand.Reader, tmpl, root, pub, rootKey)
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
