package idempotency

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Response is a stored answer.
type Response struct {
	Status int
	Header []Header // in order, repeated names kept
	Body   []byte
}

// Header is one response header field.
type Header struct{ Name, Value string }

// Size is what the response weighs in a store.
func (r *Response) Size() int {
	n := 8 + len(r.Body)
	for _, h := range r.Header {
		n += 6 + len(h.Name) + len(h.Value)
	}
	return n
}

// Limits of the encoding, far above what a gateway stores.
const (
	maxHeaders     = 1 << 12
	maxHeaderBytes = 1 << 16
)

// encodeVersion starts every encoded response, so a store shared by
// gateways of different versions never misreads one.
const encodeVersion = 1

// appendEncoded appends r's encoding:
//
//	version u8, status u16, header count u16,
//	per header: name length u16, name, value length u32, value,
//	body length u32, body
func (r *Response) appendEncoded(b []byte) ([]byte, error) {
	if r.Status < 100 || r.Status > 999 {
		return nil, fmt.Errorf("status %d", r.Status)
	}
	if len(r.Header) > maxHeaders {
		return nil, fmt.Errorf("%d header fields", len(r.Header))
	}
	b = append(b, encodeVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(r.Status))
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.Header)))
	for _, h := range r.Header {
		if len(h.Name) > maxHeaderBytes || len(h.Value) > maxHeaderBytes {
			return nil, fmt.Errorf("header %.40q longer than %d bytes", h.Name, maxHeaderBytes)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(h.Name)))
		b = append(b, h.Name...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(h.Value)))
		b = append(b, h.Value...)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(r.Body)))
	return append(b, r.Body...), nil
}

var errCorrupt = errors.New("stored response: corrupt")

// decodeResponse is appendEncoded's inverse; the result does not alias b.
func decodeResponse(b []byte) (*Response, error) {
	d := decoder{b: b}
	if d.u8() != encodeVersion {
		return nil, fmt.Errorf("stored response: unknown encoding (another wasmgate version?)")
	}
	r := &Response{Status: int(d.u16())}
	n := int(d.u16())
	if d.err || n > maxHeaders || r.Status < 100 || r.Status > 999 {
		return nil, errCorrupt
	}
	r.Header = make([]Header, 0, n)
	for range n {
		name := d.bytes(int(d.u16()))
		value := d.bytes(int(d.u32()))
		if d.err || len(value) > maxHeaderBytes {
			return nil, errCorrupt
		}
		r.Header = append(r.Header, Header{Name: string(name), Value: string(value)})
	}
	r.Body = append([]byte(nil), d.bytes(int(d.u32()))...)
	if d.err || len(d.b) != 0 {
		return nil, errCorrupt
	}
	return r, nil
}

// decoder reads big-endian fields; err sticks at the first short read.
type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) take(n int) []byte {
	if d.err || n < 0 || n > len(d.b) {
		d.err = true
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8() uint8 {
	if v := d.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if v := d.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if v := d.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (d *decoder) bytes(n int) []byte { return d.take(n) }
