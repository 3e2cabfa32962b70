package server

import (
	"bufio"
	"io"
	"os"
	"sync"
	"time"
)

var _ io.WriteCloser = (*bufferedWriter)(nil)

// bufferedWriter batches access log lines: one write system call per line
// would cost more than proxying the request. Lines reach the destination
// within flushEvery, and on Close.
type bufferedWriter struct {
	mu   sync.Mutex
	w    *bufio.Writer
	dst  io.Writer
	stop chan struct{}
	done chan struct{}
}

const flushEvery = 200 * time.Millisecond

func newBufferedWriter(dst io.Writer) *bufferedWriter {
	b := &bufferedWriter{w: bufio.NewWriterSize(dst, 64<<10), dst: dst, stop: make(chan struct{}), done: make(chan struct{})}
	go b.flushLoop()
	return b
}

func (b *bufferedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Write(p)
}

func (b *bufferedWriter) flushLoop() {
	defer close(b.done)
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			b.Flush()
		case <-b.stop:
			b.Flush()
			return
		}
	}
}

// Flush writes out buffered lines.
func (b *bufferedWriter) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	_ = b.w.Flush()
}

// Close flushes and stops the flusher; a file destination is closed too.
func (b *bufferedWriter) Close() error {
	close(b.stop)
	<-b.done
	if f, ok := b.dst.(*os.File); ok && f != os.Stdout && f != os.Stderr {
		return f.Close()
	}
	return nil
}
