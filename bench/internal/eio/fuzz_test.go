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

// FuzzCutPayload: cutting a payload never panics, ends, yields one packet
// per separator plus one, and each is what Parse makes of that piece.
func FuzzCutPayload(f *testing.F) {
	for _, s := range []string{
		"40{\"sid\":\"x\"}\x1e42[\"authenticated\",{}]", "2", "", "\x1e", "6\x1e1", "2\x1e\x1e3",
		"42[\"bench\",{\"seq\":0,\"sentAt\":1,\"pad\":\"\"}]\x1e2\x1e42[\"bench\",{\"seq\":1}]", "bAQID\x1e4",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		pieces := bytes.Split(in, []byte{0x1e})
		rest, more := in, true
		n := 0
		for more {
			if n == len(pieces) {
				t.Fatalf("CutPayload(%q): more than %d packets", in, len(pieces))
			}
			var p eio.Packet
			var err error
			p, rest, more, err = eio.CutPayload(rest)
			want, wantErr := eio.Parse(pieces[n])
			if (err == nil) != (wantErr == nil) || p.Kind != want.Kind || !bytes.Equal(p.Data, want.Data) || p.ID != want.ID {
				t.Fatalf("CutPayload(%q) packet %d = %+v, %v; Parse(%q) = %+v, %v", in, n, p, err, pieces[n], want, wantErr)
			}
			if err != nil && !errors.Is(err, eio.ErrMalformed) {
				t.Fatalf("CutPayload(%q) packet %d: %v does not wrap ErrMalformed", in, n, err)
			}
			if len(p.Data) > 0 && !bytes.Contains(pieces[n], p.Data) {
				t.Fatalf("CutPayload(%q) packet %d: data %q is not from its piece", in, n, p.Data)
			}
			n++
		}
		if n != len(pieces) || len(rest) != 0 {
			t.Fatalf("CutPayload(%q): %d packets and rest %q, want %d and none", in, n, rest, len(pieces))
		}
	})
}
