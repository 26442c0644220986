// Package payment holds the shop's Alipay rules: the client built once at start, the
// page-pay request, and the checks and state changes for notifies, returns, queries,
// cancels and expiry. Handlers and workers call it; it calls the store.
package payment

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/smartwalle/alipay/v3"

	"storefront/shanghai"
)

// Gateway is the part of the Alipay client the shop uses. *alipay.Client implements
// it; tests may put the real client in front of the emulator or a fake server.
type Gateway interface {
	TradePagePay(p alipay.TradePagePay) (*url.URL, error)
	TradeWapPay(p alipay.TradeWapPay) (*url.URL, error)
	TradeQuery(ctx context.Context, p alipay.TradeQuery) (*alipay.TradeQueryRsp, error)
	TradeClose(ctx context.Context, p alipay.TradeClose) (*alipay.TradeCloseRsp, error)
	TradeRefund(ctx context.Context, p alipay.TradeRefund) (*alipay.TradeRefundRsp, error)
	TradeFastPayRefundQuery(ctx context.Context, p alipay.TradeFastPayRefundQuery) (*alipay.TradeFastPayRefundQueryRsp, error)
	BillDownloadURLQuery(ctx context.Context, p alipay.BillDownloadURLQuery) (*alipay.BillDownloadURLQueryRsp, error)
}

// ClientOptions configures the one Alipay client.
type ClientOptions struct {
	AppID           string
	AppPrivateKey   []byte // PEM, PKCS#1 or PKCS#8
	AlipayPublicKey []byte // PEM; Alipay's key (the emulator's in local mode), never the app's own
	Certs           *Certs // certificate mode instead of AlipayPublicKey; nil = public-key mode
	Production      bool
	Gateway         string        // "" = Alipay's gateway for the mode
	Timeout         time.Duration // for server API calls; smartwalle's default client has none
}

// Alipay's gateways, for a client given none.
const (
	ProductionGateway = "https://openapi.alipay.com/gateway.do"
	SandboxGateway    = "https://openapi-sandbox.dl.alipaydev.com/gateway.do"
)

// NewClient builds the Alipay client. Call it once at start: it parses the keys, which
// is the expensive part a per-request client would repeat.
func NewClient(o ClientOptions) (*alipay.Client, error) {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	opts := []alipay.OptionFunc{
		alipay.WithTimeLocation(shanghai.Location()),
		alipay.WithHTTPClient(&http.Client{Timeout: o.Timeout}),
	}
	// The client is always smartwalle's "sandbox" kind, with the gateway given outright:
	// besides the default gateway, its production flag changes one thing the shop uses,
	// and that one it must not do. In production, a response naming an alipay_cert_sn
	// the client doesn't know makes smartwalle download that certificate
	// (alipay.cert.download), unverified against the root, while holding the lock every
	// verification waits on. The shop trusts only the certificates it loaded and checked
	// at start-up; a rotated one is installed by the operator (keys/README.md).
	gateway := o.Gateway
	if gateway == "" {
		gateway = SandboxGateway
		if o.Production {
			gateway = ProductionGateway
		}
	}
	opts = append(opts, alipay.WithSandboxGateway(gateway))
	c, err := alipay.New(o.AppID, string(o.AppPrivateKey), false, opts...)
	if err != nil {
		return nil, fmt.Errorf("app private key: %w", err)
	}
	if o.Certs != nil {
		// Requests carry app_cert_sn and alipay_root_cert_sn; responses are checked by the
		// SN they name. The current certificate is loaded last: smartwalle takes the last
		// one as the default for a response that names none.
		if err := c.LoadAppCertPublicKey(string(o.Certs.AppCert)); err != nil {
			return nil, fmt.Errorf("%s: %w", AppCertFile, err)
		}
		if err := c.LoadAliPayRootCert(string(o.Certs.RootCert)); err != nil {
			return nil, fmt.Errorf("%s: %w", RootCertFile, err)
		}
		for i := len(o.Certs.AlipayCerts) - 1; i >= 0; i-- {
			if err := c.LoadAlipayCertPublicKey(string(o.Certs.AlipayCerts[i])); err != nil {
				return nil, fmt.Errorf("%s: %w", o.Certs.Files[i], err)
			}
		}
		return c, nil
	}
	if _, err := ParsePublicKey(o.AlipayPublicKey); err != nil {
		return nil, fmt.Errorf("alipay public key: %w", err)
	}
	if err := c.LoadAliPayPublicKey(string(o.AlipayPublicKey)); err != nil {
		return nil, fmt.Errorf("alipay public key: %w", err)
	}
	return c, nil
}

// subCode extracts Alipay's business error code from a server API answer. smartwalle
// returns signed business failures as a response with a non-10000 code and err == nil,
// but unsigned error_response bodies as an *alipay.Error in err; both end up here.
// A transport or verification failure is returned as err.
func subCode(rspErr alipay.Error, err error) (string, error) {
	var ae *alipay.Error
	if errors.As(err, &ae) {
		return codeOf(*ae), nil
	}
	if err != nil {
		return "", err
	}
	if rspErr.IsFailure() {
		return codeOf(rspErr), nil
	}
	return "", nil
}

func codeOf(e alipay.Error) string {
	if e.SubCode != "" {
		return e.SubCode
	}
	return string(e.Code)
}
