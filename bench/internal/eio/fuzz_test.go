package eio_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/herald-rt/herald/bench/internal/eio"
)

// FuzzParse: Parse never panics, and what it returns aliases its input.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`0{"sid":"a"}`, "2", "3", `40{"sid":"x"}`, `41`, `42["bench",{"seq":1}]`, `4212["e"]`,
		`42/chat,3["e"]`, `44{"message":"m"}`, `451-["e",{"_placeholder":true,"num":0}]`, "4", "47", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := eio.Parse(in)
		if err != nil {
			if !errors.Is(err, eio.ErrMalformed) || p.Kind != eio.Invalid {
				t.Fatalf("Parse(%q) = %+v, %v", in, p, err)
			}
			return
		}
		if p.Kind == eio.Invalid || !bytes.HasSuffix(in, p.Data) || !bytes.Contains(in, p.Namespace) {
			t.Fatalf("Parse(%q) = %+v", in, p)
		}
		if p.ID < -1 || p.Attachments < 0 {
			t.Fatalf("Parse(%q) = %+v", in, p)
		}
	})
}

// FuzzScanEvent checks SplitEvent + BenchFields against encoding/json: on
// any input they must not panic, and on valid JSON they must agree.
func FuzzScanEvent(f *testing.F) {
	f.Add([]byte(heraldEvent))
	f.Add([]byte(`["bench",{"seq":1,"seq":2,"sentAt":3}]`))
	f.Add([]byte(`["b\u0065nch",{"s\u0065q":1,"sentAt":-3,"pad":"\"\\"}]`))
	f.Add([]byte(`["bench",{"seq":1.5,"sentAt":"3"}]`))
	f.Add([]byte(`["bench"]`))
	f.Add([]byte(`["bench",{"seq":1,"sentAt":2,"x":[{"y":"]}"}]}]`))
	f.Fuzz(func(t *testing.T, in []byte) {
		name, args, err := eio.SplitEvent(in)
		var seq, sentAt int64
		var ferr error
		if err == nil && len(args) > 0 {
			seq, sentAt, ferr = eio.BenchFields(args)
		}

		var arr []json.RawMessage
		if json.Unmarshal(in, &arr) != nil {
			return // invalid JSON: anything but a panic goes
		}
		var wantName string
		if len(arr) == 0 || json.Unmarshal(arr[0], &wantName) != nil {
			if err == nil {
				t.Fatalf("SplitEvent(%q) accepted an array without a name", in)
			}
			return
		}
		if err != nil {
			t.Fatalf("SplitEvent(%q): %v", in, err)
		}
		if utf8.Valid(name) && string(name) != wantName {
			t.Fatalf("SplitEvent(%q) name = %q, want %q", in, name, wantName)
		}
		if (len(arr) == 1) != (len(args) == 0) {
			t.Fatalf("SplitEvent(%q) args = %q with %d elements", in, args, len(arr))
		}
		if len(arr) == 1 {
			return
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(arr[1], &obj) != nil || obj == nil {
			if ferr == nil {
				t.Fatalf("BenchFields(%q) accepted a non-object", args)
			}
			return
		}
		wantSeq, seqErr := wantInt(obj, "seq")
		wantSentAt, sentAtErr := wantInt(obj, "sentAt")
		if want := errors.Join(seqErr, sentAtErr); want != nil {
			if !errors.Is(ferr, eio.ErrMissingField) && !errors.Is(ferr, eio.ErrNotInteger) {
				t.Fatalf("BenchFields(%q) = %v, want an error like %v", args, ferr, want)
			}
			return
		}
		if ferr != nil || seq != wantSeq || sentAt != wantSentAt {
			t.Fatalf("BenchFields(%q) = %d, %d, %v; want %d, %d", args, seq, sentAt, ferr, wantSeq, wantSentAt)
		}
	})
}

func wantInt(obj map[string]json.RawMessage, key string) (int64, error) {
	raw, ok := obj[key]
	if !ok {
		return 0, eio.ErrMissingField
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, eio.ErrNotInteger
	}
	return n, nil
}
