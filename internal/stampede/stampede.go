// Package stampede is how Keygate's tests make many callers arrive at once:
// a race test is only as good as its racers' overlap, so every goroutine is
// started first and all are released together.
package stampede

import "sync"

// Run calls f(0) … f(n-1), each in a goroutine of its own, releasing them all
// at one instant once every goroutine is started; it returns when all have
// returned, with f(i)'s result at index i.
func Run[T any](n int, f func(i int) T) []T {
	out := make([]T, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			out[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return out
}
