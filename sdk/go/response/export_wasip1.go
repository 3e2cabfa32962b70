//go:build wasip1

package response

import "github.com/wasmgate/wasmgate/sdk/go/internal/hooks"

func init() { hooks.ResponseExported = true }

//go:wasmexport on_response
func onResponse() int32 { return hooks.Response() }
