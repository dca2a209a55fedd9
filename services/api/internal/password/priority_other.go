//go:build !linux

package password

// lowerThreadPriority does nothing where a thread has no nice value of
// its own.
func lowerThreadPriority() {}
