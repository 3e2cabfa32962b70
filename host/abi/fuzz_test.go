package abi

import "testing"

// FuzzHostFunctions calls every host function with arbitrary arguments
// against a small memory holding arbitrary bytes, in every phase: the only
// panic allowed is OutOfBounds naming the function, and every i32 result is
// a size, an id, a status or one of the ABI's codes.
func FuzzHostFunctions(f *testing.F) {
	f.Add(uint8(0), uint8(1), false, uint64(0), uint64(8), uint64(0), uint64(0), uint64(0), []byte("hello"))
	f.Add(uint8(5), uint8(2), true, uint64(0), uint64(0), uint64(4), uint64(8), uint64(16), []byte("host\x00\x00\x00"))
	f.Add(uint8(27), uint8(1), false, uint64(0), uint64(24), uint64(0), uint64(0), uint64(0),
		EncodeBatch(nil, []BatchRequest{get("http://x/")}))
	fns := Functions()
	f.Fuzz(func(t *testing.T, fi, phase uint8, local bool, a0, a1, a2, a3, a4 uint64, mem []byte) {
		fn := fns[int(fi)%len(fns)]
		h := newHarness(t, Phase(phase%3))
		small := make(testMem, 256)
		copy(small, mem)
		h.mem, h.c.Mem = small, small
		h.c.LocalResponse = local
		h.c.Env.Out = &Outbound{Hosts: map[string]bool{}, Upstreams: map[string]bool{}} // nothing reachable
		h.c.Env.MaxBody = 64
		stack := make([]uint64, max(len(fn.Params), 5)) // parameters past the fifth are 0
		copy(stack, []uint64{a0, a1, a2, a3, a4})
		func() {
			defer func() {
				if r := recover(); r != nil {
					if oob, ok := r.(OutOfBounds); !ok || oob.Func != fn.Name {
						t.Fatalf("%s%v panicked: %v", fn.Name, stack, r)
					}
				}
			}()
			fn.Fn(h.c, stack)
			var v int64
			switch fn.Results[0] {
			case I32:
				v = int64(int32(uint32(stack[0])))
			default:
				v = int64(stack[0])
			}
			if fn.Name != "time_now" && v < ErrUnavailable {
				t.Fatalf("%s returned %d, not a code", fn.Name, v)
			}
		}()
	})
}
