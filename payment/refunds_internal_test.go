package payment

import (
	"errors"
	"fmt"
	"testing"
	"time"

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

// 600 refused messages of one kind log one line a minute, the next saying how many went
// unlogged; invented reasons can't grow the table past its bound.
func TestJunkLogSamples(t *testing.T) {
	var j junkLog
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	logged := 0
	for i := range 600 {
		if _, ok := j.allow("notify bad sign", now.Add(time.Duration(i)*50*time.Millisecond)); ok {
			logged++
		}
	}
	if logged != 1 {
		t.Fatalf("600 in 30 s logged %d lines, want 1", logged)
	}
	if skipped, ok := j.allow("notify bad sign", now.Add(time.Minute)); !ok || skipped != 599 {
		t.Fatalf("a minute on: logged %v, %d unlogged before, want true and 599", ok, skipped)
	}
	for i := range 1000 {
		j.allow(fmt.Sprintf("notify invented %d", i), now)
	}
	if n := len(j.last); n > junkLogKinds+1 {
		t.Fatalf("%d kinds remembered, bound %d", n, junkLogKinds)
	}
}
