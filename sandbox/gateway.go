package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// gwError is an Alipay error: code (40001/40002/40004) plus sub_code and sub_msg.
type gwError struct {
	Code    string
	SubCode string
	SubMsg  string
}

func (g *gwError) Error() string { return g.SubCode + ": " + g.SubMsg }

// msgFor is Alipay's fixed English "msg" for each top-level code.
func msgFor(code string) string {
	switch code {
	case "10000":
		return "Success"
	case "40001":
		return "Missing Required Arguments"
	case "40002":
		return "Invalid Arguments"
	case "40004":
		return "Business Failed"
	}
	return "Service Currently Unavailable"
}

func invalidArg(sub, msg string) *gwError { return &gwError{"40002", sub, msg} }
func missingArg(sub, msg string) *gwError { return &gwError{"40001", sub, msg} }
func bizFailure(sub, msg string) *gwError { return &gwError{"40004", sub, msg} }

// systemError is Alipay's answer when it fails itself (here: the emulator's database).
func systemError() *gwError               { return &gwError{"20000", "ACQ.SYSTEM_ERROR", "系统错误"} }
func pageError(code, msg string) *gwError { return &gwError{"", code, msg} }
func isAppIDError(g *gwError) bool        { return g.SubCode == "isv.invalid-app-id" }
func isMethodOrMissing(g *gwError) bool {
	return g.SubCode == "isv.invalid-method" || g.SubCode == "isv.missing-method"
}
func methodResponseName(method string) string {
	return strings.ReplaceAll(method, ".", "_") + "_response"
}

const maxBody = 1 << 20

// apiCall is one server API call: its request and biz_content in, and what the gateway
// must know about the answer out.
type apiCall struct {
	r        *http.Request
	biz      map[string]string
	trade    string // out_trade_no of the trade the answer is about (for its faults)
	withhold bool   // fault refund_timeout: write no answer at all
}

type apiFunc func(e *Emulator, c *apiCall) ([]kv, *gwError)

// apiMethods are the server APIs answered as signed JSON on gateway.do.
var apiMethods = map[string]apiFunc{
	"alipay.trade.query":                             (*Emulator).apiQuery,
	"alipay.trade.close":                             (*Emulator).apiClose,
	"alipay.trade.refund":                            (*Emulator).apiRefund,
	"alipay.trade.fastpay.refund.query":              (*Emulator).apiRefundQuery,
	"alipay.data.dataservice.bill.downloadurl.query": (*Emulator).apiBillURL,
}

const (
	pagePayMethod = "alipay.trade.page.pay"
	wapPayMethod  = "alipay.trade.wap.pay"
)

func isPayMethod(m string) bool { return m == pagePayMethod || m == wapPayMethod }

// readRawParams collects the request's params as raw bytes (before any charset decoding,
// because the app signed the bytes it sent). Alipay's own SDKs put common params in the
// query string and biz_content in the body, so both are merged.
func readRawParams(r *http.Request) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, errors.New("查询串无法解析")
	}
	out := url.Values{}
	if r.Method == http.MethodPost && r.Body != nil {
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		r.Body = http.MaxBytesReader(nil, r.Body, maxBody)
		if ct == "multipart/form-data" {
			if err := r.ParseMultipartForm(maxBody); err != nil {
				return nil, errors.New("表单无法解析")
			}
			for k, v := range r.MultipartForm.Value {
				out[k] = v
			}
		} else {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				return nil, errors.New("请求体过大或无法读取")
			}
			body, err := url.ParseQuery(string(b))
			if err != nil {
				return nil, errors.New("表单无法解析")
			}
			out = body
		}
	}
	for k, v := range q {
		if _, ok := out[k]; !ok {
			out[k] = v
		}
	}
	return out, nil
}

// gatewayRequest is a request that passed the common checks.
type gatewayRequest struct {
	Method string
	Params url.Values        // decoded to UTF-8
	Biz    map[string]string // biz_content fields; numbers kept as their literal text
}

// checkCommon applies the public-parameter rules shared by page pay and the APIs.
func (e *Emulator) checkCommon(raw url.Values) (*gatewayRequest, *gwError) {
	method := raw.Get("method")
	if method == "" {
		return nil, missingArg("isv.missing-method", "缺少方法名参数")
	}
	if _, ok := apiMethods[method]; !ok && !isPayMethod(method) {
		return nil, invalidArg("isv.invalid-method", "不存在的方法名")
	}
	if raw.Get("app_id") == "" {
		return nil, missingArg("isv.missing-app-id", "缺少AppID参数")
	}
	if raw.Get("app_id") != e.cfg.AppID {
		return nil, invalidArg("isv.invalid-app-id", "无效的AppID参数")
	}
	if gerr := e.checkCertSN(raw); gerr != nil {
		return nil, gerr
	}
	if raw.Get("sign_type") == "" {
		return nil, missingArg("isv.missing-signature-type", "缺少签名类型参数")
	}
	if raw.Get("sign_type") != "RSA2" {
		return nil, invalidArg("isv.invalid-signature-type", "无效的签名类型参数（本模拟器只支持 RSA2）")
	}
	if raw.Get("sign") == "" {
		return nil, missingArg("isv.missing-signature", "缺少签名参数")
	}
	content := requestSignContent(raw)
	if err := verifyBytes(e.appKey, []byte(content), raw.Get("sign")); err != nil {
		return nil, invalidArg("isv.invalid-signature",
			"验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为："+content)
	}
	params := raw
	switch cs := strings.ToLower(raw.Get("charset")); cs {
	case "", "utf-8", "utf8":
	case "gbk":
		dec := url.Values{}
		for k, vs := range raw {
			for _, v := range vs {
				s, err := simplifiedchinese.GBK.NewDecoder().String(v)
				if err != nil {
					return nil, invalidArg("isv.invalid-charset", "参数无法按 GBK 解码")
				}
				dec.Add(k, s)
			}
		}
		params = dec
	default:
		return nil, invalidArg("isv.invalid-charset", "字符集错误："+raw.Get("charset"))
	}
	if _, err := parseAlipayTime(params.Get("timestamp")); err != nil {
		return nil, invalidArg("isv.invalid-timestamp", "非法的时间戳参数（格式 yyyy-MM-dd HH:mm:ss）")
	}
	if params.Get("version") != "1.0" {
		return nil, invalidArg("isv.invalid-parameter", "version 必须为 1.0")
	}
	if f := params.Get("format"); f != "" && !strings.EqualFold(f, "JSON") {
		return nil, invalidArg("isv.invalid-format", "format 只支持 JSON")
	}
	biz, err := parseBiz(params.Get("biz_content"))
	if err != nil {
		return nil, invalidArg("isv.invalid-parameter", "biz_content 不是合法的 JSON 对象")
	}
	return &gatewayRequest{Method: method, Params: params, Biz: biz}, nil
}

// parseBiz flattens biz_content to strings: string values as is, numbers and other
// values by their JSON text, so "12.3" sent as a number still fails the 2-decimal rule.
func parseBiz(s string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &m); err != nil || m == nil {
		return nil, errors.New("bad json")
	}
	for k, v := range m {
		var str string
		if err := json.Unmarshal(v, &str); err == nil {
			out[k] = str
			continue
		}
		if string(v) != "null" {
			out[k] = string(v)
		}
	}
	return out, nil
}

func (e *Emulator) handleGateway(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	raw, err := readRawParams(r)
	if err != nil {
		e.renderError(w, pageError("invalid-request", err.Error()), "")
		return
	}
	method := raw.Get("method")
	req, gerr := e.checkCommon(raw)
	if isPayMethod(method) {
		if gerr != nil {
			e.renderError(w, pageCode(gerr), rawBackURL(method, raw))
			return
		}
		e.payPage(w, r, req)
		return
	}
	if gerr != nil {
		switch {
		case isMethodOrMissing(gerr):
			// Alipay cannot name a response object for an unknown method.
			e.writeErrorResponse(w, gerr)
		case isAppIDError(gerr) || gerr.SubCode == "isv.missing-app-id":
			// No app, so no app-specific key pair to sign with: answered unsigned.
			e.writeAPI(w, method, errorFields(gerr), false, "")
		default:
			e.writeAPI(w, method, errorFields(gerr), true, "")
		}
		return
	}
	e.settle(r.Context())
	call := &apiCall{r: r, biz: req.Biz}
	fields, berr := apiMethods[method](e, call)
	if call.withhold {
		e.withholdAnswer(w, r)
		return
	}
	if berr != nil {
		fields = append(errorFields(berr), fields...)
	} else {
		fields = append([]kv{{"code", "10000"}, {"msg", "Success"}}, fields...)
	}
	e.writeAPI(w, method, fields, true, call.trade)
}

// refundWithholdMax caps how long a withheld refund answer (fault refund_timeout) keeps
// the connection before giving up itself.
var refundWithholdMax = 2 * time.Minute

// withholdAnswer keeps the caller waiting until it gives up (its timeout or disconnect),
// or refundWithholdMax has passed, and then answers nothing useful: the refund was made,
// the caller never learns it from this call.
func (e *Emulator) withholdAnswer(w http.ResponseWriter, r *http.Request) {
	t := time.NewTimer(refundWithholdMax)
	defer t.Stop()
	select {
	case <-r.Context().Done():
		return
	case <-t.C:
	}
	w.WriteHeader(http.StatusGatewayTimeout)
}

// checkCertSN applies certificate mode's rules: every request names the app certificate
// and Alipay's root bundle by SN. An app in public-key mode that sends an app_cert_sn
// has no certificate at Alipay.
func (e *Emulator) checkCertSN(raw url.Values) *gwError {
	app, root := raw.Get("app_cert_sn"), raw.Get("alipay_root_cert_sn")
	if e.certs == nil {
		if app != "" {
			return invalidArg("isv.app-cert-not-exist", "应用公钥证书不存在（该应用使用公钥模式，请求却带了 app_cert_sn）")
		}
		return nil
	}
	switch {
	case app == "":
		return invalidArg("isv.missing-app-cert-sn", "缺少应用公钥证书序列号")
	case app != e.certs.appSN:
		return invalidArg("isv.app-cert-not-exist", "应用公钥证书不存在（app_cert_sn 与应用公钥证书不符）")
	case root == "":
		return invalidArg("isv.missing-alipay-root-cert-sn", "缺少支付宝根证书序列号")
	case root != e.certs.rootSN:
		return invalidArg("isv.invalid-alipay-root-cert-sn", "无效支付宝根证书序列号")
	}
	return nil
}

// pageCode maps API sub-codes to the codes Alipay's page-pay error page shows.
func pageCode(g *gwError) *gwError {
	code := g.SubCode
	switch code {
	case "isv.invalid-signature":
		code = "invalid-signature"
	case "isv.missing-signature":
		code = "missing-signature"
	}
	return pageError(code, g.SubMsg)
}

func errorFields(g *gwError) []kv {
	return []kv{{"code", g.Code}, {"msg", msgFor(g.Code)}, {"sub_code", g.SubCode}, {"sub_msg", g.SubMsg}}
}

// kv is one field of an ordered JSON object (Alipay's field order, for readable bodies).
type kv struct {
	K string
	V any
}

// objectJSON renders fields in order, leaving out empty strings and nils as Alipay does.
func objectJSON(fields []kv) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	n := 0
	for _, f := range fields {
		if f.V == nil {
			continue
		}
		if s, ok := f.V.(string); ok && s == "" {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		b.Write(marshalNoEscape(f.K))
		b.WriteByte(':')
		b.Write(marshalNoEscape(f.V))
	}
	b.WriteByte('}')
	return b.Bytes()
}

func marshalNoEscape(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return []byte(`""`)
	}
	return bytes.TrimRight(b.Bytes(), "\n")
}

// writeAPI writes {"<method>_response":<obj>,"sign":"..."} (with "alipay_cert_sn" before
// "sign" in certificate mode); the signature covers the exact bytes of <obj> as written,
// which is what clients verify. When trade has a pending escaped_slash fault and <obj>
// holds a "/", every "/" is written as "\/" (as Alipay's JSON sometimes does) and the
// signature covers those bytes.
func (e *Emulator) writeAPI(w http.ResponseWriter, method string, fields []kv, signed bool, trade string) {
	obj := objectJSON(fields)
	if trade != "" && bytes.Contains(obj, []byte("/")) {
		if took, err := e.takeFault(context.Background(), trade, faultEscapedSlash); err == nil && took {
			obj = bytes.ReplaceAll(obj, []byte("/"), []byte(`\/`))
		}
	}
	var b bytes.Buffer
	b.WriteString(`{"`)
	b.WriteString(methodResponseName(method))
	b.WriteString(`":`)
	b.Write(obj)
	if signed && e.certs != nil {
		b.WriteString(`,"alipay_cert_sn":"`)
		b.WriteString(e.certs.alipaySN)
		b.WriteString(`"`)
	}
	if signed {
		sig, err := signBytes(e.key, obj)
		if err != nil {
			e.log.Error("sandbox: sign response", "err", err)
		} else {
			b.WriteString(`,"sign":"`)
			b.WriteString(sig)
			b.WriteString(`"`)
		}
	}
	b.WriteString(`}`)
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	_, _ = w.Write(b.Bytes())
}

// writeErrorResponse writes Alipay's unsigned {"error_response":{...}}.
func (e *Emulator) writeErrorResponse(w http.ResponseWriter, g *gwError) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	_, _ = w.Write([]byte(`{"error_response":` + string(objectJSON(errorFields(g))) + `}`))
}
