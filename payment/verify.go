package payment

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"sort"
	"strings"
)

// Verifier checks the signature of a notify or return with the Alipay keys the shop
// holds, and nothing else. It never fetches a key: the Alipay library, asked to verify
// a message naming a certificate it doesn't know, downloads that certificate from the
// gateway while holding the lock every verification needs, so one stranger's request
// could make the shop call out and stall genuine notifies. Here an unknown certificate
// is simply refused, and verification takes no lock at all (the keys never change
// after start-up).
type Verifier struct {
	// keys by alipay_cert_sn. In public-key mode the one key is under "", and a message
	// naming any certificate is refused; in certificate mode a message without an SN is
	// checked against current.
	keys     map[string]*rsa.PublicKey
	current  string
	certMode bool
}

// Reasons a message fails its signature, as recorded in the junk counts.
const (
	ReasonMissingSign   = "missing sign"
	ReasonBadSign       = "bad signature"
	ReasonCertInKeyMode = "alipay_cert_sn in public-key mode"
	ReasonUnknownCert   = "unknown alipay_cert_sn"
)

// NewKeyVerifier verifies with Alipay's public key (public-key mode, 公钥模式).
func NewKeyVerifier(alipayPublicKeyPEM []byte) (*Verifier, error) {
	k, err := ParsePublicKey(alipayPublicKeyPEM)
	if err != nil {
		return nil, err
	}
	return &Verifier{keys: map[string]*rsa.PublicKey{"": k}}, nil
}

// NewCertVerifier verifies with Alipay's certificates' keys by their SN (certificate
// mode, 公钥证书模式); current is the SN of the certificate in use now.
func NewCertVerifier(keys map[string]*rsa.PublicKey, current string) *Verifier {
	return &Verifier{keys: keys, current: current, certMode: true}
}

// Current is the key used for messages that name no certificate (the one key in
// public-key mode).
func (v *Verifier) Current() *rsa.PublicKey { return v.keys[v.current] }

// Verify checks raw, the message exactly as received (before charset decoding), and
// returns "" if Alipay signed it, else the reason it fails. It tries Alipay's rules in
// the order Alipay's own SDK does: V1 (every non-empty param but sign and sign_type),
// then V2 (sign_type included), and for a message naming its certificate the variant
// with alipay_cert_sn left in as well as out.
func (v *Verifier) Verify(raw url.Values) string {
	sig := raw.Get("sign")
	if sig == "" {
		return ReasonMissingSign
	}
	sn := raw.Get("alipay_cert_sn")
	var key *rsa.PublicKey
	switch {
	case !v.certMode && sn != "":
		return ReasonCertInKeyMode
	case !v.certMode:
		key = v.keys[""]
	case sn == "":
		key = v.keys[v.current]
	default:
		key = v.keys[sn]
	}
	if key == nil {
		return ReasonUnknownCert
	}
	b, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return ReasonBadSign
	}
	variants := [][]string{{"sign", "sign_type", "alipay_cert_sn"}, {"sign"}}
	if sn != "" {
		variants = [][]string{{"sign", "sign_type", "alipay_cert_sn"}, {"sign", "sign_type"}, {"sign", "alipay_cert_sn"}, {"sign"}}
	}
	for _, skip := range variants {
		sum := sha256.Sum256([]byte(signContent(raw, skip)))
		if rsa.VerifyPKCS1v15(key, crypto.SHA256, sum[:], b) == nil {
			return ""
		}
	}
	return ReasonBadSign
}

// signContent is Alipay's string-to-sign for a message: the params not in skip with a
// non-empty value, sorted by key, raw k=v joined by &.
func signContent(raw url.Values, skip []string) string {
	keys := make([]string, 0, len(raw))
	for k := range raw {
		if raw.Get(k) == "" || contains(skip, k) {
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
		b.WriteString(raw.Get(k))
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

// errNoVerifier guards against a Service built without one.
var errNoVerifier = errors.New("payment: Config.Verifier is required")
