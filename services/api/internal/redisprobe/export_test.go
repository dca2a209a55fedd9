package redisprobe

import "context"

// ProbeOnce runs one probe in the caller's goroutine, so that a test can
// check its outcome without waiting for the background loop.
func (p *Probe) ProbeOnce(ctx context.Context) { p.probe(ctx) }
