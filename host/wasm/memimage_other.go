//go:build !linux

package wasm

import "errors"

// memImage needs a memfd (memimage_linux.go); elsewhere modules keep their
// data segments.
type memImage struct{ size uint64 }

func newMemImage([]dataSegment, uint64) (*memImage, error) {
	return nil, errors.New("memory images need Linux")
}

func (img *memImage) retain() *memImage { return img }
func (img *memImage) release()          {}

func (img *memImage) mapInto([]byte) error  { return errors.New("memory images need Linux") }
func (img *memImage) copyInto([]byte) error { return errors.New("memory images need Linux") }
