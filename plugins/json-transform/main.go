//go:build wasip1

package main

import (
	"errors"

	wasmgate "github.com/wasmgate/wasmgate/sdk/go"
	"github.com/wasmgate/wasmgate/sdk/go/jsonpath"
	_ "github.com/wasmgate/wasmgate/sdk/go/response" // response transforms
)

var (
	tr      *transformer
	changed = wasmgate.NewCounter("transformed")
	skipped = wasmgate.NewCounter("skipped")
)

// body is the part of Request and Response the transform needs.
type body interface {
	Header(name string) (string, bool)
	Body() ([]byte, error)
	BodyRange(offset int64, buf []byte) (int, int64, error)
	SetBody([]byte) error
}

func init() {
	wasmgate.Register(wasmgate.Plugin{
		Init: func(b []byte) (err error) {
			tr, err = newTransformer(b)
			return err
		},
		OnRequest: func(req *wasmgate.Request) wasmgate.Action {
			if len(tr.request) == 0 {
				return wasmgate.Continue
			}
			err := transformBody(req, tr.request)
			if errors.Is(err, errInvalid) {
				resp, serr := req.SendResponse(400, []byte(`{"error":"request body is not valid JSON"}`+"\n"))
				if serr != nil {
					return wasmgate.Fail(serr)
				}
				resp.SetHeader("Content-Type", "application/json")
				return wasmgate.Stop
			}
			if err != nil {
				return wasmgate.Fail(err)
			}
			return wasmgate.Continue
		},
		OnResponse: func(resp *wasmgate.Response) error {
			if len(tr.response) == 0 || !tr.wantStatus(resp.Status()) {
				return nil
			}
			return transformBody(resp, tr.response)
		},
	})
}

// transformBody edits m's body when it is JSON within the size limit. An
// invalid body is skipped, or errInvalid with on_invalid: fail.
func transformBody(m body, ops []jsonpath.Op) error {
	ct, _ := m.Header("Content-Type")
	ce, _ := m.Header("Content-Encoding")
	if !isJSON(ct, ce) {
		skipped.Inc()
		return nil
	}
	// Size first (a zero-length read), so an oversized body never crosses.
	_, size, err := m.BodyRange(0, nil)
	if err != nil {
		return err
	}
	if size == 0 || size > tr.maxBody {
		skipped.Inc()
		return nil
	}
	in, err := m.Body()
	if err != nil {
		return err
	}
	out, didChange, err := apply(in, ops)
	if err != nil {
		if tr.failInvalid {
			return err
		}
		skipped.Inc()
		return nil
	}
	if !didChange {
		return nil
	}
	changed.Inc()
	return m.SetBody(out)
}

func main() {}
