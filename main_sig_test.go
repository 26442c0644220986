package main

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"sort"
	"strings"
)

// verifyRequestSig checks a page-pay request by Alipay's rule: every param but sign,
// empty values dropped, sorted, raw k=v joined by &.
func verifyRequestSig(pub *rsa.PublicKey, q url.Values) error {
	keys := []string{}
	for k := range q {
		if k != "sign" && q.Get(k) != "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + q.Get(k)
	}
	sig, err := base64.StdEncoding.DecodeString(q.Get("sign"))
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(strings.Join(parts, "&")))
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig)
}
