package payment

import (
	"errors"
	"testing"

	"github.com/smartwalle/alipay/v3"
)

// Only a signed answer decides a refund: an unsigned error body (smartwalle hands those
// back as err) may be anyone's, so it leaves the refund pending; a refusal taken from it
// would free the amount for a second refund while Alipay may have made this one.
func TestRefundOutcomeTrustsOnlySignedAnswers(t *testing.T) {
	notExist := alipay.Error{Code: "40004", Msg: "Business Failed", SubCode: "ACQ.TRADE_NOT_EXIST", SubMsg: "交易不存在"}
	for _, c := range []struct {
		name   string
		rspErr alipay.Error
		err    error
		want   refundResult
	}{
		{"signed success", alipay.Error{Code: "10000"}, nil, done},
		{"signed refusal", notExist, nil, refused},
		{"signed system error", alipay.Error{Code: "40004", SubCode: "ACQ.SYSTEM_ERROR"}, nil, retry},
		{"unsigned refusal", alipay.Error{}, &notExist, retry},
		{"no answer", alipay.Error{}, errors.New("timeout"), retry},
	} {
		if got, why := refundOutcome(c.rspErr, c.err); got != c.want {
			t.Errorf("%s: %v (%s), want %v", c.name, got, why, c.want)
		}
	}
}
