package web

import (
	"testing"
)

func TestJSONSessionValuesRoundTrip(t *testing.T) {
	in := map[any]any{"uid": int64(42), "email": "a@example.com", "_flash": []any{"订单已取消。"}}
	b, err := jsonValues{}.Serialize(in)
	if err != nil {
		t.Fatal(err)
	}
	out := map[any]any{}
	if err := (jsonValues{}).Deserialize(b, &out); err != nil {
		t.Fatal(err)
	}
	if uid, ok := out["uid"].(int64); !ok || uid != 42 {
		t.Fatalf("uid %#v", out["uid"])
	}
	if out["email"] != "a@example.com" {
		t.Fatalf("email %#v", out["email"])
	}
	if fl, ok := out["_flash"].([]any); !ok || len(fl) != 1 || fl[0] != "订单已取消。" {
		t.Fatalf("flash %#v", out["_flash"])
	}
	if _, err := (jsonValues{}).Serialize(map[any]any{1: "x"}); err == nil {
		t.Fatal("non-string key accepted")
	}
	var nilMap map[any]any
	if err := (jsonValues{}).Deserialize(b, &nilMap); err != nil || nilMap["uid"] != int64(42) {
		t.Fatalf("into nil map: %v %#v", err, nilMap)
	}
}
