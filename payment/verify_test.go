package payment

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func certPEM(t *testing.T, tmpl, parent *x509.Certificate, pub *rsa.PublicKey, signer *rsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func tmpl(serial int64, cn string, ca bool) *x509.Certificate {
	return &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: ca, BasicConstraintsValid: ca,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
}

func sign(t *testing.T, k *rsa.PrivateKey, v url.Values, skip []string) {
	t.Helper()
	sum := sha256.Sum256([]byte(signContent(v, skip)))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	v.Set("sign", base64.StdEncoding.EncodeToString(sig))
}

// Certificate mode: messages are checked by the certificate they name; an unknown SN is
// refused (never fetched), a rotated certificate kept beside the current one works, a
// certificate not issued under the roots stops start-up; V1 then V2 content is tried.
func TestCertVerifier(t *testing.T) {
	rootKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	root := tmpl(1, "Test Alipay Root", true)
	rootPEM := certPEM(t, root, root, &rootKey.PublicKey, rootKey)
	rootCert, _ := x509.ParseCertificate(must(pem.Decode(rootPEM)).Bytes)
	oldKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	newKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	appKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	strangerKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	dir := t.TempDir()
	write := func(name string, b []byte) { os.WriteFile(filepath.Join(dir, name), b, 0o644) }
	write(RootCertFile, rootPEM)
	write(AppCertFile, certPEM(t, tmpl(2, "app", false), rootCert, &appKey.PublicKey, rootKey))
	write(AlipayCertFile, certPEM(t, tmpl(3, "alipay 2026", false), rootCert, &newKey.PublicKey, rootKey))
	write("alipayCertPublicKey_RSA2.2025.crt", certPEM(t, tmpl(4, "alipay 2025", false), rootCert, &oldKey.PublicKey, rootKey))
	certs, ok, err := LoadCerts(dir)
	if err != nil || !ok || len(certs.AlipayCerts) != 2 {
		t.Fatalf("LoadCerts: %v %v %d", ok, err, len(certs.AlipayCerts))
	}
	if ak, err := certs.AppPublicKey(); err != nil || !ak.Equal(&appKey.PublicKey) {
		t.Fatal("app certificate key")
	}
	v, err := certs.Verifier()
	if err != nil {
		t.Fatal(err)
	}
	leafSN := func(file string) string {
		b, _ := os.ReadFile(filepath.Join(dir, file))
		c, _ := x509.ParseCertificate(must(pem.Decode(b)).Bytes)
		return CertSN(c)
	}
	newSN, oldSN := leafSN(AlipayCertFile), leafSN("alipayCertPublicKey_RSA2.2025.crt")
	msg := func(sn string) url.Values {
		v := url.Values{"out_trade_no": {"X1"}, "trade_status": {"TRADE_SUCCESS"}, "sign_type": {"RSA2"}}
		if sn != "" {
			v.Set("alipay_cert_sn", sn)
		}
		return v
	}
	cases := []struct {
		name string
		v    url.Values
		key  *rsa.PrivateKey
		skip []string
		want string
	}{
		{"current SN", msg(newSN), newKey, []string{"sign", "sign_type", "alipay_cert_sn"}, ""},
		{"current SN, signed with the SN in", msg(newSN), newKey, []string{"sign", "sign_type"}, ""},
		{"no SN: the current certificate", msg(""), newKey, []string{"sign", "sign_type"}, ""},
		{"rotated SN", msg(oldSN), oldKey, []string{"sign", "sign_type", "alipay_cert_sn"}, ""},
		{"V2: sign_type signed", msg(newSN), newKey, []string{"sign"}, ""},
		{"unknown SN", msg("00000000000000000000000000000000"), strangerKey, []string{"sign", "sign_type"}, ReasonUnknownCert},
		{"known SN, another key", msg(newSN), strangerKey, []string{"sign", "sign_type"}, ReasonBadSign},
		{"the old key under the new SN", msg(newSN), oldKey, []string{"sign", "sign_type"}, ReasonBadSign},
	}
	for _, c := range cases {
		sign(t, c.key, c.v, c.skip)
		if got := v.Verify(c.v); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	// Public-key mode refuses any message naming a certificate, even well signed.
	kv, _ := NewKeyVerifier(EncodePublicKey(&newKey.PublicKey))
	m := msg(newSN)
	sign(t, newKey, m, []string{"sign", "sign_type", "alipay_cert_sn"})
	if got := kv.Verify(m); got != ReasonCertInKeyMode {
		t.Fatalf("public-key mode: %q", got)
	}
	// An Alipay certificate not issued under the roots stops start-up.
	otherRootKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	other := tmpl(9, "Another Root", true)
	otherPEM := certPEM(t, other, other, &otherRootKey.PublicKey, otherRootKey)
	otherCert, _ := x509.ParseCertificate(must(pem.Decode(otherPEM)).Bytes)
	write(AlipayCertFile, certPEM(t, tmpl(5, "fake alipay", false), otherCert, &strangerKey.PublicKey, otherRootKey))
	certs, _, _ = LoadCerts(dir)
	if _, err := certs.Verifier(); err == nil {
		t.Fatal("a certificate from another root was accepted")
	}
	// Part of the set is an error that names what is missing.
	os.Remove(filepath.Join(dir, RootCertFile))
	if _, _, err := LoadCerts(dir); err == nil {
		t.Fatal("a partial certificate set was accepted")
	}
}

func must(b *pem.Block, _ []byte) *pem.Block { return b }
