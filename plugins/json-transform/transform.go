package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	wasmgate "github.com/wasmgate/wasmgate/sdk/go"
	"github.com/wasmgate/wasmgate/sdk/go/jsonpath"
)

type config struct {
	Request   []jsonpath.OpConfig `json:"request"`
	Response  []jsonpath.OpConfig `json:"response"`
	Statuses  []int               `json:"statuses"`
	MaxBody   *int64              `json:"max_body"`
	OnInvalid string              `json:"on_invalid"`
}

const defaultMaxBody = 8 << 20

// transformer is the compiled config.
type transformer struct {
	request, response []jsonpath.Op
	statuses          []int
	maxBody           int64
	failInvalid       bool
}

func newTransformer(b []byte) (*transformer, error) {
	var c config
	if err := wasmgate.DecodeConfig(b, &c); err != nil {
		return nil, err
	}
	t := &transformer{statuses: c.Statuses, maxBody: defaultMaxBody}
	var err error
	if t.request, err = jsonpath.Compile("request", c.Request); err != nil {
		return nil, err
	}
	if t.response, err = jsonpath.Compile("response", c.Response); err != nil {
		return nil, err
	}
	if len(t.request) == 0 && len(t.response) == 0 {
		return nil, errors.New(`no ops: give "request" or "response" a list of ops like {op: remove, path: a.b}`)
	}
	for _, s := range c.Statuses {
		if s < 100 || s > 599 {
			return nil, fmt.Errorf(`"statuses": %d is not an HTTP status`, s)
		}
	}
	if c.MaxBody != nil {
		if *c.MaxBody <= 0 {
			return nil, errors.New(`"max_body" must be positive`)
		}
		t.maxBody = *c.MaxBody
	}
	switch c.OnInvalid {
	case "", "skip":
	case "fail":
		t.failInvalid = true
	default:
		return nil, fmt.Errorf(`"on_invalid": %q: want "skip" or "fail"`, c.OnInvalid)
	}
	return t, nil
}

// wantStatus reports whether a response with this status is transformed.
func (t *transformer) wantStatus(status int) bool {
	return len(t.statuses) == 0 || slices.Contains(t.statuses, status)
}

// isJSON reports whether headers say the body is plain (uncompressed) JSON.
func isJSON(contentType, contentEncoding string) bool {
	ct := strings.ToLower(contentType)
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	if !strings.Contains(ct, "json") {
		return false
	}
	ce := strings.TrimSpace(strings.ToLower(contentEncoding))
	return ce == "" || ce == "identity"
}

// errInvalid marks a body that is not JSON.
var errInvalid = errors.New("body is not valid JSON")

// apply runs ops on a JSON body and returns the new body and whether it
// changed (unchanged bodies are not written back).
func apply(body []byte, ops []jsonpath.Op) ([]byte, bool, error) {
	doc, err := jsonpath.Parse(body)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %v", errInvalid, err)
	}
	if jsonpath.Apply(doc, ops) == 0 {
		return body, false, nil
	}
	return doc.AppendJSON(make([]byte, 0, len(body))), true, nil
}
