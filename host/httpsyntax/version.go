package httpsyntax

import "errors"

// Errors of CheckVersion.
var (
	ErrVersionMalformed   = errors.New("malformed HTTP version")
	ErrVersionUnsupported = errors.New("HTTP version not supported")
)

// CheckVersion checks a request line's HTTP-version. HTTP/1.0 and HTTP/1.1
// are served; a higher minor version of HTTP/1 is served as HTTP/1.1, as
// RFC 9110 (6.2) asks; any other major version is ErrVersionUnsupported
// (505), and anything not of the form HTTP/D.D is ErrVersionMalformed (400).
func CheckVersion(proto []byte) error {
	if len(proto) != 8 || string(proto[:5]) != "HTTP/" || proto[6] != '.' ||
		!isDigit(proto[5]) || !isDigit(proto[7]) {
		return ErrVersionMalformed
	}
	if proto[5] != '1' {
		return ErrVersionUnsupported
	}
	return nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
