package password

import "testing"

// Hold takes one hashing slot of h, as a hash in flight would, until the
// test ends or the returned function is called.
func (h *Hasher) Hold(t testing.TB) (release func()) {
	t.Helper()
	select {
	case h.slots <- struct{}{}:
	default:
		t.Fatal("Hold: no free slot")
	}
	released := false
	release = func() {
		if !released {
			released = true
			h.release()
		}
	}
	t.Cleanup(release)
	return release
}
