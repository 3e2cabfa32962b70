//go:build wasip1

package main

import (
	"encoding/json"

	wasmgate "github.com/wasmgate/wasmgate/sdk/go"
	"github.com/wasmgate/wasmgate/sdk/go/jsonpath"
	_ "github.com/wasmgate/wasmgate/sdk/go/response" // the work is on the response
)

var (
	sh       *shaper
	reshaped = wasmgate.NewCounter("reshaped")
)

func init() {
	wasmgate.Register(wasmgate.Plugin{
		Init: func(b []byte) (err error) {
			sh, err = newShaper(b)
			return err
		},
		OnResponse: onResponse,
	})
}

func onResponse(resp *wasmgate.Response) error {
	if st := resp.Status(); st < 200 || st > 299 {
		return nil
	}
	ct, _ := resp.Header("Content-Type")
	ce, _ := resp.Header("Content-Encoding")
	if !isJSON(ct, ce) {
		return nil
	}
	req := resp.Request()
	if sh.vary != "" {
		if err := resp.AddHeader("Vary", sh.vary); err != nil {
			return err
		}
	}
	p := sh.choose(req)
	var sel *jsonpath.Selection
	if sh.fieldsParam != "" {
		if f, ok := req.QueryParam(sh.fieldsParam); ok {
			var err error
			if sel, err = sh.selection(f); err != nil {
				return badFields(resp, err)
			}
		}
	}
	if p == nil && sel == nil {
		return nil
	}
	if p != nil {
		if err := resp.SetHeader("X-Client-Profile", p.name); err != nil {
			return err
		}
	}
	_, size, err := resp.BodyRange(0, nil)
	if err != nil || size == 0 || size > sh.maxBody {
		return err
	}
	body, err := resp.Body()
	if err != nil {
		return err
	}
	out, err := shape(body, p, sel)
	if err != nil {
		return nil // not JSON after all: pass it on untouched
	}
	reshaped.Inc()
	return resp.SetBody(out)
}

// badFields answers 400 for an unusable fields= selection.
func badFields(resp *wasmgate.Response, err error) error {
	b, _ := json.Marshal(map[string]string{"error": sh.fieldsParam + ": " + err.Error()})
	if err := resp.SetStatus(400); err != nil {
		return err
	}
	resp.SetHeader("Content-Type", "application/json")
	return resp.SetBody(append(b, '\n'))
}

func main() {}
