package payment

import (
	"crypto/md5"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Certificate mode's files in KEYS_DIR, as Alipay's console names them.
const (
	AppCertFile    = "appCertPublicKey.crt"         // the app's public key, certified by Alipay
	RootCertFile   = "alipayRootCert.crt"           // Alipay's root certificates
	AlipayCertFile = "alipayCertPublicKey_RSA2.crt" // Alipay's current signing certificate
)

// Certs is certificate mode (公钥证书): the app's certificate, Alipay's roots, and
// Alipay's signing certificates — the current one first, then any earlier or later one
// kept beside it (alipayCertPublicKey_RSA2*.crt) while Alipay rotates.
type Certs struct {
	AppCert     []byte
	RootCert    []byte
	AlipayCerts [][]byte
	Files       []string // the Alipay certificate files, as named in AlipayCerts
}

// LoadCerts reads certificate mode's files from dir. ok is false when none of the three
// is there (public-key mode); a partial set is an error that names what is missing.
func LoadCerts(dir string) (c *Certs, ok bool, err error) {
	read := func(f string) ([]byte, bool, error) {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if errors.Is(err, os.ErrNotExist) {
			return nil, false, nil
		}
		return b, err == nil, err
	}
	c = &Certs{}
	var have []string
	var missing []string
	for _, f := range []struct {
		name string
		dst  *[]byte
	}{{AppCertFile, &c.AppCert}, {RootCertFile, &c.RootCert}} {
		b, found, err := read(f.name)
		if err != nil {
			return nil, false, err
		}
		if found {
			*f.dst = b
			have = append(have, f.name)
		} else {
			missing = append(missing, f.name)
		}
	}
	cur, found, err := read(AlipayCertFile)
	if err != nil {
		return nil, false, err
	}
	if found {
		have = append(have, AlipayCertFile)
		c.AlipayCerts, c.Files = [][]byte{cur}, []string{AlipayCertFile}
	} else {
		missing = append(missing, AlipayCertFile)
	}
	others, _ := filepath.Glob(filepath.Join(dir, "alipayCertPublicKey_RSA2*.crt"))
	sort.Strings(others)
	for _, p := range others {
		if filepath.Base(p) == AlipayCertFile {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, false, err
		}
		c.AlipayCerts, c.Files = append(c.AlipayCerts, b), append(c.Files, filepath.Base(p))
	}
	if len(have) == 0 {
		return nil, false, nil
	}
	if len(missing) > 0 {
		return nil, false, fmt.Errorf("certificate mode needs %s in %s too (found only %s)",
			strings.Join(missing, ", "), dir, strings.Join(have, ", "))
	}
	return c, true, nil
}

// CertSN is Alipay's serial number of a certificate: hex(md5(issuer + serial number)),
// the rule Alipay's SDKs (and smartwalle) use.
func CertSN(cert *x509.Certificate) string {
	sum := md5.Sum([]byte(cert.Issuer.String() + cert.SerialNumber.String()))
	return hex.EncodeToString(sum[:])
}

// certsOf parses every PEM certificate in b.
func certsOf(b []byte) ([]*x509.Certificate, error) { return parseCerts(b, false) }

// rootsOf parses Alipay's root file, skipping the certificates Go can't read: Alipay's
// alipayRootCert.crt starts with its SM2 (国密) root, whose curve crypto/x509 doesn't
// support. Its RSA roots, the ones RSA2 certificates chain to, must be there.
func rootsOf(b []byte) ([]*x509.Certificate, error) { return parseCerts(b, true) }

func parseCerts(b []byte, skipUnreadable bool) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			if skipUnreadable {
				continue
			}
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate found that this program can read")
	}
	return out, nil
}

// AppPublicKey is the key the app's certificate certifies (it must be the app's own).
func (c *Certs) AppPublicKey() (*rsa.PublicKey, error) {
	cs, err := certsOf(c.AppCert)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", AppCertFile, err)
	}
	k, ok := cs[0].PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an RSA key", AppCertFile)
	}
	return k, nil
}

// Verifier checks every Alipay certificate against the roots and returns a Verifier
// that knows exactly those keys, by SN (the current certificate's SN is the default
// for a message that names none). A certificate not issued under the roots stops
// start-up: it is the one trust decision certificate mode adds, made once, here.
func (c *Certs) Verifier() (*Verifier, error) {
	roots, err := rootsOf(c.RootCert)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", RootCertFile, err)
	}
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	keys := map[string]*rsa.PublicKey{}
	current := ""
	for i, b := range c.AlipayCerts {
		cs, err := certsOf(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Files[i], err)
		}
		inter := x509.NewCertPool()
		for _, x := range cs[1:] {
			inter.AddCert(x)
		}
		leaf := cs[0]
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			return nil, fmt.Errorf("%s is not issued under %s: %w", c.Files[i], RootCertFile, err)
		}
		k, ok := leaf.PublicKey.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%s: not an RSA key", c.Files[i])
		}
		sn := CertSN(leaf)
		keys[sn] = k
		if i == 0 {
			current = sn
		}
	}
	return NewCertVerifier(keys, current), nil
}
