//go:build !wasip1

package main

// Native stand-ins for the raw host calls of raw_wasip1.go, so that the
// plugin's logic builds and its pure parts are tested natively. There is no
// gateway here: every call answers NOT_ALLOWED, as the SDK's native build does.

const notAllowed = -3

func rawRequestMethod([]byte) int32                      { return notAllowed }
func rawRequestPath([]byte) int32                        { return notAllowed }
func rawRequestQuery([]byte) int32                       { return notAllowed }
func rawRequestClientIP([]byte) int32                    { return notAllowed }
func rawHeaderGet(int32, string, []byte) int32           { return notAllowed }
func rawHeaderGetAt(int32, string, uint32, uint32) int32 { return notAllowed }
func rawHeaderValues(int32, string, []byte) int32        { return notAllowed }
func rawHeaderNames(int32, []byte) int32                 { return notAllowed }
func rawHeaderSet(int32, string, string) int32           { return notAllowed }
func rawBodyGet(int32, int64, []byte) int64              { return notAllowed }
func rawResponseStatus() int32                           { return notAllowed }
func rawResponseSetStatus(int32) int32                   { return notAllowed }
func rawTimeNow() int64                                  { return 0 }
func rawMetricRecord(int32, float64) int32               { return notAllowed }
func rawSendResponse(int32, []byte) int32                { return notAllowed }
func rawConfigGet([]byte) int32                          { return notAllowed }
func rawLog(int32, string) int32                         { return notAllowed }
func rawSetError(string) int32                           { return notAllowed }
func rawRandomGet([]byte) int32                          { return notAllowed }
func rawRandomGetAt(uint32, uint32) int32                { return notAllowed }
func rawKVGet(string, []byte) int32                      { return notAllowed }
func rawKVSet(string, []byte, int64) int32               { return notAllowed }
func rawMetricDefine(int32, string) int32                { return notAllowed }
func rawHTTPBatch([]byte) int32                          { return notAllowed }
func rawHTTPBatchResult([]byte) int32                    { return notAllowed }
