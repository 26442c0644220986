package sandbox

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// parsePrivateKey accepts PKCS#1 ("RSA PRIVATE KEY"), PKCS#8 ("PRIVATE KEY") and,
// like Alipay's console which hands out keys without armour, bare base64 DER.
func parsePrivateKey(data []byte) (*rsa.PrivateKey, error) {
	der, err := pemOrBase64(data)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	k8, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("private key: neither PKCS#1 nor PKCS#8: %w", err)
	}
	rk, ok := k8.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("private key: not an RSA key")
	}
	return rk, nil
}

// parsePublicKey accepts PKIX ("PUBLIC KEY"), PKCS#1 ("RSA PUBLIC KEY") and bare base64 DER.
func parsePublicKey(data []byte) (*rsa.PublicKey, error) {
	der, err := pemOrBase64(data)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	if pk, err := x509.ParsePKIXPublicKey(der); err == nil {
		rk, ok := pk.(*rsa.PublicKey)
		if !ok {
			return nil, errors.New("public key: not an RSA key")
		}
		return rk, nil
	}
	rk, err := x509.ParsePKCS1PublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("public key: neither PKIX nor PKCS#1: %w", err)
	}
	return rk, nil
}

func pemOrBase64(data []byte) ([]byte, error) {
	if block, _ := pem.Decode(data); block != nil {
		return block.Bytes, nil
	}
	s := strings.Join(strings.Fields(string(data)), "")
	if s == "" {
		return nil, errors.New("empty key")
	}
	der, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("not PEM and not base64 DER")
	}
	return der, nil
}

// signBytes is Alipay's RSA2: SHA256withRSA, PKCS#1 v1.5, standard base64.
func signBytes(key *rsa.PrivateKey, data []byte) (string, error) {
	h := sha256.Sum256(data)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, h[:])
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// verifyBytes checks an RSA2 signature given in standard base64.
func verifyBytes(key *rsa.PublicKey, data []byte, sigB64 string) error {
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		return fmt.Errorf("signature is not base64: %w", err)
	}
	h := sha256.Sum256(data)
	return rsa.VerifyPKCS1v15(key, crypto.SHA256, h[:], sig)
}

// signContent builds Alipay's string-to-sign: keys sorted, empty values dropped, raw
// (not URL-encoded) k=v joined by &. Request signatures exclude only "sign"; return and
// notify signatures also exclude "sign_type" — the asymmetry is Alipay's, kept on purpose.
func signContent(v url.Values, exclude ...string) string {
	keys := make([]string, 0, len(v))
	for k, vals := range v {
		if len(vals) == 0 || vals[0] == "" || contains(exclude, k) {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v.Get(k))
	}
	return b.String()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// requestSignContent is the string the app signed for a gateway request.
func requestSignContent(v url.Values) string { return signContent(v, "sign") }

// notifySignContent is the string Alipay signs for returns and notifies: every field but
// sign, sign_type and alipay_cert_sn, empty values dropped. In certificate mode a notify
// carries alipay_cert_sn; it is left out of the signed content, which is what
// smartwalle's VerifySign expects (it ignores sign, sign_type and alipay_cert_sn). So the
// signed content of a certificate-mode notify is exactly that of the same notify in
// public-key mode.
func notifySignContent(v url.Values) string {
	return signContent(v, "sign", "sign_type", "alipay_cert_sn")
}

// v2SignContent is the V2 rule some Alipay notifies are signed by: only sign is left
// out, so sign_type (and alipay_cert_sn, when present) are inside the signed content.
func v2SignContent(v url.Values) string { return signContent(v, "sign") }

// signNotifyValues signs v per the return/notify rule and sets sign and sign_type.
func signNotifyValues(key *rsa.PrivateKey, v url.Values) error {
	v.Del("sign")
	sig, err := signBytes(key, []byte(notifySignContent(v)))
	if err != nil {
		return err
	}
	v.Set("sign_type", "RSA2")
	v.Set("sign", sig)
	return nil
}

// signV2Values sets sign_type first and signs it along (the V2 rule).
func signV2Values(key *rsa.PrivateKey, v url.Values) error {
	v.Del("sign")
	v.Set("sign_type", "RSA2")
	sig, err := signBytes(key, []byte(v2SignContent(v)))
	if err != nil {
		return err
	}
	v.Set("sign", sig)
	return nil
}
