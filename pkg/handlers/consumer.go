package handlers

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/go-openapi/runtime"
)

// errTrailingData is returned for a body with more after its JSON value.
var errTrailingData = errors.New("the body holds more than one JSON value")

// strictJSONConsumer decodes a request body that must be exactly one JSON
// value. go-openapi's consumer stops after the first value, so that
// `{"name":"x"} garbage` or two objects in a row would be accepted and the
// first applied; here they are refused as a body that is not JSON.
func strictJSONConsumer() runtime.Consumer {
	return runtime.ConsumerFunc(func(r io.Reader, v any) error {
		dec := json.NewDecoder(r)
		dec.UseNumber()
		if err := dec.Decode(v); err != nil {
			return err
		}
		_, err := dec.Token()
		var mbe *http.MaxBytesError
		switch {
		case errors.Is(err, io.EOF):
		case errors.As(err, &mbe):
			// Whatever follows the value, the body is over the cap: 413,
			// not a body that is not JSON.
			return err
		default:
			return errTrailingData
		}
		return nil
	})
}
