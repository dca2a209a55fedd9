package password

import "syscall"

// lowerThreadPriority gives the calling OS thread the lowest scheduling
// priority (nice 19). On Linux the nice value belongs to a thread, and
// raising it needs no privilege; lowering it again would, so a thread
// lowered here must not go back to serving other goroutines.
func lowerThreadPriority() {
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), 19)
}
