package handlers

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestStrictJSONConsumer decodes bodies through a body cap, as the server
// reads them: one JSON value is accepted; more after it is refused as not
// JSON, unless the body runs past the cap first, which is the cap's error
// whatever the value before it.
func TestStrictJSONConsumer(t *testing.T) {
	const limit = 64
	tests := []struct {
		name    string
		body    string
		tooLong bool
		trailer bool
	}{
		{"one value", `{"a":"b"}`, false, false},
		{"one value and spaces", `{"a":"b"}   `, false, false},
		{"a second value", `{"a":"b"} {}`, false, true},
		{"text after the value", `{"a":"b"} x`, false, true},
		{"spaces past the cap", `{"a":"b"}` + strings.Repeat(" ", limit), true, false},
		{"a value past the cap", `{"a":"` + strings.Repeat("b", limit) + `"}`, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(strings.NewReader(tt.body)), limit)
			var v map[string]any
			err := strictJSONConsumer().Consume(body, &v)
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) != tt.tooLong || errors.Is(err, errTrailingData) != tt.trailer {
				t.Errorf("error %v; want over the cap %v, trailing data %v", err, tt.tooLong, tt.trailer)
			}
			if !tt.tooLong && !tt.trailer && (err != nil || v["a"] != "b") {
				t.Errorf("decoded %v, %v; want a=b", v, err)
			}
		})
	}
}
