package redistest

import (
	"bufio"
	"strings"
	"testing"
)

func TestReadReply(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr string
	}{
		{name: "simple", in: "+PONG\r\n", want: "PONG"},
		{name: "bulk", in: "$5\r\nhello\r\n", want: "hello"},
		{name: "bulk with CRLF inside", in: "$4\r\na\r\nb\r\n", want: "a\r\nb"},
		{name: "empty bulk", in: "$0\r\n\r\n", want: ""},
		{name: "error", in: "-LOADING Redis is loading\r\n", wantErr: "LOADING"},
		{name: "null bulk", in: "$-1\r\n", wantErr: "bad bulk length"},
		{name: "huge bulk", in: "$99999999\r\n", wantErr: "bad bulk length"},
		{name: "short bulk", in: "$5\r\nhi\r\n", wantErr: "EOF"},
		{name: "integer", in: ":1\r\n", wantErr: "unexpected reply"},
		{name: "empty line", in: "\r\n", wantErr: "empty reply"},
		{name: "no newline", in: "+PONG", wantErr: "EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readReply(bufio.NewReader(strings.NewReader(tt.in)))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("readReply(%q) = %q, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("readReply(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParsePID(t *testing.T) {
	tests := []struct {
		name    string
		info    string
		want    int
		wantErr bool
	}{
		{name: "redis 7", info: "# Server\r\nredis_version:7.0.15\r\nprocess_id:4242\r\nrun_id:abc\r\n", want: 4242},
		{name: "last line", info: "# Server\nprocess_id:7", want: 7},
		{name: "missing", info: "# Server\r\nredis_version:7.0.15\r\n", wantErr: true},
		{name: "not a number", info: "process_id:x\r\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parsePID(tt.info)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("parsePID = %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
