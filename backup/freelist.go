package backup

// freeList keeps buffers for reuse. Unlike sync.Pool it is not emptied by
// the garbage collector, so a backup does not allocate and zero fresh
// chunk and pack buffers at the rate it reads; the pipeline's bounded
// channels bound how many buffers are in use, and the list how many idle.
type freeList[T any] struct {
	free  chan T
	alloc func() T
}

func newFreeList[T any](idle int, alloc func() T) *freeList[T] {
	return &freeList[T]{free: make(chan T, idle), alloc: alloc}
}

func (l *freeList[T]) get() T {
	select {
	case b := <-l.free:
		return b
	default:
		return l.alloc()
	}
}

func (l *freeList[T]) put(b T) {
	select {
	case l.free <- b:
	default: // enough idle buffers: let this one go
	}
}
