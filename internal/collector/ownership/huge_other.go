//go:build !linux

package ownership

import "unsafe"

// adviseHuge does nothing here (see huge_linux.go).
func adviseHuge(unsafe.Pointer, uintptr) {}
