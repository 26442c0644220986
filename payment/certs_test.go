package payment

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"
)

// Alipay's real alipayRootCert.crt begins with its SM2 root, which crypto/x509 can't
// parse ("unsupported elliptic curve"). Start-up must skip it and still verify the
// Alipay certificate against the RSA root that follows; a file with no readable root
// at all is still refused.
func TestRootFileWithAnUnreadableRoot(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	rootDER, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(rootDER)
	leafTpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Alipay"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTpl, root, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pemOf := func(der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}) }
	// A certificate block Go can't read, standing for the SM2 root.
	unreadable := pemOf([]byte{0x30, 0x03, 0x02, 0x01, 0x01})
	c := &Certs{RootCert: append(unreadable, pemOf(rootDER)...), AlipayCerts: [][]byte{pemOf(leafDER)},
		Files: []string{"alipayCertPublicKey_RSA2.crt"}}
	v, err := c.Verifier()
	if err != nil {
		t.Fatalf("a root file led by an unreadable root: %v", err)
	}
	if v == nil {
		t.Fatal("no verifier")
	}
	c.RootCert = unreadable
	if _, err := c.Verifier(); err == nil {
		t.Fatal("a root file with no readable root was accepted")
	}
}
